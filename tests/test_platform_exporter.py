"""The platform exporter: drift bands, champion mismatch and labels overdue, from the records."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient
from prometheus_client.parser import text_string_to_metric_families

from riskops import ledger
from riskops.db import session_scope
from riskops.governance.service import create_app
from riskops.lake.local import LocalLake
from riskops.observability.exporter import METRICS, exposition, platform_registry
from riskops.platform import Platform
from riskops.records import DriftResult, LabelsFile, PromotionRecord
from tests.governance_helpers import principal
from tests.test_signoff import FakePrefect

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
MODEL = "credit-scoring"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _samples(platform: Platform, now: dt.datetime = NOW) -> dict[tuple, float]:
    text = exposition(platform_registry(platform, now=now.timestamp)).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, *sorted(s.labels.items()))] = s.value
    return out


def _get(samples: dict[tuple, float], name: str, **labels: str) -> float | None:
    return samples.get((name, *sorted(labels.items())))


@pytest.fixture
def platform(engine, tmp_path: Path, all_specs) -> Platform:
    platform = Platform(engine=engine, lake=LocalLake(tmp_path / "lake"),
                        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")  # fmt: skip
    with session_scope(engine) as session:
        for name in (MODEL, "fraud-detection"):
            ledger.register_spec(session=session, spec=all_specs[name], source="t", actor="t")
    client = MlflowClient(tracking_uri=platform.mlflow_tracking_uri)
    client.create_registered_model(MODEL)
    for _ in range(2):
        client.create_model_version(MODEL, source=str(tmp_path), run_id=None)
    return platform


def _promote(platform: Platform, version: str, moved_at: dt.datetime) -> None:
    with session_scope(platform.engine) as session:
        session.add(PromotionRecord(model=MODEL, version=version, kind="promote", actor="t",
                                    moved_at=moved_at))  # fmt: skip
    platform.mlflow.set_registered_model_alias(MODEL, "champion", version)


def _drift(platform: Platform, kind: str, worst: str, features: list[dict], at: dt.datetime):
    with session_scope(platform.engine) as session:
        session.add(DriftResult(model=MODEL, version="1", kind=kind, baseline="training rows",
                                window_start=at - dt.timedelta(days=1), window_end=at, rows=900,
                                worst_band=worst, features=features, created_at=at))  # fmt: skip


def test_the_newest_drift_comparison_per_kind_is_exported_with_psi_and_band(platform):
    old = [{"name": "income", "psi": 0.4, "band": "alert"}]
    _drift(platform, "data", "alert", old, NOW - dt.timedelta(days=2))
    new = [{"name": "income", "psi": 0.12, "band": "watch"},
           {"name": "age", "psi": 0.01, "band": "stable"},
           {"name": "purpose", "psi": None, "band": None}]  # fmt: skip
    _drift(platform, "data", "watch", new, NOW - dt.timedelta(hours=1))
    _drift(platform, "prediction", "stable", [{"name": "score", "psi": 0.02, "band": "stable"}],
           NOW - dt.timedelta(hours=1))  # fmt: skip
    s = _samples(platform)
    key = {"model": MODEL, "version": "1", "kind": "data"}
    assert _get(s, "riskops_drift_psi", **key, feature="income") == pytest.approx(0.12)
    assert _get(s, "riskops_drift_band", **key, feature="income") == 1
    assert _get(s, "riskops_drift_band", **key, feature="age") == 0
    assert _get(s, "riskops_drift_psi", **key, feature="purpose") is None  # not judged
    assert _get(s, "riskops_drift_worst_band", **key) == 1  # the newest, not the worst ever
    assert _get(s, "riskops_drift_worst_band", **{**key, "kind": "prediction"}) == 0
    stamp = _get(s, "riskops_drift_compared_timestamp_seconds", **key)
    assert stamp == (NOW - dt.timedelta(hours=1)).timestamp()
    assert _get(s, "riskops_platform_exporter_source_up", source="db") == 1


def test_champion_mismatch_is_1_only_when_alias_and_records_disagree(platform):
    s = _samples(platform)
    assert _get(s, "riskops_champion_mismatch", model=MODEL) == 0  # neither has a champion
    _promote(platform, "1", NOW - dt.timedelta(days=3))
    s = _samples(platform)
    assert _get(s, "riskops_champion_mismatch", model=MODEL) == 0
    assert _get(s, "riskops_champion_registry_version", model=MODEL) == 1
    platform.mlflow.set_registered_model_alias(MODEL, "champion", "2")  # by hand, in MLflow
    s = _samples(platform)
    assert _get(s, "riskops_champion_mismatch", model=MODEL) == 1
    assert _get(s, "riskops_champion_registry_version", model=MODEL) == 2
    assert _get(s, "riskops_champion_recorded_version", model=MODEL) == 1
    assert _get(s, "riskops_champion_mismatch", model="fraud-detection") == 0  # no registry model
    assert _get(s, "riskops_platform_exporter_source_up", source="registry") == 1


def test_labels_are_overdue_after_the_outcome_window_without_a_landing(platform, all_specs):
    window = all_specs[MODEL].outcome_window_days
    assert window, "credit-scoring's spec should set outcome_window_days for this test"
    s = _samples(platform)
    assert _get(s, "riskops_labels_overdue", model=MODEL) is None  # never served: nothing due
    _promote(platform, "1", NOW - dt.timedelta(days=window - 1))
    s = _samples(platform)
    assert _get(s, "riskops_labels_overdue", model=MODEL) == 0
    assert _get(s, "riskops_labels_outcome_window_seconds", model=MODEL) == window * 86400
    late = NOW + dt.timedelta(days=2)
    assert _get(_samples(platform, late), "riskops_labels_overdue", model=MODEL) == 1
    with session_scope(platform.engine) as session:
        session.add(LabelsFile(model=MODEL, sha256="a" * 64, filename="o.csv", key="k", uri="u",
                               rows=10, with_decision_id=10, bads=1, landed_by="t",
                               landed_at=late - dt.timedelta(days=1)))  # fmt: skip
    s = _samples(platform, late)
    assert _get(s, "riskops_labels_overdue", model=MODEL) == 0
    assert _get(s, "riskops_labels_seconds_since_landed", model=MODEL) == 86400
    assert (
        _get(s, "riskops_labels_last_landed_timestamp_seconds", model=MODEL)
        == (late - dt.timedelta(days=1)).timestamp()
    )


def test_a_registry_that_does_not_answer_is_a_metric_not_an_error(platform, monkeypatch):
    _promote(platform, "1", NOW)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    broken = Platform(
        engine=platform.engine, lake=platform.lake, mlflow_tracking_uri="http://127.0.0.1:9/"
    )  # nothing listens on port 9
    s = _samples(broken)
    assert _get(s, "riskops_platform_exporter_source_up", source="registry") == 0
    assert _get(s, "riskops_platform_exporter_source_up", source="db") == 1
    assert _get(s, "riskops_champion_mismatch", model=MODEL) is None  # unknown, not "fine"


def test_every_exported_name_is_declared(platform):
    _promote(platform, "1", NOW - dt.timedelta(days=400))
    _drift(platform, "data", "alert", [{"name": "income", "psi": 0.4, "band": "alert"}], NOW)
    with session_scope(platform.engine) as session:
        session.add(LabelsFile(model=MODEL, sha256="b" * 64, filename="o.csv", key="k", uri="u",
                               rows=1, with_decision_id=1, bads=0, landed_by="t"))  # fmt: skip
    names = {key[0] for key in _samples(platform)}
    assert names == set(METRICS)


def _call(app, path: str, client_host: str, headers: dict | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


def test_the_governance_api_serves_it_open_on_loopback_and_with_a_key_elsewhere(platform):
    _promote(platform, "1", NOW)
    app = create_app(platform=platform, prefect=FakePrefect(platform).prefect(),
                     signing_key="k", session_secret="s" * 32)  # fmt: skip
    local = _call(app, "/metrics", "127.0.0.1")
    assert local.status_code == 200 and "riskops_champion_mismatch{" in local.text
    assert local.headers["content-type"].startswith("text/plain")
    remote = _call(app, "/metrics", "10.1.2.3")
    assert remote.status_code == 401 and "riskops_" not in remote.text
    assert (
        _call(app, "/metrics", "10.1.2.3", {"Authorization": "Bearer rk_nope"}).status_code == 401
    )
    key = principal(platform.engine, "prometheus@bank", "model-developer")
    keyed = _call(app, "/metrics", "10.1.2.3", {"Authorization": f"Bearer {key}"})
    assert keyed.status_code == 200 and "riskops_champion_mismatch{" in keyed.text
    strict = create_app(platform=platform, prefect=FakePrefect(platform).prefect(),
                        signing_key="k", session_secret="s" * 32,
                        metrics_require_key=True)  # fmt: skip
    assert _call(strict, "/metrics", "127.0.0.1").status_code == 401


def test_an_unreadable_spec_hides_only_that_models_labels_gauges(platform, caplog):
    from sqlmodel import select

    from riskops.records import ModelSpecRecord

    _promote(platform, "1", NOW - dt.timedelta(days=10))
    _drift(platform, "data", "watch", [{"name": "income", "psi": 0.12, "band": "watch"}], NOW)
    assert _get(_samples(platform), "riskops_labels_seconds_since_landed", model=MODEL) > 0
    with session_scope(platform.engine) as session:
        record = session.exec(select(ModelSpecRecord).where(ModelSpecRecord.name == MODEL)).one()
        record.spec = {"name": MODEL}  # no longer a valid spec
        session.add(record)
    s = _samples(platform)
    assert _get(s, "riskops_labels_seconds_since_landed", model=MODEL) is None
    assert _get(s, "riskops_champion_mismatch", model=MODEL) == 0  # the other gauges stay
    assert _get(s, "riskops_drift_worst_band", model=MODEL, version="1", kind="data") == 1
    assert _get(s, "riskops_platform_exporter_source_up", source="db") == 1
    assert f"skipping the labels gauges of {MODEL}" in caplog.text
