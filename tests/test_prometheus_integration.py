"""A real Prometheus scrapes the real scoring service and fires the latency SLO alert.

It also scrapes the governance API's platform exporter (drift, champion, labels gauges) and
fires the drift alert from it.

Debian's Prometheus runs with a 1 s scrape and evaluation interval and the SLO rules of the same
generator as the checked-in ones, with each burn window scaled so that an hour lasts 10 s. The
standalone scoring service serves a LightGBM model; fast single-record requests first (no
alert, although the burn ratios are computed), then explained 1,000-record batches, each far
slower than the spec's 20 ms threshold (TreeSHAP of every row), until the page fires.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
import yaml

from benchmarks.servebench.model import FEATURES, bench_spec, synthetic_labels, synthetic_rows
from riskops import ledger
from riskops.db import make_engine, session_scope
from riskops.governance.service import create_app
from riskops.lake.local import LocalLake
from riskops.observability.platform_alerts import platform_rules
from riskops.observability.rules import latency_bad_ratio, render, slo_rules
from riskops.observability.windows import LATENCY_ALERT, fast_profile
from riskops.platform import Platform
from riskops.records import DriftResult, PromotionRecord
from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.stack.ports import free_port
from riskops.training.scorers import LightGBMScorer
from tests.test_prometheus_rules import tool
from tests.test_signoff import FakePrefect

# The MLflow registry is used through its SQL store (mlflow's queries warn on SQLAlchemy 2.1).
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
KEY = "rk_prometheus-integration-test-key"
PLATFORM_MODEL = "credit-scoring"


def _start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)  # fmt: skip


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _wait(url: str, process: subprocess.Popen, log: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args[0]} exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {seconds} s: {log.read_text()[-2000:]}")


CUTOFFS = SimpleNamespace(approve_below=0.2, decline_at_or_above=0.5)


def _small_model(directory: Path) -> list[dict[str, float]]:
    """60 trees over the benchmark's 30 features: trains in a second, explains in ~0.3 ms a row.

    Returns 200 request records.
    """
    import lightgbm
    import numpy as np

    rng = np.random.default_rng(5)
    x = synthetic_rows(rng, 3000)
    y = synthetic_labels(rng, x, rng.normal(0.0, 0.6, len(FEATURES)))
    params = {"objective": "binary", "num_leaves": 31, "min_data_in_leaf": 20, "seed": 5,
              "deterministic": True, "num_threads": 1, "verbosity": -1}  # fmt: skip
    booster = lightgbm.train(
        params, lightgbm.Dataset(x, y, feature_name=FEATURES), num_boost_round=60
    )
    LightGBMScorer(booster, FEATURES, [], {}).save(directory)
    rows = synthetic_rows(rng, 200)
    return [dict(zip(FEATURES, map(float, row), strict=True)) for row in rows]


@dataclass(frozen=True)
class Scoring:
    base: str
    records: list[dict[str, float]]
    spec: ModelSpec


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scoring]:
    work = tmp_path_factory.mktemp("scoring")
    records = _small_model(work / "model")
    document = {**bench_spec(CUTOFFS), "slo": {"latency_threshold_ms": 20}}
    spec = parse_spec(document, "integration spec")
    (work / "bench.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    port = free_port()
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "RISKOPS_BENCH_KEY": KEY, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    args = [
        sys.executable,
        "-m",
        "riskops.serving.standalone",
        "--model-dir",
        str(work / "model"),
        "--spec",
        str(work / "bench.yaml"),
        "--home",
        str(work / "home"),
        "--port",
        str(port),
    ]
    log = work / "scoring.log"
    process = _start(args, log, env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/health/ready", process, log)
        yield Scoring(base, records, spec)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def governance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The governance API (its /metrics is the platform exporter) over a platform whose champion
    alias was moved by hand to v2 and whose newest data-drift comparison is in the alert band."""
    work = tmp_path_factory.mktemp("governance")
    platform = Platform(engine=make_engine(f"sqlite:///{work / 'riskops.db'}"),
                        lake=LocalLake(work / "lake"),
                        mlflow_tracking_uri=f"sqlite:///{work / 'mlflow.db'}")  # fmt: skip
    with session_scope(platform.engine) as session:
        spec = load_spec(ROOT / "models" / f"{PLATFORM_MODEL}.yaml")
        ledger.register_spec(session=session, spec=spec, source="test", actor="test")
        session.add(PromotionRecord(model=PLATFORM_MODEL, version="1", kind="promote", actor="t"))
        session.add(DriftResult(
            model=PLATFORM_MODEL, version="1", kind="data", baseline="training rows",
            window_start=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
            window_end=dt.datetime(2026, 12, 1, tzinfo=dt.UTC), rows=5000, worst_band="alert",
            features=[{"name": "income", "psi": 0.31, "band": "alert"}],
        ))  # fmt: skip
    client = platform.mlflow
    client.create_registered_model(PLATFORM_MODEL)
    for _ in range(2):
        client.create_model_version(PLATFORM_MODEL, source=str(work), run_id=None)
    client.set_registered_model_alias(PLATFORM_MODEL, "champion", "2")  # by hand, in MLflow
    app = create_app(platform=platform, prefect=FakePrefect(platform).prefect(),
                     signing_key="k", session_secret="s" * 32)  # fmt: skip
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.started, "the governance API did not start"
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def prometheus(scoring: Scoring, governance: str, tmp_path_factory) -> Iterator[str]:
    binary = tool("prometheus", "prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    rules = slo_rules([scoring.spec], durations=fast_profile(10), evaluation_interval="1s")
    (work / "rules.yml").write_text(render(rules))
    (work / "platform.yml").write_text(render(platform_rules()))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules.yml"), str(work / "platform.yml")],
        "scrape_configs": [
            {"job_name": "scoring",
             "static_configs": [{"targets": [scoring.base.removeprefix("http://")]}]},
            {"job_name": "riskops-platform", "scrape_interval": "2s",
             "static_configs": [{"targets": [governance]}]},
        ],
    }  # fmt: skip
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = work / "prometheus.log"
    process = _start([binary, f"--config.file={work / 'prometheus.yml'}",
                      f"--storage.tsdb.path={work / 'data'}",
                      f"--web.listen-address=127.0.0.1:{port}"], log)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/-/ready", process, log)
        yield base
    finally:
        _stop(process)


class Load:
    """Requests in a background thread until stopped; ``body`` can be swapped while it runs."""

    def __init__(self, url: str, body: object) -> None:
        self.url, self.body, self.sent, self.codes = url, body, 0, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        with httpx.Client(headers=headers, timeout=10.0) as client:
            while not self._stop.is_set():
                url, body = self.url, self.body
                self.codes.add(client.post(url, json=body).status_code)
                self.sent += 1

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def _alerts(prometheus: str) -> list[dict]:
    return httpx.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]


def _query(prometheus: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    return response.json()["data"]["result"]


def _until(check, seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    return None


def test_slow_requests_fire_the_latency_page_through_prometheus(scoring, prometheus):
    name = scoring.spec.name
    ratio = f'{latency_bad_ratio("1h")}{{model="{name}"}}'
    score = f"{scoring.base}/v1/models/{name}/score"
    with Load(score, scoring.records[0]) as load:
        # Fast traffic: the ratios are computed (so silence is not missing data) and stay low.
        computed = _until(lambda: _query(prometheus, ratio), 20)
        assert computed, "Prometheus never computed the latency ratio: is the scrape working?"
        time.sleep(3)
        page_at = 14.4 * (1 - scoring.spec.slo.latency_objective)
        assert float(_query(prometheus, ratio)[0]["value"][1]) < page_at
        assert not [a for a in _alerts(prometheus) if a["labels"]["alertname"] == LATENCY_ALERT]
        # Slow traffic: explained batches of 1,000 records (the service's most per request):
        # TreeSHAP of every row keeps each one well above 20 ms even on a fast, idle machine.
        started = time.monotonic()
        load.url, load.body = score + "?explain=true", {"records": scoring.records * 5}
        fired = _until(
            lambda: [a for a in _alerts(prometheus) if a["labels"]["alertname"] == LATENCY_ALERT
                     and a["state"] == "firing" and a["labels"]["severity"] == "page"],
            30,
        )  # fmt: skip
        took = time.monotonic() - started
    assert load.codes == {200}, load.codes
    assert fired, f"no firing {LATENCY_ALERT} after {took:.0f} s: {_alerts(prometheus)}"
    [alert] = fired
    assert alert["labels"]["model"] == name and alert["labels"]["slo"] == "latency"
    assert float(alert["value"]) > page_at
    assert alert["annotations"]["runbook_url"].endswith("slo-latency-burn.md")
    print(f"latency page fired {took:.1f} s after the slow traffic began ({load.sent} requests)")


def test_prometheus_scrapes_the_platform_exporter_and_fires_its_drift_alert(prometheus):
    mismatch = f'riskops_champion_mismatch{{job="riskops-platform",model="{PLATFORM_MODEL}"}}'
    found = _until(lambda: _query(prometheus, mismatch), 20)
    assert found and found[0]["value"][1] == "1", found
    psi = _query(prometheus, f'riskops_drift_psi{{model="{PLATFORM_MODEL}",feature="income"}}')
    assert float(psi[0]["value"][1]) == pytest.approx(0.31)
    drift = _until(
        lambda: [a for a in _alerts(prometheus) if a["labels"]["alertname"] == "RiskopsDriftAlert"
                 and a["state"] == "firing"],
        20,
    )  # fmt: skip
    assert drift, _alerts(prometheus)
    assert drift[0]["labels"]["model"] == PLATFORM_MODEL and drift[0]["labels"]["kind"] == "data"
    # RiskopsChampionMismatch waits 5 minutes (for: 5m): pending, not firing, within a test.
    pending = [
        a for a in _alerts(prometheus) if a["labels"]["alertname"] == "RiskopsChampionMismatch"
    ]
    assert pending and pending[0]["state"] == "pending", pending
