"""Retraining: the gate (started per drift event and by a model's retrain schedule) and the run.

`retrain-gate` decides (severity, the cooldown in the platform DB) and starts at most one
`retrain` run per model per cooldown; `retrain` trains on the newest accepted data and hands
the new version to the usual chain (validation → challenger → sign-off).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.deployments import run_deployment

from blocks import load_platform
from flows.common import deliver_events
from riskops.cost.hook import run_cost, version_run_id
from riskops.platform import Platform
from riskops.stages.retraining import GateOutcome, RetrainResult, retrain_gate, retrain_stage
from riskops.training.provenance import ProvenanceSettings

RETRAIN_DEPLOYMENT = "retrain/retrain"  # <flow name>/<deployment name> in prefect.yaml


def _start_retraining(key: str, parameters: dict[str, object]) -> str:
    # timeout=0: start it and return; the idempotency key makes a retried start the same run.
    run = run_deployment(RETRAIN_DEPLOYMENT, parameters=parameters, timeout=0, idempotency_key=key)
    return str(run.id)


@flow(name="retrain-gate", persist_result=False)
def retrain_gate_flow(
    model: str,
    severity: str = "alert",
    kind: str = "schedule",
    event_id: str = "",
    reason: str = "",
) -> dict[str, object]:
    """Start one retraining of ``model`` unless its severity or its cooldown says no.

    Without ``event_id`` (a scheduled run) the claim is keyed by this flow run's id.
    """
    logger = get_run_logger()
    run_id = str(get_run_context().flow_run.id)
    event_id = event_id or f"schedule-{run_id}"
    reason = reason or (f"scheduled retraining (run {run_id})" if kind == "schedule" else kind)
    with load_platform() as platform, run_cost(platform, model=model):
        outcome: GateOutcome = retrain_gate(
            engine=platform.engine, model=model, severity=severity, event_id=event_id,
            reason=reason, start_run=_start_retraining,
        )  # fmt: skip
    (logger.info if outcome.decision in ("started", "skipped") else logger.warning)(
        "%s: %s", outcome.decision, outcome.message
    )
    create_markdown_artifact(
        key=f"retrain-gate-{model}",
        markdown=(
            f"# Retraining gate: {model}\n\n**{outcome.decision}**: {outcome.message}\n\n"
            f"- request: {kind}, severity {severity}, event `{event_id}`\n- reason: {reason}\n"
        ),
        description=f"{model}: {outcome.decision}",
    )
    return outcome.to_dict()


@task(name="retrain-on-newest-data", persist_result=False, cache_policy=NO_CACHE)
def retrain_task(
    platform: Platform, model: str, reason: str, claim_id: int | None, seed: int | None
) -> RetrainResult:
    provenance = ProvenanceSettings()
    return retrain_stage(
        lake=platform.lake, engine=platform.engine, client=platform.mlflow,
        spark=platform.spark, pseudonym_key=platform.require_pseudonym_key(), model=model,
        code_version=provenance.code_version(Path(__file__)), image_digest=provenance.image(),
        reason=reason, claim_id=claim_id, seed=seed, progress=get_run_logger().info,
    )  # fmt: skip


@flow(name="retrain", persist_result=False)
def retrain(
    model: str, claim_id: int | None = None, reason: str = "", seed: int | None = None
) -> dict[str, object]:
    """Retrain ``model`` on its newest accepted dataset; the version then waits for sign-off."""
    with (
        load_platform(with_pseudonym_key=True) as platform,
        run_cost(platform, model=model) as cost,
    ):
        result = retrain_task(platform, model, reason, claim_id, seed)
        cost.mlflow_run(version_run_id(platform, model, result.version))  # None: not trained
        deliver_events(platform, result.outbox_ids)
    create_markdown_artifact(
        key=f"retraining-{model}",
        markdown=f"# Retraining of {model}\n\n{result.message}\n\n- reason: {reason or '-'}\n"
        f"- claim: {claim_id if claim_id is not None else '- (started by hand)'}\n",
        description=f"{model}: {result.path}",
    )
    get_run_logger().info(result.message)
    return result.to_dict()
