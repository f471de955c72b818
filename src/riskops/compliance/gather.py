"""Gather a card's inputs from the platform DB and from MLflow (through an explicit client)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from riskops import audit, catalog
from riskops.audit.anchor import anchor_from_tags
from riskops.compliance.card import CardInputs
from riskops.records import (
    DriftResult,
    FeatureSetRecord,
    PerformanceResult,
    PromotionRecord,
    SignOffRecord,
    ValidationRecord,
)
from riskops.specs import ModelSpec

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

SPLIT_ARTIFACT = "holdout/split.json"
TRAINING_PLOTS = "plots"
VALIDATION_ARTIFACTS = "validation"


def _errors() -> tuple[type[BaseException], ...]:
    """What a missing MLflow object or artifact raises (imported late: mlflow is slow to load)."""
    from mlflow.exceptions import MlflowException

    return (MlflowException, OSError, LookupError, ValueError)


def _lineage(
    session: Session, model: str, version: str
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Catalog lineage (None when the version was not catalogued) and skipped features."""
    try:
        lineage = catalog.lineage_of_version(session=session, model=model, version=version)
    except LookupError:
        return None, []
    fs_id = (lineage.get("model_version") or {}).get("feature_set_id")
    record = session.get(FeatureSetRecord, fs_id) if fs_id else None
    skipped = list((record.manifest or {}).get("skipped_features") or []) if record else []
    return lineage, skipped


def _validation(session: Session, model: str, version: str) -> dict[str, Any] | None:
    record = session.exec(
        select(ValidationRecord).where(
            ValidationRecord.model == model, ValidationRecord.version == str(version)
        )
    ).first()
    if record is None:
        return None
    report = dict(record.report or {}) or {"passed": record.passed, "failed": record.failed_gates}
    report.setdefault("validator", record.validator)
    report.setdefault("validated_at", record.validated_at.isoformat())
    return report


def _sign_offs(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    rows = session.exec(
        select(SignOffRecord)
        .where(SignOffRecord.model == model, SignOffRecord.version == str(version))
        .order_by(col(SignOffRecord.id))
    ).all()
    return [row.model_dump(mode="json") for row in rows]


def _promotions(session: Session, model: str) -> list[dict[str, Any]]:
    rows = session.exec(
        select(PromotionRecord)
        .where(PromotionRecord.model == model)
        .order_by(col(PromotionRecord.id))
    ).all()
    return [row.model_dump(mode="json") for row in rows]


def _audit_rows(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """The audit rows whose subject is exactly this version (``model/version``)."""
    subject = f"{model}/{version}"
    rows = audit.rows_for_subject(session=session, subject_prefix=subject)
    return [
        {"seq": r.seq, "occurred_at": r.occurred_at.isoformat(), "actor": r.actor,
         "action": r.action}
        for r in rows
        if r.subject == subject
    ]  # fmt: skip


def _drift_results(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """The monitor's latest comparison of each kind for this version."""
    rows = session.exec(
        select(DriftResult)
        .where(DriftResult.model == model, DriftResult.version == version)
        .order_by(col(DriftResult.window_end).desc(), col(DriftResult.id).desc())
    ).all()
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.kind not in latest:
            drifted = [f["name"] for f in row.features if f.get("band") in ("watch", "alert")]
            latest[row.kind] = {
                "kind": row.kind, "baseline": row.baseline, "rows": row.rows,
                "window_start": row.window_start.isoformat(), "worst_band": row.worst_band,
                "window_end": row.window_end.isoformat(), "drifted": drifted,
                "windows": sum(1 for r in rows if r.kind == row.kind),
            }  # fmt: skip
    return list(latest.values())


def _performance_results(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    """The version's measurements on landed outcomes, newest first."""
    rows = session.exec(
        select(PerformanceResult)
        .where(PerformanceResult.model == model, PerformanceResult.version == version)
        .order_by(col(PerformanceResult.id).desc())
    ).all()
    keep = ("labelled_rows", "degraded", "breaching_vintages", "overall_auc", "benchmark_auc",
            "estimated_vintage", "estimated_auc")  # fmt: skip
    return [{k: getattr(r, k) for k in keep} | {"at": r.created_at.isoformat()} for r in rows]


def _anchor(tags: dict[str, str], model: str, version: str) -> dict[str, Any] | None:
    """The chain head anchored on this version; an unreadable anchor is stated, not dropped."""
    try:
        found = anchor_from_tags(tags, f"model {model} version {version}")
    except ValueError as error:
        return {"error": str(error)}
    return found._asdict() if found is not None else None


def _pngs(folder: Path | None) -> list[Path]:
    return sorted(folder.rglob("*.png")) if folder is not None and folder.is_dir() else []


class _Mlflow:
    """The few MLflow reads a card needs; each missing piece becomes None, never an error."""

    def __init__(self, client: MlflowClient, workdir: Path) -> None:
        self.client, self.workdir, self.errors = client, workdir, _errors()

    def version_tags(self, model: str, version: str) -> tuple[str | None, dict[str, str]]:
        try:
            mv = self.client.get_model_version(model, str(version))
        except self.errors:
            return None, {}
        return getattr(mv, "run_id", None), dict(getattr(mv, "tags", None) or {})

    def run(self, run_id: str | None) -> Any:
        if not run_id:
            return None
        try:
            return self.client.get_run(run_id)
        except self.errors:
            return None

    def download(self, run_id: str, path: str, into: str) -> Path | None:
        target = self.workdir / into
        target.mkdir(parents=True, exist_ok=True)
        try:
            return Path(self.client.download_artifacts(run_id, path, str(target)))
        except self.errors:
            return None


def _training(
    mlflow: _Mlflow, model: str, version: str, fallback_run: str | None
) -> dict[str, Any]:
    """Metrics, params, split and benchmark of the version's run ({} when there is none)."""
    mv_run, tags = mlflow.version_tags(model, version)
    run_id = tags.get("riskops.run_id") or mv_run or fallback_run
    run = mlflow.run(run_id)
    if run is None:
        return {}
    run_tags = dict(run.data.tags or {})
    bench_id = tags.get("riskops.benchmark_run_id") or run_tags.get("riskops.benchmark_run_id")
    bench = mlflow.run(bench_id)
    split_file = mlflow.download(run_id, SPLIT_ARTIFACT, "split")
    split = json.loads(split_file.read_text()) if split_file and split_file.is_file() else None
    params = dict(run.data.params or {})
    return {
        "run_id": run_id,
        "benchmark_run_id": bench_id if bench is not None else None,
        "metrics": dict(run.data.metrics or {}),
        "benchmark_metrics": dict(bench.data.metrics or {}) if bench is not None else None,
        "algorithm": tags.get("riskops.algorithm")
        or run_tags.get("riskops.algorithm")
        or params.get("algorithm"),
        "params": params,
        "split": split,
        "trainer": run_tags.get("riskops.trainer") or run_tags.get("mlflow.user"),
        "synthetic": (run_tags.get("riskops.synthetic") or "").lower() in ("1", "true", "yes"),
    }


def _plots(mlflow: _Mlflow, run_id: str | None) -> dict[str, Path]:
    """Training plots (``plots/``) and validation plots (anywhere under ``validation/``)."""
    if not run_id:
        return {}
    plots = {p.stem: p for p in _pngs(mlflow.download(run_id, TRAINING_PLOTS, "training"))}
    for path in _pngs(mlflow.download(run_id, VALIDATION_ARTIFACTS, "validation")):
        name = path.stem if path.stem not in plots else f"validation_{path.stem}"
        plots[name] = path
    return plots


def gather_card_inputs(
    *,
    session: Session,
    client: MlflowClient,
    spec: ModelSpec,
    model: str,
    version: str,
    workdir: Path,
    generated_at: dt.datetime | None = None,
) -> CardInputs:
    """Everything the card of ``model`` ``version`` needs; missing pieces stay empty (None/{})."""
    workdir = Path(workdir)
    version = str(version)
    lineage, skipped = _lineage(session, model, version)
    mlflow = _Mlflow(client, workdir)
    fallback_run = ((lineage or {}).get("model_version") or {}).get("run_id")
    training = _training(mlflow, model, version, fallback_run)
    synthetic = bool(training.pop("synthetic", False))
    if skipped:
        training["skipped_features"] = skipped
    sign_offs = _sign_offs(session, model, version)
    _, tags = mlflow.version_tags(model, version)
    return CardInputs(
        spec=spec,
        version=version,
        lineage=lineage,
        training=training,
        validation=_validation(session, model, version),
        sign_offs=sign_offs,
        promotions=_promotions(session, model),
        plots=_plots(mlflow, training.get("run_id")),
        audit_rows=_audit_rows(session, model, version),
        anchor=_anchor(tags, model, version),
        generated_at=generated_at or dt.datetime.now(dt.UTC),
        synthetic_data=True if synthetic or any(s.get("demo") for s in sign_offs) else None,
        drift_results=_drift_results(session, model, version),
        performance_results=_performance_results(session, model, version),
    )
