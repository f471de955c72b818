"""Automations as code: Slack alerts, the retraining gate on drift, scheduled retraining.

Run by `riskops up` after `prefect deploy --all` as `python -m deployments.automations`.
Idempotent: automations are found by name and updated in place (a duplicate left by a race is
deleted), and each model's retrain schedule is found by its slug on the `retrain-gate`
deployment, so running this again never adds a second one.

- One automation per alert event: SendNotification through the `riskops-slack` block with the
  templates of riskops.monitoring.slack_templates and riskops.slo.notify (every event is a
  message). `riskops.sla.breached` is also the trigger of the `sla-breach` deployment (in
  prefect.yaml: the rollback policy), which is not an automation.
- `riskops.drift.detected` -> RunDeployment of `retrain-gate` with the event's model, kind,
  severity and id. The trigger fires at most once per ``retrain_gate_debounce_seconds`` per
  resource (model and kind): a storm of events then costs a few gate runs, not one process
  each. The debounce only saves work; the guarantee (one retraining per model per cooldown,
  across restarts and races) is the claim in the platform DB that the gate takes.
- A spec's ``monitoring.retrain_schedule`` -> a cron schedule of `retrain-gate` for that
  model, through the same gate and cooldown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.events.actions import RunDeployment
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskops import events
from riskops.monitoring.schedules import GATE_DEPLOYMENT, spec_schedules, sync_retrain_schedules
from riskops.monitoring.slack import SLACK_BLOCK
from riskops.monitoring.slack_templates import TEMPLATES, notification_action
from riskops.slo.notify import sla_notification_action

GATE_AUTOMATION = "riskops: retrain-gate on riskops.drift.detected"

# The resource each alert event is about (DESIGN.md section 2), for the triggers' match.
ALERT_RESOURCES: dict[str, str] = {
    events.DRIFT_DETECTED: events.MONITOR,
    events.DATA_REJECTED: events.DATASET,
    events.MODEL_REJECTED: events.MODEL,
    events.PERFORMANCE_DEGRADED: events.MONITOR,
    events.MODEL_ROLLED_BACK: events.MODEL,
    events.SLA_BREACHED: events.SERVICE,
}
ALERT_EVENTS: tuple[str, ...] = (*TEMPLATES, events.SLA_BREACHED)


class AutomationSettings(BaseSettings):
    """How the automations react (read where `riskops up` runs this module)."""

    model_config = SettingsConfigDict(env_prefix="RISKOPS_AUTOMATIONS_", extra="ignore")

    retrain_gate_debounce_seconds: float = Field(
        default=300,
        ge=0,
        description="After a drift event of a model and kind starts the retraining gate, "
        "further events of the same model and kind within this many seconds start none (0: "
        "every event starts one). Keep it below the monitor's interval: a warn event that "
        "opened the window hides an alert right behind it until the next monitor run.",
    )


def slack_automation_name(event: str) -> str:
    return f"riskops: slack on {event}"


def slack_automation(event: str, block_document_id: UUID | str) -> AutomationCore:
    """Every ``event`` -> one Slack message through the saved webhook block."""
    return AutomationCore(
        name=slack_automation_name(event),
        description=f"Post {event} to Slack (block {SLACK_BLOCK}); see docs/runbooks/.",
        trigger=EventTrigger(
            expect={event},
            match={"prefect.resource.id": f"{ALERT_RESOURCES[event]}.*"},
            posture=Posture.Reactive,
            threshold=1,
            within=dt.timedelta(0),
        ),
        actions=[
            sla_notification_action(block_document_id)
            if event == events.SLA_BREACHED
            else notification_action(event, block_document_id)
        ],
    )


def gate_parameters() -> dict[str, Any]:
    """The retrain-gate's parameters, rendered from the drift event by the automation.

    A string that is one ``{{ expression }}`` keeps the value's JSON type; ``event.id`` is a
    UUID, which JSON cannot carry, so it is rendered as text (an explicit jinja kind).
    """
    first = "event.payload.features[0]"
    return {
        "model": "{{ event.payload.model }}",
        "severity": "{{ event.payload.severity }}",
        "kind": "{{ event.payload.kind }}",
        "event_id": {"__prefect_kind": "jinja", "template": "{{ event.id }}"},
        "reason": (
            "{{ event.payload.kind }} drift ({{ event.payload.severity }}) on "
            "{{ event.payload.model }} v{{ event.payload.version }}"
            "{% if event.payload.features %}: {{ " + first + ".name }} {{ " + first + ".metric "
            "}} {{ '%.3f'|format(" + first + ".value) }}{% endif %}"
        ),
    }


def gate_automation(deployment_id: UUID, debounce_seconds: float) -> AutomationCore:
    """`riskops.drift.detected` -> a run of `retrain-gate` (debounced per model and kind)."""
    return AutomationCore(
        name=GATE_AUTOMATION,
        description="Start the retraining gate for a drift event; the gate retrains on alert "
        "severity, at most once per model per monitoring.retrain_cooldown_hours.",
        trigger=EventTrigger(
            expect={events.DRIFT_DETECTED},
            match={"prefect.resource.id": f"{events.MONITOR}.*"},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=dt.timedelta(seconds=debounce_seconds),
        ),
        actions=[
            RunDeployment(
                source="selected", deployment_id=deployment_id, parameters=gate_parameters()
            )
        ],
    )


def ensure_automation(client: SyncPrefectClient, automation: AutomationCore) -> str:
    """Create ``automation`` or update the one of the same name; returns what was done."""
    existing = sorted(client.read_automations_by_name(automation.name), key=lambda a: str(a.id))
    if not existing:
        client.create_automation(automation)
        return "created"
    keep, *duplicates = existing
    for duplicate in duplicates:  # two `riskops up` at once; names are our identity
        client.delete_automation(duplicate.id)
    client.update_automation(keep.id, automation)
    return "updated" if not duplicates else f"updated ({len(duplicates)} duplicate(s) deleted)"


def ensure_all(
    client: SyncPrefectClient,
    *,
    slack_block_id: UUID,
    gate_deployment_id: UUID,
    debounce_seconds: float,
    schedules: dict[str, str | None],
    alert_events: Iterable[str] = ALERT_EVENTS,
) -> dict[str, str]:
    """Every automation and schedule; returns name -> what was done."""
    done = {
        slack_automation_name(event): ensure_automation(
            client, slack_automation(event, slack_block_id)
        )
        for event in alert_events
    }
    done[GATE_AUTOMATION] = ensure_automation(
        client, gate_automation(gate_deployment_id, debounce_seconds)
    )
    for model, what in sync_retrain_schedules(client, gate_deployment_id, schedules).items():
        done[f"schedule retrain-gate for {model}"] = what
    return done


def main() -> None:
    from prefect_slack import SlackWebhook

    from riskops.settings import load_settings

    settings = load_settings()
    block = SlackWebhook.load(SLACK_BLOCK)  # blocks.register saved it
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(GATE_DEPLOYMENT)
        done = ensure_all(
            client,
            slack_block_id=block._block_document_id,
            gate_deployment_id=deployment.id,
            debounce_seconds=AutomationSettings().retrain_gate_debounce_seconds,
            schedules=spec_schedules(settings.database_url),
        )
    for name, what in done.items():
        print(f"{name}: {what}")


if __name__ == "__main__":
    main()
