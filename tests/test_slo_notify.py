"""The breach's Slack message and the sla-breach trigger, rendered by Prefect's own code."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
import yaml

from deployments.automations import ALERT_EVENTS, ALERT_RESOURCES, slack_automation
from riskops import events
from riskops.slo.breach import breach_payload
from riskops.slo.notify import SLA_BREACHED, breach_message, sla_notification_action
from tests.conftest import ROOT

FULL = breach_payload(
    model="credit-scoring", slo="errors", severity="page", source="service", version="2",
    detected_at=dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC),
    burn_rates={"long": 20.04, "short": 41.0}, windows={"long": "1h", "short": "5m"},
    objective=0.999, summary="credit-scoring v2: 41 of 1000 requests were 5xx answers",
)  # fmt: skip
MINIMAL = breach_payload(
    model="fraud-detection", slo="latency", severity="ticket", source="alertmanager",
    detected_at=dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC),
)  # fmt: skip


def _received(payload: dict[str, Any]) -> Any:
    from prefect.server.events.schemas.events import ReceivedEvent

    return ReceivedEvent(
        occurred=dt.datetime.now(dt.UTC), event=events.SLA_BREACHED, id=uuid.uuid4(),
        payload=payload, resource={"prefect.resource.id": events.service_resource("m")},
    )  # fmt: skip


def _render(payload: dict[str, Any]) -> list[str]:
    """As a Prefect automation renders it: the server's SendNotification."""
    from prefect.server.events.actions import SendNotification
    from prefect.server.events.schemas.automations import (
        Automation,
        EventTrigger,
        Posture,
        TriggeredAction,
    )

    action = SendNotification.model_validate(
        sla_notification_action(uuid.uuid4()).model_dump(mode="json")
    )
    automation = Automation(
        name="slack", actions=[action],
        trigger=EventTrigger(expect={events.SLA_BREACHED}, posture=Posture.Reactive, threshold=1),
    )  # fmt: skip
    triggered = TriggeredAction(
        automation=automation, triggered=dt.datetime.now(dt.UTC), triggering_labels={},
        triggering_event=_received(payload), action=action,
    )  # fmt: skip
    return asyncio.run(action.render(triggered))


@pytest.mark.parametrize("payload", [FULL, MINIMAL], ids=["full", "minimal"])
def test_the_template_renders_what_the_builder_says(payload):
    subject, body = _render(payload)
    assert (subject, body) == breach_message(payload)


def test_the_message_names_model_version_slo_burn_and_runbook():
    subject, body = breach_message(FULL)
    assert subject == "[PAGE] SLO breach on credit-scoring v2: errors budget burning 20.0x"
    assert body.splitlines()[:5] == [
        "Model: credit-scoring v2",
        "SLO: errors (page), seen by service, objective 0.999",
        "Burn long: 20.0x over 1h",
        "Burn short: 41.0x over 5m",
        "Detected: 2026-12-01T16:00:00Z",
    ]
    assert body.endswith("Runbook: docs/runbooks/sla-breached.md")
    assert (ROOT / "docs/runbooks/sla-breached.md").exists()
    subject, body = breach_message(MINIMAL)
    assert subject == "[TICKET] SLO breach on fraud-detection: latency budget burning"
    assert "Burn" not in body


def test_the_breach_is_an_alert_automation_on_the_service_resource():
    assert events.SLA_BREACHED in ALERT_EVENTS
    automation = slack_automation(events.SLA_BREACHED, uuid.uuid4())
    match = automation.trigger.match  # type: ignore[union-attr]
    assert match.get("prefect.resource.id") == ["riskops.service.*"]
    assert automation.actions[0].subject == SLA_BREACHED.subject  # type: ignore[union-attr]
    assert ALERT_RESOURCES[events.SLA_BREACHED] == events.SERVICE


def test_the_sla_breach_trigger_hands_the_payload_over_as_a_dict():
    """prefect.yaml's ``breach: "{{ event.payload }}"``, hydrated as the server does it."""
    from prefect.server.events.actions import RunDeployment
    from prefect.utilities.schema_tools.hydration import HydrationContext, hydrate

    (deployment,) = [d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
                     if d["name"] == "sla-breach"]  # fmt: skip
    (trigger,) = deployment["triggers"]
    assert trigger["expect"] == [events.SLA_BREACHED]
    parameters = dict(trigger["parameters"])
    RunDeployment._upgrade_v1_templates(parameters)
    context = HydrationContext(render_jinja=True, raise_on_error=True,
                               jinja_context={"event": _received(FULL)})  # fmt: skip
    assert hydrate(parameters, context) == {"breach": FULL}
