"""Validation stage: a registered version goes through the gates; `challenger` if all pass."""

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
from riskops.features.warmup import drop_warmup
from riskops.governance.promotion import CHALLENGER, current_champion
from riskops.lake.base import Lake
from riskops.records import DatasetVersion, FeatureSetRecord, ValidationRecord
from riskops.specs import ModelSpec
from riskops.validation.evaluate import download_holdout, evaluate_version

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
        dataset = session.get(DatasetVersion, record.dataset_version_id) if record else None
        if dataset is not None:
            return ledger.spec_version(session=session, name=model, spec_hash=dataset.spec_hash)
        return ledger.current_spec(session=session, name=model)


def _publish(client: MlflowClient, model: str, version: str, report: Any, plots: Path) -> None:
    """Gate results as version tags, and the report + plots as artifacts of the version's run."""
    passed = "passed" if report.passed else "failed"
    client.set_model_version_tag(model, version, "riskops.validation", passed)
    for gate in report.to_dict()["results"]:
        client.set_model_version_tag(
            model, version, f"riskops.gate.{gate['name']}", "pass" if gate["passed"] else "fail"
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


def training_sample(
    *, lake: Lake, engine: Engine, client: MlflowClient, spec: ModelSpec, model: str,
    version: str, rows: int = 50_000,
) -> pd.DataFrame | None:  # fmt: skip
    """Rows of the version's feature set that were not in its holdout (for stability PSI)."""
    with session_scope(engine) as session:
        record = catalog.get_model_version(session=session, model=model, version=version)
        featureset = session.get(FeatureSetRecord, record.feature_set_id) if record else None
    id_column = spec.data.id_column
    if featureset is None or not id_column:
        return None
    with lake.local_tree(lake.key_of(featureset.uri)) as folder:
        frame, _dropped = drop_warmup(pd.read_parquet(folder / "data"), featureset.manifest["plan"])
    with tempfile.TemporaryDirectory(prefix="riskops-holdout-") as tmp:
        holdout = download_holdout(client, model, version, Path(tmp))
    train = frame[~frame[id_column].isin(holdout[id_column])]
    return train.sample(n=min(rows, len(train)), random_state=0) if len(train) else None


def _refused_without_spec(
    engine: Engine, client: MlflowClient, model: str, version: str, why: str
) -> ValidationStageResult:
    """A version of a model nobody onboarded: no gates can be chosen, so it is rejected."""
    gate = {"name": "spec", "passed": False, "value": None, "threshold": None, "message": why}
    report = {"passed": False, "failed": ["spec"], "context": {}, "results": [gate]}
    with session_scope(engine) as session:
        session.add(
            ValidationRecord(
                model=model,
                version=version,
                passed=False,
                failed_gates=["spec"],
                report=report,
                validator=VALIDATOR,
            )
        )
        audit.append(
            session=session, actor=VALIDATOR, action="model.rejected",
            subject=f"{model}/{version}", payload={"passed": False, "failed": ["spec"], "why": why},
        )  # fmt: skip
        event = RiskopsEvent(
            name=events.MODEL_REJECTED,
            resource_id=events.model_resource(model, version),
            payload={"model": model, "version": version, "passed": False,
                     "failed_gates": ["spec"], "reason": why},
        )  # fmt: skip
        event_id = outbox.enqueue(session=session, event=event)
    client.set_model_version_tag(model, version, "riskops.validation", "failed")
    markdown = f"# {model} v{version}: rejected\n\n{why}\n"
    table = [{"gate": "spec", "status": "fail", "message": why}]
    return ValidationStageResult(False, ["spec"], report, markdown, table, event, event_id)


def validate_stage(
    *, lake: Lake, engine: Engine, client: MlflowClient, model: str, version: str
) -> ValidationStageResult:
    """Run every gate on the stored holdout, record the verdict, move `challenger`."""
    version = str(version)
    try:
        spec = spec_of_version(engine, model, version)
    except ledger.UnknownModelError as error:
        return _refused_without_spec(engine, client, model, version, str(error))
    champion = current_champion(client, model)
    train = training_sample(
        lake=lake, engine=engine, client=client, spec=spec, model=model, version=version
    )
    with tempfile.TemporaryDirectory(prefix="riskops-plots-") as tmp:
        plots = Path(tmp)
        report = evaluate_version(
            client=client, spec=spec, model_name=model, version=version,
            champion_version=champion if champion != version else None, plots_dir=plots,
            train_sample=train,
        )  # fmt: skip
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
