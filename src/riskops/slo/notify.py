"""The Slack message of `riskops.sla.breached`: a Jinja template for the automation, and the
same text built in Python (a test renders the template with Prefect's renderer and compares).

The message says which model and version burn which budget, how fast over which windows, who
saw it (the service's tracker or Alertmanager) and what the rollback policy does next; a
rollback, when the policy makes one, is its own message (`riskops.model.rolled-back`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from riskops import events
from riskops.monitoring.slack_templates import NotificationTemplate
from riskops.slo.breach import RUNBOOK

_P = "{% set p = event.payload %}"
NEXT = (
    "Rollback policy: a breach within the guard window after a promotion rolls the champion "
    "back when RISKOPS_SLO_AUTO_ROLLBACK is on; a rollback is announced on its own"
)

SLA_BREACHED = NotificationTemplate(
    event=events.SLA_BREACHED,
    subject=(
        _P + "[{{ p.severity|upper }}] SLO breach on {{ p.model }}"
        "{% if p.version %} v{{ p.version }}{% endif %}: {{ p.slo }} budget burning"
        "{% if p.burn_rates.long is number %} {{ '%.1f'|format(p.burn_rates.long) }}x"
        "{% endif %}"
    ),
    body=(
        _P + "Model: {{ p.model }}{% if p.version %} v{{ p.version }}{% endif %}"
        "\nSLO: {{ p.slo }} ({{ p.severity }}), seen by {{ p.source }}"
        "{% if p.objective is number %}, objective {{ p.objective }}{% endif %}"
        "{% for w in ['long', 'short'] %}{% if p.burn_rates[w] is number %}"
        "\nBurn {{ w }}: {{ '%.1f'|format(p.burn_rates[w]) }}x"
        "{% if p.windows[w] %} over {{ p.windows[w] }}{% endif %}{% endif %}{% endfor %}"
        "\nDetected: {{ p.detected_at }}"
        "{% if p.summary %}\nSummary: {{ p.summary }}{% endif %}"
        "\n" + NEXT + "\nRunbook: {{ p.links.runbook or '" + RUNBOOK + "' }}"
    ),
)


def breach_message(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, body) of a breach, exactly as the automation's template renders them."""
    p = payload
    rates, windows = p.get("burn_rates") or {}, p.get("windows") or {}
    version = f" v{p['version']}" if p.get("version") else ""
    subject = f"[{p['severity'].upper()}] SLO breach on {p['model']}{version}: {p['slo']} budget "
    subject += "burning" + (f" {rates['long']:.1f}x" if "long" in rates else "")
    lines = [f"Model: {p['model']}{version}"]
    slo = f"SLO: {p['slo']} ({p['severity']}), seen by {p['source']}"
    if isinstance(p.get("objective"), int | float):
        slo += f", objective {p['objective']}"
    lines.append(slo)
    for w in ("long", "short"):
        if w in rates:
            lines.append(f"Burn {w}: {rates[w]:.1f}x" + (f" over {windows[w]}" if windows.get(w)
                                                         else ""))  # fmt: skip
    lines.append(f"Detected: {p['detected_at']}")
    if p.get("summary"):
        lines.append(f"Summary: {p['summary']}")
    lines += [NEXT, f"Runbook: {(p.get('links') or {}).get('runbook') or RUNBOOK}"]
    return subject, "\n".join(lines)


def sla_notification_action(block_document_id: UUID | str) -> Any:
    """The automation's ``SendNotification`` of a breach through the saved Slack block."""
    from prefect.events.actions import SendNotification

    return SendNotification(
        block_document_id=UUID(str(block_document_id)),
        subject=SLA_BREACHED.subject,
        body=SLA_BREACHED.body,
    )
