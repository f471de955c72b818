"""The monitor on a real decision log: stable traffic raises nothing, drifted traffic is caught
on the right features and kinds, and every comparison is recorded."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select

from riskops.events import DRIFT_DETECTED
from riskops.features.online_store import InProcessStore
from riskops.outbox import OutboxEvent
from riskops.records import DriftResult, FeatureSetRecord, ProfileRecord
from riskops.serving.loader import load_version
from riskops.stages.holdout import read_feature_rows
from riskops.stages.monitor import MonitorError, latest_results, monitor_stage, write_report
from tests.serving_helpers import ServingPlatform, log_decisions

MODEL = "credit-scoring"
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
# MLflow's SQL store, opened in-process, still uses SQLAlchemy's deprecated ``noload``.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
    )
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("monitor")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        sp = ServingPlatform(root, MODEL, "credit_scoring", rows=8_000)
        yield sp
    sp.engine.dispose()


def served_model(sp: ServingPlatform):
    with tempfile.TemporaryDirectory() as cache:
        return load_version(sp.platform, MODEL, "champion", store=InProcessStore(),
                            cache_dir=Path(cache))  # fmt: skip


def log_traffic(
    sp: ServingPlatform, served, frame: pd.DataFrame, at: dt.datetime, raw: bool = True
) -> list[str]:
    return log_decisions(sp, served, frame, at, raw=raw)


def test_the_monitor_needs_a_champion(platform):
    with pytest.raises(MonitorError, match="no champion"):
        monitor_stage(platform=platform.platform, model=MODEL, now=NOW)


def test_stable_traffic_is_quiet_and_drifted_traffic_is_caught(platform):
    version = platform.train(seed=3)
    platform.promote(version)
    served = served_model(platform)
    with Session(platform.engine) as session:
        featureset = session.get(FeatureSetRecord, platform.featureset_id)
    rows = read_feature_rows(platform.lake, featureset)
    rng = np.random.default_rng(5)

    # Too few decisions: the window stays open.
    log_traffic(platform, served, rows.sample(100, random_state=1), NOW - dt.timedelta(hours=30))
    few = monitor_stage(platform=platform.platform, model=MODEL, now=NOW - dt.timedelta(hours=29))
    assert few.skipped and "min_rows" in few.skipped and not few.reports

    # A day of traffic drawn from the training distribution: nothing crosses a band.
    stable = rows.sample(3_000, random_state=2)
    log_traffic(platform, served, stable, NOW - dt.timedelta(hours=10))
    quiet = monitor_stage(platform=platform.platform, model=MODEL, now=NOW - dt.timedelta(hours=9))
    assert quiet.skipped is None and quiet.rows == 3_100
    assert set(quiet.reports) == {"skew", "prediction", "quality"}
    for kind, report in quiet.reports.items():
        assert report.alerts() == (), (kind, report.alerts())
    assert quiet.events == {}

    # Next window: incomes cut to a third and a third of the bureau scores missing.
    drifted = rows.sample(3_000, random_state=3).copy()
    numeric = [c for c in served.engine.inputs if c not in served.engine.categorical]
    income = next(c for c in numeric if "income" in c)
    drifted[income] = drifted[income] / 3.0
    holed = next(c for c in numeric if c != income and drifted[c].notna().all())
    drifted.loc[rng.random(len(drifted)) < 0.35, holed] = np.nan
    log_traffic(platform, served, drifted, NOW - dt.timedelta(hours=2))
    loud = monitor_stage(platform=platform.platform, model=MODEL, now=NOW)
    assert loud.window_start == quiet.window_end  # windows follow one another
    skew = loud.reports["skew"]
    assert income in skew.alerts() and holed in skew.alerts()
    assert (
        holed in loud.reports["quality"].alerts() and income not in loud.reports["quality"].alerts()
    )
    assert income in loud.reports["data"].alerts()  # against the previous (stable) window
    # A version with a feature plan: data drift is judged on the raw request fields, and they
    # are profiled hour by hour beside the model inputs and the scores.
    assert served.input_fields and income in served.input_fields
    with Session(platform.engine) as session:
        profiled = {r.kind for r in session.exec(select(ProfileRecord)).all()}
    assert {"decisions-inputs", "decisions-features", "scores"} <= profiled
    assert "skew" in loud.events and "data" in loud.events
    with Session(platform.engine) as session:
        events = session.exec(select(OutboxEvent).where(OutboxEvent.name == DRIFT_DETECTED)).all()
        results = session.exec(select(DriftResult)).all()
    payload = next(e.payload for e in events if e.payload["kind"] == "skew")
    assert payload["severity"] == "alert" and payload["version"] == version
    assert {f["name"] for f in payload["features"]} >= {income, holed}
    assert payload["rows"] == 3_000 and "training rows" in payload["reference"]
    assert len(results) == 3 + 4
    shown = {r.kind: r for r in latest_results(platform.platform, MODEL)}
    assert shown["data"].baseline.startswith("the raw request fields of the previous window")
    assert (
        shown["skew"].worst_band == "alert"
        and shown["skew"].window_end.replace(tzinfo=dt.UTC) == NOW
    )
    report = write_report(platform.platform, loud)
    page = platform.lake.get_bytes(platform.lake.key_of(report.html_uri)).decode()
    assert income in page and holed in page and page.count("data:image/png;base64,") == 2
    assert "![PSI over time](data:image/png;base64," in report.markdown
    assert report.rows[0]["band"] == "alert" and {r["kind"] for r in report.rows} == set(
        loud.reports
    )


def test_batch_rows_without_raw_fields_are_judged_for_data_drift_on_model_inputs(platform):
    # Runs after the test above (module fixture): a window of batch-scored rows, which keep no
    # raw request fields, is still compared with the previous window, on the model inputs.
    served = served_model(platform)
    assert served.input_fields
    with Session(platform.engine) as session:
        featureset = session.get(FeatureSetRecord, platform.featureset_id)
    rows = read_feature_rows(platform.lake, featureset)
    later = NOW + dt.timedelta(hours=2)
    log_traffic(platform, served, rows.sample(3_000, random_state=9), later - dt.timedelta(hours=1),
                raw=False)  # fmt: skip
    batch = monitor_stage(platform=platform.platform, model=MODEL, now=later)
    assert "data" in batch.reports, batch.reports.keys()
    shown = {r.kind: r for r in latest_results(platform.platform, MODEL)}
    assert shown["data"].baseline.startswith("the previous window (")
