"""Validation stage: a registered version goes through the gates; `challenger` if all pass.

The gates score rows the platform owns: the holdout recorded at training, rebuilt from the
catalogued feature set and checked against its recorded digest (see ``stages.holdout``).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import Engine

from riskops import audit, catalog, events, ledger, outbox
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.governance.promotion import CHALLENGER, current_champion
from riskops.lake.base import Lake
from riskops.records import DatasetVersion, ModelVersionRecord, ValidationRecord
from riskops.specs import ModelSpec
from riskops.stages.holdout import HoldoutError, platform_holdout
from riskops.validation.evaluate import MissingInputs, evaluate_version
from riskops.validation.results import GateReport

VALIDATOR = "riskops-validation"


@dataclass(frozen=True)
class ValidationStageResult:
    passed: bool
    failed: list[str]
    report: dict[str, Any]
    markdown: str
    table: list[dict[str, Any]]
    event: RiskopsEvent
    outbox_id: str | None = None


def spec_of_version(engine: Engine, model: str, version: str) -> ModelSpec:
    """The spec the version's data was checked against; the current one for notebook versions."""
    with session_scope(engine) as session:
        record = catalog.get_model_version(session=session, model=model, version=version)
        dataset = (
            session.get(DatasetVersion, record.dataset_version_id)
            if record and record.dataset_version_id
            else None
        )
        if dataset is not None:
            return ledger.spec_version(session=session, name=model, spec_hash=dataset.spec_hash)
        return ledger.current_spec(session=session, name=model)


def _publish(client: MlflowClient, model: str, version: str, report: Any, plots: Path) -> None:
    """Gate results as version tags, and the report + plots as artifacts of the version's run."""
    passed = "passed" if report.passed else "failed"
    client.set_model_version_tag(model, version, "riskops.validation", passed)
    for gate in report.to_dict()["results"]:
        client.set_model_version_tag(
            model, version, f"riskops.gate.{gate['name']}", gate.get("status") or "fail"
        )
    run_id = client.get_model_version(model, version).run_id
    if not run_id:
        return
    with tempfile.TemporaryDirectory(prefix="riskops-gates-") as tmp:
        folder = Path(tmp)
        (folder / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=str))
        (folder / "report.md").write_text(report.to_markdown())
        client.log_artifacts(run_id, str(folder), "validation")
    if any(plots.iterdir()):
        client.log_artifacts(run_id, str(plots), "validation/plots")


def _set_challenger(client: MlflowClient, model: str, version: str, passed: bool) -> None:
    if passed:
        client.set_registered_model_alias(model, CHALLENGER, version)
        return
    try:  # a failed version keeps no alias
        if str(client.get_model_version_by_alias(model, CHALLENGER).version) == version:
            client.delete_registered_model_alias(model, CHALLENGER)
    except MlflowException:
        pass


def training_sample(train: pd.DataFrame, rows: int = 50_000) -> pd.DataFrame | None:
    """A seeded sample of the recorded training rows (for the train-vs-holdout stability PSI)."""
    return train.sample(n=min(rows, len(train)), random_state=0) if len(train) else None


def _refused(
    engine: Engine, client: MlflowClient, model: str, version: str, why: str, gate: str = "spec"
) -> ValidationStageResult:
    """A version no gate can be measured on (no spec, no trustworthy holdout): rejected."""
    failed = [gate]
    result = {"name": gate, "passed": False, "value": None, "threshold": None, "message": why}
    report = {"passed": False, "failed": failed, "context": {}, "results": [result]}
    with session_scope(engine) as session:
        session.add(
            ValidationRecord(
                model=model,
                version=version,
                passed=False,
                failed_gates=failed,
                report=report,
                validator=VALIDATOR,
            )
        )
        audit.append(
            session=session, actor=VALIDATOR, action="model.rejected",
            subject=f"{model}/{version}", payload={"passed": False, "failed": failed, "why": why},
        )  # fmt: skip
        event = RiskopsEvent(
            name=events.MODEL_REJECTED,
            resource_id=events.model_resource(model, version),
            payload={"model": model, "version": version, "passed": False,
                     "failed_gates": failed, "reason": why},
        )  # fmt: skip
        event_id = outbox.enqueue(session=session, event=event)
    client.set_model_version_tag(model, version, "riskops.validation", "failed")
    markdown = f"# {model} v{version}: rejected\n\n{why}\n"
    table = [{"gate": gate, "status": "fail", "message": why}]
    return ValidationStageResult(False, failed, report, markdown, table, event, event_id)


def record_notebook_registration(
    *, engine: Engine, client: MlflowClient, model: str, version: str
) -> ModelVersionRecord | None:
    """Catalogue and audit a version registered outside the pipeline (once); None otherwise.

    The actor is the MLflow run's user as MLflow reports it; who that is as a principal is
    decided at sign-off (governance/people.py), where an unmapped user blocks a high-risk
    approval.
    """
    with session_scope(engine) as session:
        if catalog.get_model_version(session=session, model=model, version=version) is not None:
            return None
    mv = client.get_model_version(model, version)
    user = client.get_run(mv.run_id).info.user_id if mv.run_id else None
    record = ModelVersionRecord(
        model=model, version=version, run_id=mv.run_id or None, source="mlflow-webhook",
        trainer=user or "",
    )  # fmt: skip
    with session_scope(engine) as session:
        stored = catalog.add_model_version(session=session, record=record)
        if stored is record:
            audit.append(
                session=session, actor=f"mlflow-user:{user or '(none)'}",
                action="model.registered", subject=f"{model}/{version}",
                payload={"run_id": mv.run_id, "source": "mlflow-webhook",
                         "source_uri": mv.source},
            )  # fmt: skip
    return stored


def validate_stage(
    *, lake: Lake, engine: Engine, client: MlflowClient, model: str, version: str
) -> ValidationStageResult:
    """Run every gate on the platform's holdout, record the verdict, move `challenger`.

    A pipeline-trained version is scored on its own recorded holdout; a version registered
    outside the pipeline on the champion's recorded holdout (else the newest pipeline-trained
    version's). A holdout whose rebuilt rows do not match the recorded digest rejects the
    version; a registry error while looking up the champion raises RegistryUnavailable.
    """
    version = str(version)
    record_notebook_registration(engine=engine, client=client, model=model, version=version)
    try:
        spec = spec_of_version(engine, model, version)
    except ledger.UnknownModelError as error:
        return _refused(engine, client, model, version, str(error))
    champion = current_champion(client, model)
    try:
        owned = platform_holdout(
            lake=lake, engine=engine, spec=spec, model=model, version=version, champion=champion
        )
    except HoldoutError as error:
        return _refused(engine, client, model, version, str(error), gate="holdout")
    with tempfile.TemporaryDirectory(prefix="riskops-plots-") as tmp:
        plots = Path(tmp)
        try:
            report = evaluate_version(
                client=client, spec=spec, model_name=model, version=version,
                champion_version=champion if champion != version else None, plots_dir=plots,
                train_sample=training_sample(owned.train), holdout=owned.holdout,
                plan=owned.plan,
            )  # fmt: skip
        except MissingInputs as error:  # a notebook model on columns the platform does not own
            return _refused(engine, client, model, version, str(error), gate="holdout")
        report = GateReport(report.results, {**report.context, **owned.context()})
        _publish(client, model, version, report, plots)
    data = report.to_dict()
    with session_scope(engine) as session:
        session.add(
            ValidationRecord(
                model=model,
                version=version,
                passed=report.passed,
                failed_gates=list(report.failed),
                report=json.loads(json.dumps(data, default=str)),
                validator=VALIDATOR,
            )
        )
        audit.append(
            session=session, actor=VALIDATOR,
            action="model.validated" if report.passed else "model.rejected",
            subject=f"{model}/{version}",
            payload={"passed": report.passed, "failed": list(report.failed), "champion": champion},
        )  # fmt: skip
        event = RiskopsEvent(
            name=events.MODEL_VALIDATED if report.passed else events.MODEL_REJECTED,
            resource_id=events.model_resource(model, version),
            payload={
                "model": model,
                "version": version,
                "passed": report.passed,
                "failed_gates": list(report.failed),
                "champion": champion,
            },
            related=((events.model_resource(model, champion), "champion"),) if champion else (),
        )
        event_id = outbox.enqueue(session=session, event=event)
    _set_challenger(client, model, version, report.passed)
    return ValidationStageResult(
        report.passed,
        list(report.failed),
        data,
        report.to_markdown(),
        report.to_table_rows(),
        event,
        event_id,
    )
