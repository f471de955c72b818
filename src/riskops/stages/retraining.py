"""Retraining: the gate in front of it (severity, cooldown, one run) and the retraining itself.

The gate runs once per drift event (the automation in deployments/automations.py starts it)
and once per scheduled retraining. Only ``alert`` severity proceeds; then it claims the right
to retrain in the platform DB (:mod:`riskops.monitoring.cooldown`) and, when the claim wins,
starts ONE run of the retraining deployment with the claim's idempotency key. Claims,
refusals, starts and failed starts are written to the audit trail.

The retraining trains on the model's newest accepted dataset version through the same chain
as landed data: if that version has no feature set yet, building it emits
``riskops.features.built`` and the train deployment takes over; if it has one (the usual case:
every accepted dataset is built and trained when it lands, so the dedup of the feature build
would make a plain re-announcement a no-op), the training stage runs here on that feature set
with a fresh seed, registers a NEW version and emits ``riskops.model.registered``. Either way
the version then goes through validation (challenger if every gate passes) and waits for a
risk officer's sign-off; nothing here touches the champion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlflow.tracking import MlflowClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from riskops import audit, ledger
from riskops.db import session_scope
from riskops.lake.base import Lake
from riskops.monitoring.cooldown import (
    CLAIMED,
    DEFAULT_START_GRACE,
    claim_retraining,
    cooldown_state,
    idempotency_key,
    mark_started,
    release,
)
from riskops.records import DatasetVersion, ModelVersionRecord
from riskops.settings import SparkSettings
from riskops.stages.featuresets import build_feature_stage
from riskops.stages.training import train_stage
from riskops.training.lineage import NOT_FROM_IMAGE

RETRAINER = "riskops-retraining"  # the actor of the audit rows and the trainer of the version
ALERT = "alert"
BASE_SEED = 42  # the pipeline's seed; a retraining on the same feature set adds one per version

StartRun = Callable[[str, dict[str, Any]], str]
"""Starts the retraining run: (idempotency key, parameters) -> flow run id."""


@dataclass(frozen=True)
class GateOutcome:
    """What the gate did with one request to retrain."""

    model: str
    event_id: str
    decision: str  # started | refused (cooldown) | skipped (not alert) | duplicate
    message: str
    claim_id: int | None = None
    flow_run_id: str | None = None

    @property
    def started(self) -> bool:
        return self.decision == "started"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "event_id": self.event_id, "decision": self.decision,
            "message": self.message, "claim_id": self.claim_id, "flow_run_id": self.flow_run_id,
        }  # fmt: skip


def _audit(engine: Engine, action: str, model: str, payload: dict[str, Any]) -> None:
    with session_scope(engine) as session:
        audit.append(
            session=session, actor=RETRAINER, action=action, subject=f"{model}/retraining",
            payload=payload,
        )  # fmt: skip


def retrain_gate(
    *,
    engine: Engine,
    model: str,
    severity: str,
    event_id: str,
    reason: str,
    start_run: StartRun,
    now: dt.datetime | None = None,
    start_grace: dt.timedelta = DEFAULT_START_GRACE,
) -> GateOutcome:
    """Decide whether one request starts a retraining of ``model``; start it if so.

    Args:
        severity: the drift event's severity; only ``alert`` proceeds (scheduled retraining
            passes ``alert``: the schedule is the decision).
        event_id: the triggering event's id (or ``schedule-<flow run id>``): one claim per id,
            so a re-delivered event never retrains twice.
        reason: one line kept with the claim and shown in the cooldown message.
        start_run: starts the retraining run; its exception releases the claim and re-raises.

    Raises:
        riskops.ledger.UnknownModelError: ``model`` is not onboarded (nothing to retrain).
    """
    if severity != ALERT:
        return GateOutcome(
            model, event_id, "skipped",
            f"{model}: {severity}-severity drift does not retrain (only alert does); "
            "the Slack message is the action",
        )  # fmt: skip
    with session_scope(engine) as session:
        spec = ledger.current_spec(session=session, name=model)
    hours = spec.monitoring.retrain_cooldown_hours
    claim = claim_retraining(
        engine, model, cooldown_hours=hours, reason=reason, event_id=event_id, now=now,
        start_grace=start_grace,
    )  # fmt: skip
    if claim is None:
        message = cooldown_state(engine, model, now=now, start_grace=start_grace).message()
        _audit(engine, "retraining.refused", model,
               {"event_id": event_id, "reason": reason, "cooldown": message})  # fmt: skip
        return GateOutcome(model, event_id, "refused", message)
    assert claim.id is not None
    if claim.status != CLAIMED:  # this event was handled before (a re-delivery)
        return GateOutcome(
            model, event_id, "duplicate",
            f"{model}: event {event_id} already made claim {claim.id} ({claim.status}"
            f"{', flow run ' + claim.flow_run_id if claim.flow_run_id else ''})",
            claim.id, claim.flow_run_id,
        )  # fmt: skip
    _audit(engine, "retraining.claimed", model,
           {"claim": claim.id, "event_id": event_id, "reason": reason,
            "cooldown_hours": hours, "until": claim.until.isoformat()})  # fmt: skip
    parameters = {"model": model, "claim_id": claim.id, "reason": reason}
    try:
        flow_run_id = start_run(idempotency_key(claim), parameters)
    except Exception as error:
        release(engine, claim.id, error=f"{type(error).__name__}: {error}")
        _audit(engine, "retraining.start-failed", model,
               {"claim": claim.id, "event_id": event_id, "error": str(error)[:500]})  # fmt: skip
        raise
    mark_started(engine, claim.id, flow_run_id=flow_run_id)
    _audit(engine, "retraining.started", model,
           {"claim": claim.id, "event_id": event_id, "flow_run_id": flow_run_id})  # fmt: skip
    return GateOutcome(
        model, event_id, "started",
        f"{model}: retraining started (flow run {flow_run_id}, claim {claim.id}); no other "
        f"retraining until {claim.until:%Y-%m-%d %H:%M}Z ({hours:g} h cooldown)",
        claim.id, flow_run_id,
    )  # fmt: skip


@dataclass(frozen=True)
class RetrainResult:
    """What a retraining did: which data, and either a new version or a new feature set."""

    model: str
    dataset_version: str
    featureset_id: str
    path: str  # trained (a new version here) | features-built (the train deployment follows)
    message: str
    version: str | None = None
    outbox_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "dataset_version": self.dataset_version,
            "featureset": self.featureset_id, "path": self.path, "version": self.version,
            "message": self.message,
        }  # fmt: skip


def newest_accepted_dataset(*, session: Session, model: str) -> DatasetVersion:
    """The model's most recently accepted dataset version; LookupError when it has none."""
    versions = ledger.list_dataset_versions(session=session, model=model)
    if not versions:
        raise LookupError(
            f"cannot retrain {model}: it has no accepted dataset version. Land data with "
            f"`riskops land FILE --model {model}`; its acceptance trains a version by itself"
        )
    return versions[-1]


def _versions_on(session: Session, featureset_id: str) -> int:
    count = select(func.count()).where(col(ModelVersionRecord.feature_set_id) == featureset_id)
    return int(session.exec(count).one())


def retrain_stage(
    *,
    lake: Lake,
    engine: Engine,
    client: MlflowClient,
    spark: SparkSettings,
    pseudonym_key: str,
    model: str,
    code_version: str,
    reason: str = "",
    claim_id: int | None = None,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
    image_digest: str = NOT_FROM_IMAGE,
) -> RetrainResult:
    """Retrain ``model`` on its newest accepted dataset version, through the usual gates.

    Args:
        seed: the training seed; default one more than the versions already trained on that
            feature set, so a retraining is a new model, not a copy of the last one.
        claim_id: the cooldown claim behind this run (kept in the audit trail).

    Returns:
        ``path == "trained"`` with the new ``version`` (its ``riskops.model.registered`` is in
        ``outbox_ids``), or ``"features-built"`` when the feature set was new and the train
        deployment trains it on ``riskops.features.built``.
    """
    with session_scope(engine) as session:
        dataset = newest_accepted_dataset(session=session, model=model)
    say = progress or (lambda message: None)
    say(f"{model}: retraining on dataset version {dataset.id} ({dataset.row_count} rows)")
    built = build_feature_stage(
        lake=lake, engine=engine, dataset_version_id=dataset.id, spark=spark,
        pseudonym_key=pseudonym_key, code_version=code_version,
        progress=lambda share, message: say(f"{share:4.0%} {message}"),
    )  # fmt: skip
    featureset = built.record
    common = {"claim": claim_id, "reason": reason, "dataset_version": dataset.id,
              "featureset": featureset.id}  # fmt: skip
    if built.outbox_id is not None:
        _audit(engine, "retraining.features-built", model, common)
        return RetrainResult(
            model, dataset.id, featureset.id, "features-built",
            f"{model}: built feature set {featureset.version} of {dataset.id}; the train "
            "deployment trains it on riskops.features.built, then validation and sign-off",
            outbox_ids=[built.outbox_id],
        )  # fmt: skip
    if seed is None:
        with session_scope(engine) as session:
            seed = BASE_SEED + _versions_on(session, featureset.id)
    trained = train_stage(
        lake=lake, engine=engine, client=client, feature_set_id=featureset.id,
        trainer=RETRAINER, code_version=code_version, seed=seed, progress=progress,
        image_digest=image_digest,
    )  # fmt: skip
    version = trained.record.version
    _audit(engine, "retraining.trained", model, {**common, "version": version, "seed": seed})
    return RetrainResult(
        model, dataset.id, featureset.id, "trained",
        f"{model}: registered v{version} (seed {seed}) on feature set {featureset.version} of "
        f"{dataset.id}; validation follows, then a risk officer's sign-off",
        version=version, outbox_ids=[trained.outbox_id] if trained.outbox_id else [],
    )  # fmt: skip
