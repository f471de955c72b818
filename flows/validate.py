"""Validation: triggered by `riskops.model.registered`; ends in validated or rejected."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from blocks import load_platform
from flows.cards import publish_card
from flows.common import deliver_events
from riskops.cost.hook import run_cost, version_run_id
from riskops.platform import Platform
from riskops.stages.validation import ValidationStageResult, validate_stage


@task(name="run-gates", persist_result=False, cache_policy=NO_CACHE)
def run_gates_task(platform: Platform, model: str, version: str) -> ValidationStageResult:
    return validate_stage(
        lake=platform.lake, engine=platform.engine, client=platform.mlflow, model=model,
        version=version,
    )  # fmt: skip


@flow(name="validate", persist_result=False)
def validate(model: str, version: str) -> dict[str, object]:
    """Run every gate of the spec on the platform's holdout; all pass → `challenger` alias."""
    with load_platform() as platform, run_cost(platform, model=model) as cost:
        stage = run_gates_task(platform, model, str(version))
        cost.mlflow_run(version_run_id(platform, model, str(version)))
        create_table_artifact(
            key=f"gates-{model}", table=stage.table, description=f"{model} v{version} gate results"
        )
        create_markdown_artifact(
            key=f"gate-report-{model}", markdown=stage.markdown, description=f"{model} v{version}"
        )
        if "spec" not in stage.failed:  # no card for a model nobody onboarded
            publish_card(platform, model, str(version))
        deliver_events(platform, [stage.outbox_id])
    logger = get_run_logger()
    if stage.passed:
        logger.info("%s v%s passed every gate: challenger", model, version)
    else:
        logger.warning("%s v%s rejected: failed %s", model, version, ", ".join(stage.failed))
    return {"passed": stage.passed, "failed": stage.failed}
