"""Realised performance on late outcomes, and its leading indicator until they arrive.

Run on ``riskops.labels.landed``: the champion's decisions (the decision log) joined to every
outcome landed for the model (:mod:`riskops.monitoring.labels`), measured per vintage, band and
overall against the version's development benchmark (the AUC and KS its validation recorded).
Beside it, CBPE's estimate of the newest vintage's AUC from its scores alone, calibrated on the
version's platform holdout. A degraded verdict emits ``riskops.performance.degraded`` through
the outbox.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from riskops import outbox
from riskops.events import (
    PERFORMANCE_DEGRADED,
    RiskopsEvent,
    model_resource,
    outcome_resource,
)
from riskops.features.online_store import InProcessStore
from riskops.monitoring.cbpe import CBPEEstimate, estimate_performance, fit_reference
from riskops.monitoring.labels import read_labels
from riskops.monitoring.outcome_join import LabelJoin
from riskops.monitoring.performance import (
    Benchmark,
    OutcomeTolerance,
    PerformanceReport,
    realised_performance,
)
from riskops.platform import Platform
from riskops.records import PerformanceResult as PerformanceRecord
from riskops.records import ValidationRecord
from riskops.serving.decision_files import read_decisions
from riskops.serving.loader import load_version
from riskops.stages.holdout import platform_holdout
from riskops.stages.monitor import MonitorError
from riskops.training.split import target01


@dataclass
class PerformanceResult:
    """Realised performance (None before any outcome matched) and the CBPE estimate."""

    model: str
    version: str
    realised: PerformanceReport | None
    estimate: CBPEEstimate | None
    estimated_vintage: str | None
    event_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "model": self.model, "version": self.version, "event_id": self.event_id,
            "realised": None if self.realised is None else self.realised.to_dict(),
            "estimate": None if self.estimate is None else self.estimate.to_dict(),
            "estimated_vintage": self.estimated_vintage, "notes": self.notes,
        }  # fmt: skip


def development_benchmark(platform: Platform, model: str, version: str) -> Benchmark | None:
    """The AUC (and KS) the version's validation measured on the platform holdout."""
    with Session(platform.engine) as session:
        record = session.exec(
            select(ValidationRecord)
            .where(ValidationRecord.model == model, ValidationRecord.version == version)
            .order_by(col(ValidationRecord.id).desc())
        ).first()
    if record is None:
        return None
    auc = ks = None
    for result in record.report.get("results", []):
        evidence = result.get("evidence") or {}
        auc = auc if auc is not None else evidence.get("auc")
        ks = ks if ks is not None else evidence.get("ks")
    if auc is None:
        return None
    return Benchmark(float(auc), None if ks is None else float(ks),
                     f"validation of {model} v{version} (platform holdout)")  # fmt: skip


def performance_stage(*, platform: Platform, model: str) -> PerformanceResult:
    """Measure the champion of ``model`` on its landed outcomes (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="riskops-performance-") as cache:
        served = load_version(platform, model, "champion", store=InProcessStore(),
                              cache_dir=Path(cache))  # fmt: skip
    if served is None:
        raise MonitorError(f"{model} has no champion: there are no decisions to measure")
    spec = served.spec
    decisions = read_decisions(platform.lake, platform.engine, model, version=served.version)
    labels = read_labels(platform, model)
    result = PerformanceResult(model, served.version, None, None, None)
    if decisions.empty:
        result.notes.append(f"no decisions of v{served.version} in the decision log yet")
        return result
    benchmark = development_benchmark(platform, model, served.version)
    if benchmark is None:
        result.notes.append("no development AUC recorded at validation: no verdict possible")
    join = LabelJoin(positive_label=spec.positive_label)
    if not labels.empty:
        result.realised = realised_performance(
            decisions, labels, join=join, benchmark=benchmark,
            tolerance=OutcomeTolerance.from_spec(spec),
        )  # fmt: skip
    result.estimate, result.estimated_vintage = _estimate(platform, served, decisions, result)
    if result.realised is not None and result.realised.degraded:
        result.event_id = _announce(platform, result, benchmark)
    _record(platform, result, benchmark)
    return result


def _record(platform: Platform, result: PerformanceResult, benchmark: Benchmark | None) -> None:
    realised = result.realised
    with Session(platform.engine) as session:
        session.add(
            PerformanceRecord(
                model=result.model, version=result.version,
                labelled_rows=0 if realised is None else realised.overall.n,
                degraded=bool(realised and realised.degraded),
                breaching_vintages=[] if realised is None else list(realised.breaching_vintages),
                overall_auc=None if realised is None else realised.overall.auc,
                benchmark_auc=None if benchmark is None else benchmark.auc,
                estimated_vintage=result.estimated_vintage,
                estimated_auc=None if result.estimate is None else result.estimate.auc.value,
                report=result.to_dict(), event_id=result.event_id,
            )
        )  # fmt: skip
        session.commit()


def _estimate(
    platform: Platform, served: Any, decisions: Any, result: PerformanceResult
) -> tuple[CBPEEstimate | None, str | None]:
    """CBPE on the newest vintage, calibrated on the platform holdout of the version."""
    try:
        holdout = platform_holdout(
            lake=platform.lake, engine=platform.engine, spec=served.spec, model=served.name,
            version=served.version, champion=None,
        )  # fmt: skip
    except Exception as error:  # a version without a platform holdout: no leading indicator
        result.notes.append(f"no CBPE estimate: {error}")
        return None, None
    frame = holdout.holdout
    scores = served.engine.probabilities(served.engine.frame_matrix(frame))
    reference = fit_reference(scores, target01(frame[served.spec.target], served.spec))
    month = decisions["decided_at"].dt.strftime("%Y-%m")
    newest = month.max()
    return estimate_performance(reference, decisions.loc[month == newest, "score"]), newest


def _announce(platform: Platform, result: PerformanceResult, benchmark: Benchmark | None) -> str:
    report = result.realised
    assert report is not None and benchmark is not None
    breaching = [v for v in report.vintages if v.key in report.breaching_vintages]
    worst = min(breaching, key=lambda v: v.auc if v.auc is not None else 1.0)
    payload = {
        "model": result.model, "version": result.version, "metric": "auc",
        "value": worst.auc, "reference_value": benchmark.auc,
        "max_drop": report.tolerance.max_auc_drop, "labelled_rows": report.overall.n,
        "window": {"start": min(report.breaching_vintages), "end": max(report.breaching_vintages)},
    }  # fmt: skip
    event = RiskopsEvent(
        PERFORMANCE_DEGRADED, outcome_resource(result.model), payload,
        related=((model_resource(result.model, result.version), "model-version"),),
    )  # fmt: skip
    with Session(platform.engine) as session:
        event_id = outbox.enqueue(session=session, event=event)
        session.commit()
    return event_id
