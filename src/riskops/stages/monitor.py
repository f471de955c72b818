"""The monitor: the newest window of a champion's decisions against its baselines.

For the champion of a model, each run takes the decisions logged since the last window it
judged (at most ``window``; the decision log is the input) and compares profiles of them, from
sketches alone (:mod:`riskops.monitoring.drift`):

* **skew** — the served model inputs (features computed online) against the version's training
  rows (its reference): training-serving skew;
* **prediction** — the scores against the scores of the training rows;
* **data** — the served inputs against the previous window's (what moved since last time);
* **quality** — the null-rate and new-category changes found by the skew comparison.

A kind whose worst band is ``watch`` or ``alert`` emits ``riskops.drift.detected`` (severity
``warn`` or ``alert``) through the outbox; every comparison is kept as a ``drift_result`` row
(``riskops drift show``). Profiles of the window and of the reference are stored in the lake and
indexed, so the next run and whylogs' own tools can read them.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session, col, select

from riskops import outbox
from riskops.events import DRIFT_DETECTED, RiskopsEvent, model_resource, monitor_resource
from riskops.features.online_store import InProcessStore
from riskops.monitoring.baselines import time_span
from riskops.monitoring.drift import Band, DriftReport, FeatureDrift, compare_profiles
from riskops.monitoring.profiles import merge_views, profile_frame
from riskops.monitoring.schema import ProfileSchema
from riskops.monitoring.store import find_profiles, load_profile, rollup, store_profile
from riskops.monitoring.thresholds import DriftThresholds
from riskops.monitoring.whylogs_compat import DatasetProfileView
from riskops.platform import Platform
from riskops.records import DriftResult, FeatureSetRecord, HoldoutRecord, ModelVersionRecord
from riskops.serving.decision_files import FEATURE_PREFIX, HAS_INPUTS, INPUT_PREFIX, read_decisions
from riskops.serving.loader import load_version
from riskops.serving.served import ServedModel
from riskops.specs import ModelSpec
from riskops.stages.holdout import read_feature_rows
from riskops.training.split import SplitRule, apply_split

SCORE = "score"
REFERENCE, SCORES, DECISION_FEATURES = "reference", "scores", "decisions-features"
DECISION_INPUTS = "decisions-inputs"  # raw request fields (versions with a feature plan)
SEVERITY = {Band.WATCH: "warn", Band.ALERT: "alert"}


class MonitorError(RuntimeError):
    """The monitor cannot run for a model (no champion, no reference); the message says why."""


@dataclass(frozen=True)
class Baseline:
    """The reference of one version: its training rows' model inputs and scores, profiled."""

    description: str
    features: DatasetProfileView
    scores: DatasetProfileView
    rows: int


@dataclass
class MonitorResult:
    """What one monitor run compared and what it raised."""

    model: str
    version: str
    window_start: dt.datetime
    window_end: dt.datetime
    rows: int
    reports: dict[str, DriftReport] = field(default_factory=dict)
    events: dict[str, str] = field(default_factory=dict)  # kind -> outbox event id
    skipped: str | None = None

    def summary(self) -> dict[str, Any]:
        """JSON form, one line per kind."""
        return {
            "model": self.model, "version": self.version, "rows": self.rows,
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "skipped": self.skipped,
            "kinds": {
                kind: {
                    "worst_band": None if r.worst_band is None else str(r.worst_band),
                    "drifted": list(r.drifted()), "event_id": self.events.get(kind),
                } for kind, r in self.reports.items()
            },
        }  # fmt: skip


def _schema(served: ServedModel, identifiers: tuple[str, ...]) -> ProfileSchema:
    inputs = served.engine.inputs
    categorical = tuple(n for n in inputs if n in served.engine.categorical)
    numeric = tuple(n for n in inputs if n not in served.engine.categorical)
    return ProfileSchema(numeric=numeric, categorical=categorical, identifiers=identifiers)


def _input_schema(served: ServedModel) -> ProfileSchema | None:
    """The raw request fields the log keeps for ``served`` (None: its inputs are the fields)."""
    if not served.input_fields:
        return None
    kinds = {f.name: f.kind for f in served.schema.fields.values()}
    fields = served.input_fields
    return ProfileSchema(
        numeric=tuple(f for f in fields if kinds.get(f) == "number"),
        categorical=tuple(f for f in fields if kinds.get(f) == "category"),
    )


def _raw_inputs(decisions: pd.DataFrame, served: ServedModel) -> pd.DataFrame:
    """The raw request fields of the decisions that kept them (online ones, not batch rows)."""
    kept = decisions[HAS_INPUTS].fillna(False).astype(bool) if HAS_INPUTS in decisions else None
    rows = decisions if kept is None else decisions[kept]
    columns = {INPUT_PREFIX + n: n for n in served.input_fields}
    return rows.reindex(columns=list(columns)).rename(columns=columns)


def _training_rows(platform: Platform, spec: ModelSpec, version: str) -> tuple[pd.DataFrame, str]:
    model = spec.name
    with Session(platform.engine) as session:
        record = session.exec(
            select(ModelVersionRecord).where(
                ModelVersionRecord.model == model, ModelVersionRecord.version == version
            )
        ).first()
        holdout = session.exec(
            select(HoldoutRecord).where(
                HoldoutRecord.model == model, HoldoutRecord.version == version
            )
        ).first()
        featureset_id = holdout.feature_set_id if holdout else (record and record.feature_set_id)
        featureset = session.get(FeatureSetRecord, featureset_id) if featureset_id else None
    if featureset is None:
        raise MonitorError(
            f"{model} v{version} has no catalogued feature set, so it has no reference to "
            "compare its decisions with (a version registered outside the pipeline?)"
        )
    frame = read_feature_rows(platform.lake, featureset)
    if holdout is None:
        return frame, f"feature set {featureset.id} (all rows: no recorded split)"
    train = apply_split(frame, spec, SplitRule.from_dict(holdout.rule)).train
    return train, f"training rows of feature set {featureset.id}"


def build_baseline(platform: Platform, served: ServedModel) -> Baseline:
    """The reference of ``served``'s version: stored once, then read back (never rebuilt)."""
    model, version = served.name, served.version
    with Session(platform.engine) as session:
        found = {
            kind: find_profiles(
                session, model=model, kind=kind, granularity="once", version=version
            )
            for kind in (REFERENCE, SCORES)
        }
    if all(found.values()):
        features = load_profile(platform.lake, found[REFERENCE][-1])
        scores = load_profile(platform.lake, found[SCORES][-1])
        rows = found[REFERENCE][-1].rows
        return Baseline(f"training rows of v{version} ({rows} rows)", features, scores, rows)
    frame, description = _training_rows(platform, served.spec, version)
    schema = _schema(served, (served.spec.entity_column or "",))
    values = served.engine.probabilities(served.engine.frame_matrix(frame))
    features = profile_frame(frame, schema)
    scores = profile_frame(pd.DataFrame({SCORE: values}), ProfileSchema(numeric=(SCORE,)))
    start, end = time_span(frame, served.spec.timestamp_column)
    with Session(platform.engine) as session:
        for kind, view in ((REFERENCE, features), (SCORES, scores)):
            store_profile(session, platform.lake, view, model=model, kind=kind, version=version,
                          window_start=start, window_end=end, granularity="once")  # fmt: skip
        session.commit()
    return Baseline(description, features, scores, len(frame))


def _hourly_profiles(
    platform: Platform, served: ServedModel, decisions: pd.DataFrame, schema: ProfileSchema
) -> tuple[DatasetProfileView, DatasetProfileView]:
    """Profile the window hour by hour (stored, rolled up to days and weeks), then merged."""
    hours = decisions["decided_at"].dt.floor("h")
    features, scores = [], []
    raw_schema = _input_schema(served)
    kinds = (DECISION_FEATURES, SCORES, *((DECISION_INPUTS,) if raw_schema else ()))
    with Session(platform.engine) as session:
        for hour, rows in decisions.groupby(hours, sort=True):
            start = hour.to_pydatetime()
            end = start + dt.timedelta(hours=1)
            f = profile_frame(_served_inputs(rows, served), schema, dataset_timestamp=start)
            s = profile_frame(rows[[SCORE]].astype(float), ProfileSchema(numeric=(SCORE,)),
                              dataset_timestamp=start)  # fmt: skip
            views = [(DECISION_FEATURES, f), (SCORES, s)]
            raw = _raw_inputs(rows, served) if raw_schema else None
            if raw_schema and raw is not None and len(raw):
                views.append((DECISION_INPUTS, profile_frame(raw, raw_schema,
                                                             dataset_timestamp=start)))  # fmt: skip
            for kind, view in views:
                store_profile(session, platform.lake, view, model=served.name, kind=kind,
                              version=served.version, window_start=start, window_end=end,
                              granularity="hour")  # fmt: skip
            features.append(f)
            scores.append(s)
        first = decisions["decided_at"].min().to_pydatetime()
        last = decisions["decided_at"].max().to_pydatetime() + dt.timedelta(hours=1)
        for kind in kinds:
            for granularity in ("day", "week"):
                rollup(session, platform.lake, model=served.name, kind=kind,
                       granularity=granularity, since=first - dt.timedelta(days=7),
                       until=last)  # fmt: skip
        session.commit()
    merged_features, merged_scores = merge_views(features), merge_views(scores)
    assert merged_features is not None and merged_scores is not None  # the window has rows
    return merged_features, merged_scores


def _window(
    platform: Platform, model: str, now: dt.datetime, window: dt.timedelta
) -> tuple[dt.datetime, dt.datetime]:
    with Session(platform.engine) as session:
        last = session.exec(
            select(DriftResult.window_end)
            .where(DriftResult.model == model, DriftResult.kind == "skew")
            .order_by(col(DriftResult.window_end).desc())
        ).first()
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    start = now - window if last is None else max(last, now - window)
    return start, now


def _served_inputs(decisions: pd.DataFrame, served: ServedModel) -> pd.DataFrame:
    columns = {FEATURE_PREFIX + n: n for n in served.engine.inputs}
    missing = [c for c in columns if c not in decisions.columns]
    frame = decisions.reindex(columns=list(columns)).rename(columns=columns)
    if missing:  # decisions logged without some input: profiled as all null (an alert)
        frame[[columns[c] for c in missing]] = None
    return frame


def _quality(skew: DriftReport, th: DriftThresholds) -> DriftReport:
    """The features of the skew comparison whose null rate or categories changed."""

    def judged(f: FeatureDrift) -> FeatureDrift:
        t = th.for_feature(f.name)
        null, new = abs(f.null_rate_change), f.new_category_share
        band = Band.STABLE
        if f.band is not None and (null > t.null_rate_warn or new > t.new_category_warn):
            band = min(f.band, Band.ALERT)
            if null <= t.null_rate_alert and new <= t.new_category_alert:
                band = min(band, Band.WATCH)
        reasons = tuple(r for r in f.reasons if "null" in r or "categor" in r)
        return FeatureDrift(**{**f.__dict__, "band": band if f.band is not None else None,
                               "reasons": reasons})  # fmt: skip

    return DriftReport(
        kind="quality", reference_rows=skew.reference_rows, target_rows=skew.target_rows,
        features=tuple(judged(f) for f in skew.features), thresholds=skew.thresholds,
    )  # fmt: skip


def _payload(result: MonitorResult, kind: str, report: DriftReport, baseline: str) -> dict:
    worst = [f for f in report.features if f.band is not None and f.band >= Band.WATCH]
    worst.sort(key=lambda f: (-int(f.band or 0), -(f.psi or 0.0), f.name))
    th = report.thresholds
    features = [
        {"name": f.name, "metric": "psi" if f.psi is not None else "null_rate_change",
         "value": round(f.psi if f.psi is not None else f.null_rate_change, 4),
         "warn": th.for_feature(f.name).psi_warn, "alert": th.for_feature(f.name).psi_alert}
        for f in worst
    ]  # fmt: skip
    return {
        "model": result.model, "version": result.version, "kind": kind,
        "severity": SEVERITY[report.worst_band or Band.WATCH],
        "window": {"start": result.window_start.isoformat(), "end": result.window_end.isoformat()},
        "features": features, "rows": result.rows, "reference": baseline,
    }  # fmt: skip


def monitor_stage(
    *,
    platform: Platform,
    model: str,
    now: dt.datetime | None = None,
    window: dt.timedelta = dt.timedelta(hours=24),
    load: Callable[..., ServedModel | None] = load_version,
) -> MonitorResult:
    """Compare the newest window of ``model``'s champion decisions with its baselines."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="riskops-monitor-") as cache:
        served = load(platform, model, "champion", store=InProcessStore(), cache_dir=Path(cache))
    if served is None:
        raise MonitorError(f"{model} has no champion: there are no decisions to monitor yet")
    start, end = _window(platform, model, now, window)
    decisions = read_decisions(platform.lake, platform.engine, model, since=start, until=end,
                               version=served.version)  # fmt: skip
    result = MonitorResult(model, served.version, start, end, len(decisions))
    spec = served.spec
    th = DriftThresholds.from_monitoring(spec.monitoring)
    if len(decisions) < th.min_rows:
        result.skipped = (
            f"{len(decisions)} decisions of v{served.version} since {start:%Y-%m-%d %H:%M} UTC; "
            f"the spec's monitoring.min_rows is {th.min_rows}: the window stays open"
        )
        return result
    baseline = build_baseline(platform, served)
    schema = _schema(served, (spec.entity_column or "",))
    window_view, scores = _hourly_profiles(platform, served, decisions, schema)
    result.reports["skew"] = compare_profiles(baseline.features, window_view, thresholds=th,
                                              kind="skew")  # fmt: skip
    result.reports["prediction"] = compare_profiles(baseline.scores, scores, thresholds=th,
                                                    kind="prediction")  # fmt: skip
    result.reports["quality"] = _quality(result.reports["skew"], th)
    previous = read_decisions(platform.lake, platform.engine, model, since=start - (end - start),
                              until=start, version=served.version)  # fmt: skip
    described = baseline.description
    baselines = {
        "skew": described,
        "prediction": f"scores of the {described}",
        "quality": described,
    }
    raw_schema = _input_schema(served)
    now_raw = _raw_inputs(decisions, served) if raw_schema is not None else None
    before_raw = _raw_inputs(previous, served) if raw_schema is not None else None
    if (
        raw_schema is not None and now_raw is not None and before_raw is not None
        and min(len(now_raw), len(before_raw)) >= th.min_rows
    ):  # data drift on the request fields as clients sent them  # fmt: skip
        result.reports["data"] = compare_profiles(
            profile_frame(before_raw, raw_schema), profile_frame(now_raw, raw_schema),
            thresholds=th, kind="data",
        )  # fmt: skip
        baselines["data"] = (
            f"the raw request fields of the previous window ({len(before_raw)} decisions)"
        )
    elif len(previous) >= th.min_rows:  # no raw fields kept (batch rows, no plan): model inputs
        before = profile_frame(_served_inputs(previous, served), schema)
        result.reports["data"] = compare_profiles(before, window_view, thresholds=th, kind="data")
        baselines["data"] = f"the previous window ({len(previous)} decisions)"
    _record(platform, result, baselines)
    return result


def _record(platform: Platform, result: MonitorResult, baselines: dict[str, str]) -> None:
    with Session(platform.engine) as session:
        for kind, report in result.reports.items():
            event_id = None
            worst = report.worst_band
            if worst is not None and worst >= Band.WATCH:
                event = RiskopsEvent(
                    DRIFT_DETECTED, monitor_resource(result.model, kind),
                    _payload(result, kind, report, baselines[kind]),
                    related=((model_resource(result.model, result.version), "model-version"),),
                )  # fmt: skip
                event_id = result.events[kind] = outbox.enqueue(session=session, event=event)
            session.add(
                DriftResult(
                    model=result.model, version=result.version, kind=kind,
                    baseline=baselines[kind], window_start=result.window_start,
                    window_end=result.window_end, rows=result.rows,
                    worst_band=None if worst is None else str(worst),
                    features=[f.to_dict() for f in report.features], event_id=event_id,
                )
            )  # fmt: skip
        session.commit()


def latest_results(platform: Platform, model: str) -> list[DriftResult]:
    """The newest comparison of each kind for ``model`` (``riskops drift show``)."""
    with Session(platform.engine) as session:
        rows = session.exec(
            select(DriftResult).where(DriftResult.model == model)
            .order_by(col(DriftResult.created_at).desc(), col(DriftResult.id).desc())
        ).all()  # fmt: skip
    latest: dict[str, DriftResult] = {}
    for row in rows:
        latest.setdefault(row.kind, row)
    return list(latest.values())


@dataclass(frozen=True)
class WrittenReport:
    """The report of one monitor run: table rows, markdown (charts inline), the HTML in the lake."""

    rows: list[dict[str, Any]]
    markdown: str
    html_uri: str


def write_report(platform: Platform, result: MonitorResult, history: int = 48) -> WrittenReport:
    """Render the run's report and put the self-contained HTML page in the lake."""
    from riskops.monitoring import report

    with Session(platform.engine) as session:
        past = list(
            session.exec(
                select(DriftResult)
                .where(DriftResult.model == result.model, DriftResult.kind == "skew")
                .order_by(col(DriftResult.window_end).desc())
                .limit(history)
            )
        )[::-1]
    rows = report.table_rows(result.reports)
    charts: dict[str, bytes] = {}
    skew = result.reports.get("skew")
    if skew is not None:
        worst = [r["feature"] for r in rows if r["kind"] == "skew"][:5]
        th = skew.thresholds
        charts["PSI over time"] = report.psi_chart(past, worst, th.psi_warn, th.psi_alert)
    if "prediction" in result.reports and (png := report.score_chart(result.reports["prediction"])):
        charts["Score distribution"] = png
    summary = result.summary()
    page = report.render_html(summary, rows, charts)
    key = (f"reports/drift/model={result.model}/{result.window_end:%Y-%m-%dT%H%M}"
           f"-v{result.version}.html")  # fmt: skip
    uri = platform.lake.put_bytes(key, page.encode("utf-8"))
    return WrittenReport(rows, report.render_markdown(summary, rows, charts), uri)


def monitored_models(platform: Platform) -> list[str]:
    """Onboarded models, in name order (the monitor skips those without a champion)."""
    from riskops.records import ModelSpecRecord

    with Session(platform.engine) as session:
        names = session.exec(select(ModelSpecRecord.name)).all()
    return sorted(set(names))


def results_since(platform: Platform, model: str, since: dt.datetime) -> list[DriftResult]:
    """The comparisons recorded for ``model`` since ``since`` (one monitor run's, for callers
    that ran it through its deployment: the flow run's own result is not persisted)."""
    with Session(platform.engine) as session:
        return list(
            session.exec(
                select(DriftResult)
                .where(DriftResult.model == model, DriftResult.created_at >= since)
                .order_by(col(DriftResult.id))
            )
        )
