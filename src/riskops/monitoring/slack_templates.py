"""Jinja templates of the alert notifications, for Prefect automations' ``SendNotification``.

An automation renders ``subject`` and ``body`` with ``event`` (the triggering event) in scope,
in Prefect's sandboxed Jinja environment, then calls the notification block's
``notify(body, subject)``; prefect-slack's ``SlackWebhook`` posts ``subject\\nbody`` as text.
The templates read the payload keys documented in :mod:`riskops.monitoring.slack` and render
exactly the ``subject`` and ``body`` of its builders (tests/test_monitoring_slack.py renders them
with Prefect's own renderer and compares). Keep both in step when a message changes.

Templates are built from one line per string, each later line starting with ``\\n`` inside its
own ``{% if %}``, so that an absent optional key drops its whole line and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from riskops import events
from riskops.monitoring.slack import RUNBOOKS, TOP_FEATURES, TOP_REASONS

_P = "{% set p = event.payload %}"


def _f3(expr: str) -> str:
    return "{{ '%.3f'|format(" + expr + ") }}"


def _links(event: str) -> str:
    return (
        "\nRunbook: {{ p.links.runbook or '" + RUNBOOKS[event] + "' }}"
        "{% if p.links.flow_run %}\nFlow run: {{ p.links.flow_run }}{% endif %}"
        "{% if p.links.model_version %}\nModel version: {{ p.links.model_version }}{% endif %}"
    )


@dataclass(frozen=True)
class NotificationTemplate:
    """The ``subject`` and ``body`` templates of one alert event's ``SendNotification``."""

    event: str
    subject: str
    body: str


DRIFT_DETECTED = NotificationTemplate(
    event=events.DRIFT_DETECTED,
    subject=_P + "[{{ p.severity|upper }}] {{ p.kind }} drift on {{ p.model }} v{{ p.version }}",
    body=(
        _P + "Model: {{ p.model }} v{{ p.version }}"
        "\nDrift: {{ p.kind }}, severity {{ p.severity }}"
        "\nWindow: {{ p.window.start }} to {{ p.window.end }}"
        "{% if p.rows %}, {{ p.rows }} rows{% endif %}"
        "{% if p.reference %}\nReference: {{ p.reference }}{% endif %}"
        "{% if p.retraining %}\nRetraining: {{ p.retraining }}{% endif %}"
        "\nTop features:"
        "{% for f in p.features[:" + str(TOP_FEATURES) + "] %}"
        "\n- {{ f.name }}: {{ f.metric }} " + _f3("f.value") + ""
        "{% if f.warn is number %} (warn " + _f3("f.warn") + ""
        "{% if f.alert is number %}, alert " + _f3("f.alert") + "{% endif %})"
        "{% elif f.alert is number %} (alert " + _f3("f.alert") + "){% endif %}"
        "{% endfor %}" + _links(events.DRIFT_DETECTED)
    ),
)

DATA_REJECTED = NotificationTemplate(
    event=events.DATA_REJECTED,
    subject=_P + "Data rejected for {{ p.model }}: {{ p.filename }}",
    body=(
        _P + "Model: {{ p.model }}"
        "\nFile: {{ p.filename }} (sha256 {{ p.sha256[:16] }})"
        "\nSummary: {{ p.summary }}"
        "{% if p.quarantine_uri %}\nQuarantine: {{ p.quarantine_uri }}{% endif %}"
        "\nReasons:"
        "{% for r in p.reasons[:" + str(TOP_REASONS) + "] %}"
        "\n- {{ r.code }}: {{ r.message }}{% endfor %}"
        "{% if p.reasons|length > " + str(TOP_REASONS) + " %}"
        "\n- and {{ p.reasons|length - "
        + str(TOP_REASONS)
        + " }} more{% endif %}"
        + _links(events.DATA_REJECTED)
    ),
)

MODEL_REJECTED = NotificationTemplate(
    event=events.MODEL_REJECTED,
    subject=_P + "Model rejected: {{ p.model }} v{{ p.version }}",
    body=(
        _P + "Model: {{ p.model }} v{{ p.version }}"
        "\nFailed gates: {{ p.failed_gates|join(', ') }}"
        "{% if p.reason %}\nReason: {{ p.reason }}{% endif %}"
        "{% if p.champion %}\nChampion: v{{ p.champion }} keeps serving{% endif %}"
        + _links(events.MODEL_REJECTED)
    ),
)

PERFORMANCE_DEGRADED = NotificationTemplate(
    event=events.PERFORMANCE_DEGRADED,
    subject=(
        _P + "Performance degraded: {{ p.model }} v{{ p.version }} {{ p.metric }} " + _f3("p.value")
    ),
    body=(
        _P + "Model: {{ p.model }} v{{ p.version }}"
        "\n{{ p.metric }}: "
        + _f3("p.value")
        + " on outcomes vs "
        + _f3("p.reference_value")
        + " at validation (drop "
        + _f3("p.reference_value - p.value")
        + ", tolerance "
        + _f3("p.max_drop")
        + ")"
        "\nWindow: {{ p.window.start }} to {{ p.window.end }}, {{ p.labelled_rows }} labelled rows"
        "{% if p.retraining %}\nRetraining: {{ p.retraining }}{% endif %}"
        + _links(events.PERFORMANCE_DEGRADED)
    ),
)

MODEL_ROLLED_BACK = NotificationTemplate(
    event=events.MODEL_ROLLED_BACK,
    subject=_P + "Model rolled back: {{ p.model }} now serves v{{ p.version }}",
    body=(
        _P + "Model: {{ p.model }}"
        "\nChampion: v{{ p.version }}"
        "{% if p.previous_version %} (was v{{ p.previous_version }}){% endif %}"
        "{% if p.actor %}\nBy: {{ p.actor }}{% endif %}"
        "{% if p.reason %}\nReason: {{ p.reason }}{% endif %}" + _links(events.MODEL_ROLLED_BACK)
    ),
)

TEMPLATES: dict[str, NotificationTemplate] = {
    t.event: t
    for t in (
        DRIFT_DETECTED, DATA_REJECTED, MODEL_REJECTED, PERFORMANCE_DEGRADED, MODEL_ROLLED_BACK
    )
}  # fmt: skip


def notification_action(event: str, block_document_id: UUID | str) -> Any:
    """A Prefect ``SendNotification`` action for ``event`` through a saved notification block.

    For automations as code: ``Automation(trigger=EventTrigger(expect={event}, ...),
    actions=[notification_action(event, slack_block._block_document_id)])``.
    """
    from prefect.events.actions import SendNotification

    try:
        template = TEMPLATES[event]
    except KeyError:
        raise ValueError(
            f"{event!r} has no notification template; alert events are {sorted(TEMPLATES)}"
        ) from None
    return SendNotification(
        block_document_id=UUID(str(block_document_id)),
        subject=template.subject,
        body=template.body,
    )
