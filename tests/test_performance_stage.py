"""Realised performance on landed outcomes: unchanged outcomes pass, outcomes that no longer
follow the score are declared degraded and announced; CBPE estimates the newest vintage."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select

from riskops.db import session_scope
from riskops.events import PERFORMANCE_DEGRADED
from riskops.features.online_store import InProcessStore
from riskops.monitoring.labels import land_labels
from riskops.outbox import OutboxEvent
from riskops.records import FeatureSetRecord, ValidationRecord
from riskops.serving.loader import load_version
from riskops.stages.holdout import read_feature_rows
from riskops.stages.performance import development_benchmark, performance_stage
from riskops.training.metrics import binary_metrics
from riskops.training.split import target01
from tests.serving_helpers import ServingPlatform, log_decisions

MODEL = "credit-scoring"
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
    )
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("performance")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        sp = ServingPlatform(root, MODEL, "credit_scoring", rows=10_000)
        yield sp
    sp.engine.dispose()


def test_outcomes_are_measured_per_vintage_and_a_degradation_is_announced(platform, tmp_path):
    version = platform.train(seed=4)
    platform.promote(version)
    with tempfile.TemporaryDirectory() as cache:
        served = load_version(platform.platform, MODEL, "champion", store=InProcessStore(),
                              cache_dir=Path(cache))  # fmt: skip
    with Session(platform.engine) as session:
        rows = read_feature_rows(
            platform.lake, session.get(FeatureSetRecord, platform.featureset_id)
        )
    spec = served.spec
    y = target01(rows[spec.target], spec)
    auc = binary_metrics(y, served.engine.probabilities(served.engine.frame_matrix(rows)))["auc"]
    with session_scope(platform.engine) as session:  # what validation records on the holdout
        record = session.exec(
            select(ValidationRecord).where(ValidationRecord.version == version)
        ).one()
        record.report = {"results": [{"name": "discrimination", "evidence": {"auc": auc}}]}
        session.add(record)
    assert development_benchmark(platform.platform, MODEL, version).auc == pytest.approx(auc)

    # Two months of decisions; outcomes of the first follow the model, of the second are noise.
    rng = np.random.default_rng(0)
    june, july = rows.iloc[:3_000], rows.iloc[3_000:6_000]
    ids_june = log_decisions(platform, served, june, dt.datetime(2026, 6, 15, tzinfo=dt.UTC))
    ids_july = log_decisions(platform, served, july, dt.datetime(2026, 7, 15, tzinfo=dt.UTC))
    labels = pd.DataFrame(
        {
            "decision_id": ids_june + ids_july,
            spec.target: np.concatenate([y[:3_000], rng.permutation(y[3_000:6_000])]),
        }
    )
    path = tmp_path / "outcomes.parquet"
    labels.to_parquet(path, index=False)
    land_labels(platform=platform.platform, spec=spec, path=path, actor="collections")

    result = performance_stage(platform=platform.platform, model=MODEL)
    report = result.realised
    assert report is not None and report.join.matched_by_decision_id == 6_000
    assert [v.key for v in report.vintages] == ["2026-06", "2026-07"]
    assert report.degraded and report.breaching_vintages == ("2026-07",)
    june_perf = report.vintages[0]
    assert june_perf.auc > auc - 0.03 and report.vintages[1].auc < 0.6  # in-sample rows in June
    with Session(platform.engine) as session:
        (event,) = session.exec(select(OutboxEvent).where(OutboxEvent.name == PERFORMANCE_DEGRADED))
    assert event.id == result.event_id and event.resource_id == f"riskops.monitor.{MODEL}.outcome"
    assert event.payload["reference_value"] == pytest.approx(auc) and event.payload["value"] < 0.6
    # the leading indicator of the newest vintage, from its scores alone
    assert result.estimated_vintage == "2026-07" and result.estimate is not None
    assert result.estimate.n == 3_000 and 0.5 < result.estimate.auc.value < 1.0
