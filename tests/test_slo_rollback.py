"""Acceptance of issue 10, item 5, in one process: promote v2 over v1, v2 fails on some inputs,
the real scoring service's SLO tracker announces `riskops.sla.breached`, the rollback policy
returns the champion to v1 (audited as riskops-slo-guard), the service reloads v1 and answers
again, and both Slack messages reach the real local receiver.

What is real: two versions trained and registered by the training stage, the platform's
promotion and rollback with their audit rows and outbox events, the scoring service under
uvicorn over HTTP with its tracker and registry poll, the Slack receiver, and the prefect-slack
webhook block posting the text Prefect's own renderer makes from the automations' templates.
What stands in for the Prefect server: this test hands the committed outbox events to what
the `sla-breach` deployment and the Slack automations run (react_to_breach, the templates).
tests/test_automations.py::test_an_alertmanager_breach_rolls_back_through_prefect drives that
hop for real on the local stack. The fault: v2 is loaded and warmed by the real loader, then its
decide() is wrapped (in this test only) to raise on records above the 75th percentile of
``amount``, as a version with a bug on large amounts would; no fault switch ships in the code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect_slack import SlackWebhook
from sqlmodel import select

from riskops import audit, events
from riskops.db import session_scope
from riskops.governance.promotion import current_champion, promote
from riskops.monitoring.receiver import SlackReceiver
from riskops.monitoring.slack_templates import notification_action
from riskops.outbox import OutboxEvent
from riskops.serving.server import build_service
from riskops.settings import load_settings
from riskops.slo.breach import enqueue_breach
from riskops.slo.notify import sla_notification_action
from riskops.slo.policy import GUARD, REVIEWED, react_to_breach
from tests.governance_helpers import verified_approval
from tests.serving_helpers import ServingPlatform, running

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
MODEL = "fraud-detection"


def _rendered(action: Any, event: str, payload: dict[str, Any]) -> tuple[str, str]:
    """subject and body as Prefect's server renders a SendNotification for ``event``."""
    from prefect.server.events.actions import SendNotification
    from prefect.server.events.schemas.automations import (
        Automation,
        EventTrigger,
        Posture,
        TriggeredAction,
    )
    from prefect.server.events.schemas.events import ReceivedEvent

    server_action = SendNotification.model_validate(action.model_dump(mode="json"))
    automation = Automation(
        name=event, actions=[server_action],
        trigger=EventTrigger(expect={event}, posture=Posture.Reactive, threshold=1),
    )  # fmt: skip
    received = ReceivedEvent(occurred=dt.datetime.now(dt.UTC), event=event, id=uuid.uuid4(),
                             payload=payload, resource={"prefect.resource.id": "x"})  # fmt: skip
    triggered = TriggeredAction(automation=automation, triggered=dt.datetime.now(dt.UTC),
                                triggering_labels={}, triggering_event=received,
                                action=server_action)  # fmt: skip
    subject, body = asyncio.run(server_action.render(triggered))
    return subject, body


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("slo")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # MLflow's default artifact root is ./mlruns
        sp = ServingPlatform(root, MODEL, "fraud_detection", rows=12_000)
        sp.versions = [sp.train(seed=1), sp.train(seed=2)]
        for version in sp.versions:
            verified_approval(sp.engine, MODEL, version, "bea.officer@bank.example")
        yield sp
    sp.engine.dispose()


def _settings(root: Path, patch: pytest.MonkeyPatch):
    for key, value in {
        "RISKOPS_HOME": str(root),
        "RISKOPS_SCORING_REGISTRY_POLL_SECONDS": "0.5",  # how this service sees the rollback
        "RISKOPS_SCORING_DECISION_LOG_FLUSH_SECONDS": "0.2",
        "RISKOPS_SLO_SHORT_WINDOW_SECONDS": "2",
        "RISKOPS_SLO_LONG_WINDOW_SECONDS": "20",
        "RISKOPS_SLO_EVALUATE_SECONDS": "0.2",
        "RISKOPS_SLO_MIN_REQUESTS": "20",
        "RISKOPS_SLO_AUTO_ROLLBACK": "true",
        "RISKOPS_SLO_GUARD_WINDOW_MINUTES": "10",
    }.items():
        patch.setenv(key, value)
    return load_settings()


def test_a_failing_v2_is_rolled_back_to_v1_audited_and_announced(platform, tmp_path):
    sp, (v1, v2) = platform, platform.versions
    promote(engine=sp.engine, client=sp.client, model=MODEL, version=v1, actor="riskops-promotion")
    promote(engine=sp.engine, client=sp.client, model=MODEL, version=v2, actor="riskops-promotion")
    key = sp.key("checkout-api", "service")
    breaches: list[dict[str, Any]] = []

    def announce_breach(payload: dict[str, Any]) -> None:  # the service's outbox announcer
        enqueue_breach(sp.engine, payload)
        breaches.append(payload)

    cutoff = float(sp.raw["amount"].quantile(0.75))
    receiver = SlackReceiver(out=tmp_path / "slack.jsonl", echo=None)
    receiver.start()
    with pytest.MonkeyPatch.context() as patch:
        settings = _settings(tmp_path, patch)
        service = build_service(settings, sp.platform, follow_events=False,
                                announce_breach=announce_breach)  # fmt: skip
        load = service.models.loader

        def loader(name: str, role: str, version: str) -> Any:
            served = load(name, role, version)  # loaded, checked and warmed for real
            if version == v2:
                decide = served.decide

                def faulty(records: list[dict[str, Any]], raw: list[Any], **kw: Any) -> Any:
                    if any((r.get("amount") or 0) > cutoff for r in records):
                        raise RuntimeError(f"v{v2} fails on amounts above {cutoff:.2f}")
                    return decide(records, raw, **kw)

                served.decide = faulty
            return served

        service.models.loader = loader
        records = sp.raw_records(400)
        with running(service.app()) as base:
            fields = service.models.champion(MODEL).schema.fields
            assert service.models.champion(MODEL).version == v2
            url, auth = f"{base}/v1/models/{MODEL}/score", {"Authorization": f"Bearer {key}"}

            def drive(n: int, start: int = 0) -> list[int]:
                out = []
                for record in records[start : start + n]:
                    body = {k: v for k, v in record.items() if k in fields}
                    out.append(httpx.post(url, json=body, headers=auth, timeout=10).status_code)
                return out

            statuses = drive(120)
            assert 500 in statuses and 200 in statuses  # v2 fails on some inputs only
            deadline = time.monotonic() + 20
            while not any(b["slo"] == "errors" for b in breaches) and time.monotonic() < deadline:
                statuses += drive(10)
            (breach,) = [b for b in breaches if b["slo"] == "errors"]
            assert breach["model"] == MODEL and breach["version"] == v2
            assert breach["source"] == "service" and breach["burn_rates"]["short"] > 14.4

            # the sla-breach deployment's work: the rollback policy on the committed event
            with session_scope(sp.engine) as session:
                queued = session.get(OutboxEvent, breach["breach_id"])
                assert queued is not None and queued.name == events.SLA_BREACHED
            decision = react_to_breach(engine=sp.engine, client=sp.client,
                                       settings=settings.slo, breach=queued.payload)  # fmt: skip
            assert decision.outcome == "rolled-back", decision.why
            assert current_champion(sp.client, MODEL) == v1
            # a second announcement of the same trouble moves nothing
            again = react_to_breach(engine=sp.engine, client=sp.client, settings=settings.slo,
                                    breach=queued.payload)  # fmt: skip
            assert again.outcome == "already-rolled-back"

            # the service's hot reload (its registry poll here; the rolled-back event on a stack)
            deadline = time.monotonic() + 30
            while service.models.champion(MODEL).version != v1 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert service.models.champion(MODEL).version == v1
            after = drive(100, start=200)
            assert set(after) == {200}, after  # v1 answers the inputs v2 failed on

        # the automations' Slack messages, as Prefect renders them, through the real block
        with session_scope(sp.engine) as session:
            rolled = session.exec(
                select(OutboxEvent).where(OutboxEvent.name == events.MODEL_ROLLED_BACK)
            ).all()
        assert len(rolled) == 1
        block = SlackWebhook(url=receiver.url)
        block_id = uuid.uuid4()
        for action, event, payload in (
            (sla_notification_action(block_id), events.SLA_BREACHED, queued.payload),
            (notification_action(events.MODEL_ROLLED_BACK, block_id), events.MODEL_ROLLED_BACK,
             rolled[0].payload),
        ):  # fmt: skip
            subject, body = _rendered(action, event, payload)
            block.notify(body, subject=subject)
    receiver.stop()
    texts = [m["payload"]["text"] for m in receiver.messages]
    assert texts[0].startswith(f"[PAGE] SLO breach on {MODEL} v{v2}: errors budget burning")
    assert texts[1].startswith(f"Model rolled back: {MODEL} now serves v{v1}")
    assert f"By: {GUARD}" in texts[1] and breach["breach_id"] in texts[1]

    with session_scope(sp.engine) as session:
        trail = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/")
        assert audit.verify(session=session).ok
    rollbacks = [r for r in trail if r.action == "model.rolled-back"]
    assert [(r.actor, r.subject) for r in rollbacks] == [(GUARD, f"{MODEL}/{v1}")]
    assert "SLO breach" in rollbacks[0].payload["reason"]
    reviews = [r.payload["outcome"] for r in trail if r.action == REVIEWED]
    assert reviews == ["rolled-back", "already-rolled-back"]
