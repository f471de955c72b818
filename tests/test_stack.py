"""The real local stack: Prefect server, MLflow server, process worker, watcher.

Nothing here calls a flow: files are landed, and the triggers in prefect.yaml must do the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from riskops import events, ledger
from riskops.db import make_engine, session_scope
from riskops.lake import LocalLake
from riskops.landing.client import land_file, wait_for_check
from riskops.settings import Settings, load_settings
from riskops.specs import load_spec
from riskops.stack import local, processes
from riskops.stack.ports import PortInUseError, free_port
from riskops.stack.runs import deployment_runs, read_events
from riskops.synthetic import generate
from tests.conftest import MODELS, ROOT
from tests.test_contracts import credit_frame

pytestmark = pytest.mark.slow

FOURTH_MODEL = {
    "name": "sme-overdraft",
    "family": "other",
    "risk_class": "high",
    "owner": "sme-lending",
    "intended_use": "Rank small-business overdraft applications; never seen by the code.",
    "target": "repayment status",
    "positive_label": "bad",
    "target_values": ["good", "bad"],
    "entity_column": "business id",
    "features": {"numeric": ["turnover (€)", "days overdrawn"], "categorical": ["sector / NACE"]},
    "columns": {"sector / NACE": {"allowed": ["C — manufacturing", "G: retail & wholesale"]}},
}


def _env(home: Path) -> dict[str, str]:
    return {
        "RISKOPS_HOME": str(home),
        "RISKOPS_PROJECT_DIR": str(ROOT),
        "RISKOPS_PREFECT_PORT": str(free_port()),
        "RISKOPS_MLFLOW_PORT": str(free_port()),
        "RISKOPS_WEBHOOK_PORT": str(free_port()),
        "RISKOPS_WATCHER_POLL_SECONDS": "0.5",
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("stack") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _env(home).items():
            mp.setenv(key, value)
        mp.delenv("RISKOPS_DATABASE_URL", raising=False)
        settings = load_settings()
        try:
            summary = local.up(settings)
            (home / "up-summary.json").write_text(json.dumps(summary))
            engine = make_engine(settings.database_url)
            with session_scope(engine) as session:
                for path in sorted(MODELS.glob("*.yaml")):
                    ledger.register_spec(session=session, spec=load_spec(path))
            engine.dispose()
            yield settings
        finally:
            local.down(settings)


def _land_and_wait(settings: Settings, path: Path, model: str, timeout: float = 240):
    landed = land_file(settings, path, model)
    return landed, wait_for_check(settings, model, landed.sha256, timeout=timeout)


def _events(settings: Settings, name: str, resource: str, since=None, expect: int = 1) -> list:
    """Events as the server has persisted them (persistence lags emission by a few seconds)."""
    found: list = []

    def enough() -> bool:
        found[:] = read_events(
            settings.prefect.resolved_api_url(), names=[name], resource_prefix=resource, since=since
        )
        return len(found) >= expect

    processes.wait_until(enough, timeout=30, interval=1.0)
    return found


def _runs_by_sha(settings: Settings) -> dict[str, object]:
    with local.prefect_api(settings):
        return {r.parameters.get("sha256"): r for r in deployment_runs("contract-check")}


def test_status_reports_every_component_healthy(stack):
    rows = {s.name: s for s in local.status(stack)}
    assert set(rows) == set(local.COMPONENTS)
    assert all(s.healthy for s in rows.values()), rows
    assert rows["prefect-server"].url == f"http://127.0.0.1:{stack.prefect.port}"


def test_good_files_are_accepted_through_the_trigger(stack, tmp_path):
    files = []
    for model, family in [
        ("fraud-detection", "fraud_detection"),
        ("transaction-risk", "transaction_risk"),
    ]:
        path = tmp_path / f"{model}.parquet"
        generate(family, 3_000, seed=7, out_path=path, progress=False)
        files.append((model, path))
    credit = tmp_path / "credit-scoring.csv"
    credit_frame(500).to_csv(credit, index=False)
    files.append(("credit-scoring", credit))
    verdicts = [_land_and_wait(stack, path, model) for model, path in files]
    runs = _runs_by_sha(stack)
    for (model, _), (landed, row) in zip(files, verdicts, strict=True):
        assert row.status == "accepted", row.reasons
        assert runs[landed.sha256].state == "Completed"  # started by the trigger, not by us
        accepted = _events(
            stack, events.DATA_ACCEPTED, events.dataset_resource(model, landed.sha256)
        )
        assert len(accepted) == 1
        assert accepted[0]["payload"]["dataset_version"] == row.dataset_version_id


def test_a_model_the_code_has_never_seen(stack, tmp_path):
    spec_path = tmp_path / "sme-overdraft.yaml"
    spec_path.write_text(yaml.safe_dump(FOURTH_MODEL, allow_unicode=True))
    env = {"RISKOPS_HOME": str(stack.home_dir), "RISKOPS_PROJECT_DIR": str(ROOT)}
    cli = [sys.executable, "-m", "riskops"]
    onboarded = subprocess.run(
        [*cli, "onboard", str(spec_path)], env=_merged(env), capture_output=True, text=True
    )
    assert onboarded.returncode == 0, onboarded.stderr
    data = tmp_path / "sme applications (Q3).csv"
    data.write_text(
        "business id,turnover (€),days overdrawn,sector / NACE,repayment status\n"
        "B-1,120000.50,3,C — manufacturing,good\n"
        "B-2,56000,41,G: retail & wholesale,bad\n"
        "B-3,99000,0,C — manufacturing,good\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [*cli, "land", str(data), "-m", "sme-overdraft", "--wait", "--json", "--timeout", "240"],
        env=_merged(env),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["status"] == "accepted"


def _merged(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, **extra}


BAD_FILES = {
    "zero-bytes.csv": (b"", "empty_file"),
    "latin1.csv": ("income,région\n1,Zürich\n".encode("latin-1"), "encoding"),
    "corrupt.parquet": (b"PAR1\x00\x01garbage-not-a-footerPAR1", "unreadable"),
    "wrong-columns.csv": (b"applicant,salary\nA,100\n", "missing_column"),
}


def test_each_class_of_bad_file_is_rejected_and_quarantined(stack, tmp_path):
    lake = LocalLake(stack.lake_root)
    cases = [("credit-scoring", name, content, code) for name, (content, code) in BAD_FILES.items()]
    broken = credit_frame(300).astype(object)
    broken.loc[5, "debt_to_income"] = -1
    broken.loc[6, "loan_amount"] = "n/a lots"
    cases.append(
        ("credit-scoring", "ranges.csv", broken.to_csv(index=False).encode(), "out_of_range")
    )
    cases.append(("no-such-model", "orphan.csv", b"a,b\n1,2\n", "unknown_model"))
    landed = []
    for model, name, content, code in cases:
        path = tmp_path / name
        path.write_bytes(content)
        landed.append((land_file(stack, path, model), name, content, code))
    for item, name, content, code in landed:
        row = wait_for_check(stack, item.model, item.sha256, timeout=300)
        assert row.status == "rejected", name
        assert code in [r["code"] for r in row.reasons], (name, row.reasons)
        folder = f"quarantine/{item.model}/{item.sha256}"
        assert lake.get_bytes(f"{folder}/{name}") == content, f"{name} was lost"
        reasons = json.loads(lake.get_bytes(f"{folder}/reasons.json"))
        assert reasons["reasons"] == row.reasons
        rejected = _events(
            stack, events.DATA_REJECTED, events.dataset_resource(item.model, item.sha256)
        )
        assert len(rejected) == 1 and rejected[0]["payload"]["reasons"] == row.reasons
    assert local.status(stack)[3].healthy, "a bad file must never crash the watcher"


def test_same_file_landed_five_times_is_one_event_and_one_version(stack, tmp_path):
    path = tmp_path / "repeat.csv"
    credit_frame(250, seed=42).to_csv(path, index=False)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    shas = {land_file(stack, path, "credit-scoring").sha256 for _ in range(5)}
    (sha,) = shas
    first = wait_for_check(stack, "credit-scoring", sha, timeout=240)
    assert first.status == "accepted"
    for _ in range(5):  # landing it again after it was accepted changes nothing either
        land_file(stack, path, "credit-scoring")
    processes.wait_until(
        lambda: not LocalLake(stack.lake_root).exists("landing/credit-scoring/repeat.csv"), 30
    )
    time.sleep(5)  # give a wrongly duplicated event time to be persisted before counting
    landed = _events(
        stack, events.DATA_LANDED, events.dataset_resource("credit-scoring", sha), since, expect=2
    )
    assert len(landed) == 1
    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        versions = [v for v in ledger.list_dataset_versions(session=session) if v.sha256 == sha]
        row = ledger.get_landing(session=session, model="credit-scoring", sha256=sha)
    engine.dispose()
    # re-landings of one path between two polls coalesce; the later ones are counted
    assert len(versions) == 1 and row is not None and row.times_seen >= 2


def test_up_is_idempotent_and_a_taken_port_is_named(stack, tmp_path):
    again = local.up(stack)
    assert again["started"] == [] and set(again["already_running"]) == set(local.COMPONENTS)
    with socket.socket() as squatter, pytest.MonkeyPatch.context() as mp:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        for key, value in _env(tmp_path / "other").items():
            mp.setenv(key, value)
        mp.setenv("RISKOPS_PREFECT_PORT", str(port))
        with pytest.raises(PortInUseError, match=rf"port {port} .*RISKOPS_PREFECT_PORT"):
            local.up(load_settings())


def test_zz_down_stops_exactly_what_up_started(stack):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pids = [s.pid for s in local.status(stack)]
        stopped = local.down(stack)
        assert set(stopped) == set(local.COMPONENTS)
        assert all(not s.running for s in local.status(stack))
        import psutil

        assert not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids if p
        )
        assert bystander.poll() is None, "down must not touch processes it did not start"
    finally:
        bystander.kill()
        bystander.wait()
