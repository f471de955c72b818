"""Automations on the real local stack: drift events -> Slack (the local receiver) and the
retraining gate -> exactly one retraining run per model per cooldown, across a worker restart.

Nothing here calls a flow: events are emitted to the Prefect server and the automations that
`riskops up` created (deployments/automations.py) do the rest. The retraining run itself fails
here (no dataset was landed: it says so); what is counted is how many were started.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from riskops import audit, events, ledger
from riskops.db import make_engine, session_scope
from riskops.emit import send_confirmed
from riskops.events import RiskopsEvent
from riskops.monitoring.cooldown import cooldown_state
from riskops.records import RetrainClaim, ValidationRecord
from riskops.settings import Settings, load_settings
from riskops.specs import load_spec, parse_spec
from riskops.stack import local, processes
from riskops.stack.environment import stack_env
from riskops.stack.runs import deployment_runs
from tests.conftest import MODELS, ROOT
from tests.test_stack import _env

pytestmark = pytest.mark.slow

DEBOUNCE_SECONDS = 5  # short, so that each burst below starts several gate runs that race
SCHEDULED = "fraud-detection"
CRON = "0 3 1 * *"
TERMINAL = {"Completed", "Failed", "Crashed", "Cancelled"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("automations") / "home"
    env = {
        **_env(home),
        "RISKOPS_AUTOMATIONS_RETRAIN_GATE_DEBOUNCE_SECONDS": str(DEBOUNCE_SECONDS),
        "RISKOPS_SLO_AUTO_ROLLBACK": "true",
    }  # fmt: skip  (the worker's sla-breach runs)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        for key in ("RISKOPS_DATABASE_URL", "RISKOPS_SLACK_WEBHOOK_URL"):
            mp.delenv(key, raising=False)
        settings = load_settings()
        try:
            local.up(settings)
            engine = make_engine(settings.database_url)
            with session_scope(engine) as session:
                for path in sorted(MODELS.glob("*.yaml")):
                    spec = load_spec(path)
                    if spec.name == SCHEDULED:
                        raw = spec.model_dump(mode="json")
                        raw["monitoring"]["retrain_schedule"] = CRON
                        spec = parse_spec(raw, "test")
                    ledger.register_spec(session=session, spec=spec, actor="admin")
            engine.dispose()
            yield settings
        finally:
            local.down(settings)


def _automations_step(settings: Settings) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "deployments.automations"], cwd=ROOT, env=stack_env(settings),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _automations(settings: Settings) -> dict[str, list[Any]]:
    from prefect.client.orchestration import get_client

    with local.prefect_api(settings), get_client(sync_client=True) as client:
        found = client.read_automations()
    by_name: dict[str, list[Any]] = {}
    for automation in found:
        by_name.setdefault(automation.name, []).append(automation)
    return by_name


def _gate_schedules(settings: Settings) -> list[Any]:
    from prefect.client.orchestration import get_client

    with local.prefect_api(settings), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("retrain-gate/retrain-gate")
        return client.read_deployment_schedules(deployment.id)


def test_automations_and_schedules_are_made_once_and_kept_on_rerun(stack):
    first = _automations(stack)
    names = [n for n in first if n.startswith("riskops: ")]
    assert sorted(names) == sorted(
        [f"riskops: slack on {e}" for e in (
            events.DRIFT_DETECTED, events.DATA_REJECTED, events.MODEL_REJECTED,
            events.PERFORMANCE_DEGRADED, events.MODEL_ROLLED_BACK, events.SLA_BREACHED,
        )] + ["riskops: retrain-gate on riskops.drift.detected"]
    )  # fmt: skip
    # the specs were onboarded after `up`: this run adds the schedule, the next one keeps it
    assert f"schedule retrain-gate for {SCHEDULED}: created" in _automations_step(stack)
    assert f"schedule retrain-gate for {SCHEDULED}: unchanged" in _automations_step(stack)
    again = _automations(stack)
    for name in names:
        assert len(again[name]) == 1, f"{name} was duplicated"
        assert again[name][0].id == first[name][0].id, f"{name} was replaced, not updated"
    (schedule,) = [s for s in _gate_schedules(stack) if s.slug == f"retrain-{SCHEDULED}"]
    assert schedule.schedule.cron == CRON and schedule.active
    assert schedule.parameters == {"model": SCHEDULED, "severity": "alert", "kind": "schedule"}


def test_onboarding_a_spec_with_a_retrain_cron_schedules_it_without_a_new_up(
    stack, monkeypatch, tmp_path
):
    from typer.testing import CliRunner

    from riskops.cli.main import app
    from tests.governance_helpers import principal

    engine = make_engine(stack.database_url)
    monkeypatch.setenv("RISKOPS_API_KEY", principal(engine, "dev@bank", "model-developer"))
    engine.dispose()
    raw = load_spec(MODELS / "transaction-risk.yaml").model_dump(mode="json")
    raw["monitoring"]["retrain_schedule"] = "0 4 * * 1"
    path = tmp_path / "transaction-risk.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    result = CliRunner().invoke(app, ["onboard", str(path)])
    assert result.exit_code == 0, result.output
    assert "retrain schedule of transaction-risk: created" in result.output
    (made,) = [s for s in _gate_schedules(stack) if s.slug == "retrain-transaction-risk"]
    assert made.schedule.cron == "0 4 * * 1" and made.active
    raw["monitoring"]["retrain_schedule"] = None  # the spec drops its cron: the schedule goes
    raw["monitoring"]["retrain_cooldown_hours"] = 36  # (a new spec, not the superseded one)
    path.write_text(json.dumps(raw))
    result = CliRunner().invoke(app, ["onboard", str(path)])
    assert "retrain schedule of transaction-risk: deleted" in result.output, result.output
    assert not [s for s in _gate_schedules(stack) if s.slug == "retrain-transaction-risk"]


def _drift(model: str, kind: str, severity: str, n: int) -> RiskopsEvent:
    value = 0.31 + n / 1000
    return RiskopsEvent(
        name=events.DRIFT_DETECTED,
        resource_id=events.monitor_resource(model, kind),
        payload={
            "model": model, "version": "1", "kind": kind, "severity": severity,
            "window": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"},
            "rows": 5000,
            "features": [
                {"name": "income", "metric": "psi", "value": value, "warn": 0.1, "alert": 0.25}
            ],
        },
    )  # fmt: skip


def _burst(settings: Settings, model: str, count: int, seconds: float) -> None:
    """``count`` alert events over ``seconds``, alternating two kinds (two debounce keys)."""
    with local.prefect_api(settings):
        for n in range(count):
            kind = ("data", "prediction")[n % 2]
            send_confirmed([(_drift(model, kind, "alert", n), str(uuid.uuid4()))])
            time.sleep(seconds / count)


def _runs(settings: Settings, deployment: str, model: str) -> list[Any]:
    """Runs of ``deployment`` for ``model``, leaving out the retrain schedule's future runs."""
    with local.prefect_api(settings):
        runs = deployment_runs(deployment)
    return [
        r for r in runs
        if r.parameters.get("model") == model and r.parameters.get("kind") != "schedule"
    ]  # fmt: skip


def _settle(settings: Settings, model: str, timeout: float = 240) -> list[Any]:
    """Wait until the gate runs of ``model`` stop appearing and all have finished."""
    seen: list[Any] = []
    quiet_since = [time.monotonic()]

    def settled() -> bool:
        runs = _runs(settings, "retrain-gate", model)
        if len(runs) != len(seen):
            seen[:] = runs
            quiet_since[0] = time.monotonic()
            return False
        seen[:] = runs
        done = bool(runs) and all(r.state in TERMINAL for r in runs)
        return done and time.monotonic() - quiet_since[0] > DEBOUNCE_SECONDS + 5

    assert processes.wait_until(settled, timeout, 2.0), [(r.name, r.state) for r in seen]
    return seen


def _slack(settings: Settings) -> list[str]:
    path = local.slack_messages(settings)
    if not path.exists():
        return []
    return [json.loads(line)["payload"]["text"] for line in path.read_text().splitlines()]


def _restart_worker(settings: Settings) -> None:
    spec = local._specs(settings)["worker"]
    assert processes.stop(spec.pid_file)
    processes.start(spec)
    assert processes.wait_until(lambda: local._component_healthy(settings, "worker"), 90, 1)


def test_a_warn_event_is_a_slack_message_and_no_retraining(stack):
    model = SCHEDULED
    with local.prefect_api(stack):
        send_confirmed([(_drift(model, "data", "warn", 0), str(uuid.uuid4()))])
    subject = f"[WARN] data drift on {model} v1"
    assert processes.wait_until(lambda: any(t.startswith(subject) for t in _slack(stack)), 90, 1)
    (gate,) = _settle(stack, model)
    assert gate.state == "Completed" and gate.parameters["severity"] == "warn"
    assert _runs(stack, "retrain", model) == []


def test_a_hundred_alerts_around_a_worker_restart_start_one_retraining(stack):
    model = "credit-scoring"
    _burst(stack, model, 50, 15)
    first = _settle(stack, model)
    retrains = _runs(stack, "retrain", model)
    assert len(retrains) == 1, [(r.name, r.parameters) for r in retrains]
    _restart_worker(stack)
    _burst(stack, model, 50, 15)
    gates = _settle(stack, model)
    assert len(gates) > len(first) >= 2, "the debounce alone must not be what held them back"
    assert all(g.state == "Completed" for g in gates), [(g.name, g.state) for g in gates]
    retrains = _runs(stack, "retrain", model)
    assert len(retrains) == 1, [(r.name, r.parameters) for r in retrains]

    engine = make_engine(stack.database_url)
    try:
        with session_scope(engine) as session:
            claims = session.exec(select(RetrainClaim).where(RetrainClaim.model == model)).all()
            trail = audit.rows_for_subject(session=session, subject_prefix=f"{model}/retraining")
        state = cooldown_state(engine, model)
    finally:
        engine.dispose()
    (claim,) = claims
    assert claim.status == "started" and claim.flow_run_id
    assert retrains[0].parameters["claim_id"] == claim.id
    assert state.blocked and "24 h cooldown" in state.message()
    actions = [row.action for row in trail]
    assert actions.count("retraining.started") == 1
    assert actions.count("retraining.refused") == len(gates) - 1
    # every one of the hundred alerts reached Slack through the automation
    subject = f"[ALERT] data drift on {model} v1"
    texts = lambda: [t for t in _slack(stack) if "drift on credit-scoring" in t]  # noqa: E731
    assert processes.wait_until(lambda: len(texts()) >= 100, 120, 1), len(texts())
    assert any(t.startswith(subject) and "income: psi 0.3" in t for t in texts())


def test_status_lists_the_slack_receiver(stack):
    rows = {s.name: s for s in local.status(stack)}
    receiver = rows["slack-receiver"]
    assert receiver.healthy and receiver.url == stack.slack.receiver_url()
    assert Path(receiver.log).name == "slack-receiver.log"


SLO_MODEL = "slo-guarded"  # never onboarded: the stack's scoring service leaves it alone


def _registered_versions(settings: Settings, tmp_path: Path, model: str, count: int) -> None:
    """``count`` MLflow versions of ``model`` (a run's artifact each, as the server requires)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.mlflow.resolved_tracking_uri())
    experiment = client.create_experiment(f"slo-{time.monotonic_ns()}")
    client.create_registered_model(model)
    note = tmp_path / "model.txt"
    note.write_text("a version the tests promote and roll back")
    for _ in range(count):
        run = client.create_run(experiment)
        client.log_artifact(run.info.run_id, str(note), "model")
        client.set_terminated(run.info.run_id)
        client.create_model_version(model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)


def _alertmanager(model: str, version: str, slo: str, starts_at: str) -> dict[str, Any]:
    name = {"errors": "RiskopsErrorBudgetBurn", "latency": "RiskopsLatencyBudgetBurn"}[slo]
    return {
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "riskops", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": name, "model": model, "slo": slo, "severity": "page",
                       "version": version},
            "annotations": {"summary": f"{model} burns its {slo} budget",
                            "burn_rate_long": "18.5", "burn_rate_short": "33.1"},
            "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
            "fingerprint": f"{slo}-{model}",
        }],
    }  # fmt: skip


def test_an_alertmanager_breach_rolls_back_through_prefect(stack, tmp_path):
    """Promote v2 over v1; Alertmanager reports a burn to the governance API; the sla-breach
    deployment (its prefect.yaml trigger) rolls back to v1 as riskops-slo-guard; the Slack
    automations announce the breach and the rollback; a repeat and a second breach move
    nothing more."""
    import httpx

    from riskops.governance.promotion import current_champion, promote
    from riskops.identity.principals import add_principal
    from riskops.platform import Platform
    from riskops.records import PromotionRecord
    from riskops.slo.policy import GUARD, REVIEWED
    from tests.governance_helpers import verified_approval

    _registered_versions(stack, tmp_path, SLO_MODEL, 2)
    platform = Platform.from_settings(stack)
    engine = platform.engine
    with session_scope(engine) as session:
        for version in ("1", "2"):
            session.add(ValidationRecord(model=SLO_MODEL, version=version, passed=True,
                                         failed_gates=[], report={}))  # fmt: skip
        _principal, key = add_principal(session=session, name="alertmanager", role="service",
                                        actor="admin")  # fmt: skip
    for version in ("1", "2"):
        verified_approval(engine, SLO_MODEL, version, "bea.officer@bank.example")
        promote(engine=engine, client=platform.mlflow, model=SLO_MODEL, version=version,
                actor="riskops-promotion")  # fmt: skip
    assert current_champion(platform.mlflow, SLO_MODEL) == "2"

    url = f"http://127.0.0.1:{stack.governance.port}/v1/alerts/alertmanager"
    auth = {"Authorization": f"Bearer {key}"}
    starts = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    body = _alertmanager(SLO_MODEL, "2", "errors", starts)
    assert httpx.post(url, json=body, timeout=10).status_code == 401
    answer = httpx.post(url, json=body, headers=auth, timeout=10)
    assert answer.status_code == 200 and answer.json()["delivered"], answer.text
    (breach_id,) = answer.json()["emitted"]

    breached = f"[PAGE] SLO breach on {SLO_MODEL} v2: errors budget burning 18.5x"
    rolled = f"Model rolled back: {SLO_MODEL} now serves v1"
    assert processes.wait_until(lambda: any(t.startswith(breached) for t in _slack(stack)), 90, 1)
    assert processes.wait_until(lambda: current_champion(platform.mlflow, SLO_MODEL) == "1", 120, 1)
    assert processes.wait_until(lambda: any(t.startswith(rolled) for t in _slack(stack)), 90, 1)
    (text,) = [t for t in _slack(stack) if t.startswith(rolled)]
    assert f"By: {GUARD}" in text and breach_id in text

    # Alertmanager's repeat of the same alert is the same breach; a second alert is another
    # breach of the same bad version, which finds v2 rolled back already
    again = httpx.post(url, json=body, headers=auth, timeout=10).json()
    assert again["emitted"] == [] and again["repeated"] == [breach_id]
    other = httpx.post(url, json=_alertmanager(SLO_MODEL, "2", "latency", starts), headers=auth,
                       timeout=10)  # fmt: skip
    assert other.status_code == 200 and len(other.json()["emitted"]) == 1

    def reviews() -> list[str]:
        with session_scope(engine) as session:
            rows = audit.rows_for_subject(session=session, subject_prefix=f"{SLO_MODEL}/")
        return [r.payload["outcome"] for r in rows if r.action == REVIEWED]

    assert processes.wait_until(lambda: len(reviews()) >= 2, 120, 1), reviews()
    assert reviews() == ["rolled-back", "already-rolled-back"]
    assert processes.wait_until(
        lambda: all(r.state in TERMINAL for r in _runs_all(stack, "sla-breach")), 60, 1
    )
    runs = [
        r for r in _runs_all(stack, "sla-breach") if r.parameters["breach"]["model"] == SLO_MODEL
    ]
    assert len(runs) == 2 and all(r.state == "Completed" for r in runs), runs
    with session_scope(engine) as session:
        moves = session.exec(
            select(PromotionRecord).where(PromotionRecord.model == SLO_MODEL)
        ).all()
        assert audit.verify(session=session).ok
    assert [(m.kind, m.version, m.actor) for m in moves] == [
        ("promote", "1", "riskops-promotion"), ("promote", "2", "riskops-promotion"),
        ("rollback", "1", GUARD),
    ]  # fmt: skip
    assert current_champion(platform.mlflow, SLO_MODEL) == "1"
    engine.dispose()


def _runs_all(settings: Settings, deployment: str) -> list[Any]:
    with local.prefect_api(settings):
        return deployment_runs(deployment)
