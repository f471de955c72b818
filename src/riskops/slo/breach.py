"""`riskops.sla.breached`: one payload for both sources, and its delivery through the outbox.

Payload keys (a contract; the Slack template and the rollback policy read them):

``breach_id``     the event's id (also the Prefect event id);
``model``         the model whose scoring endpoint burns its budget;
``version``       the version served when the breach was seen, or null (an alert rule that
                  carries no version label);
``slo``           ``latency`` or ``errors``;
``severity``      ``page`` or ``ticket``;
``source``        ``service`` (the scoring service's tracker) or ``alertmanager``;
``detected_at``   ISO-8601 UTC; the rollback policy measures the guard window to this instant;
``burn_rates``    ``{"long": x, "short": y}`` (either may be missing from an alert);
``windows``       ``{"long": "1h", "short": "5m"}`` as text;
``objective``     the spec's objective (0.999), when known;
``counts``        ``{"long": {"bad", "total"}, "short": {...}}`` (the tracker only);
``summary``       one line for people; ``alertname`` and ``fingerprint`` (Alertmanager only);
``links``         ``{"runbook": ...}``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy.engine import Engine

from riskops import events, outbox
from riskops.db import session_scope
from riskops.events import RiskopsEvent

RUNBOOK = "docs/runbooks/sla-breached.md"
SLOS = ("latency", "errors")
SEVERITIES = ("page", "ticket")
_ALERT_IDS = uuid.UUID("5b1d0f3e-6a8c-4c1e-9f57-0d2f3b7a9c41")  # namespace of alert event ids

Slo = Literal["latency", "errors"]
Severity = Literal["page", "ticket"]


def duration_text(seconds: float) -> str:
    """3600 -> "1h", 300 -> "5m", 90 -> "90s" (how Prometheus writes windows)."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        return f"{seconds:g}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def alert_breach_id(fingerprint: str, starts_at: str) -> str:
    """The event id of one firing alert: the same alert redelivered gets the same id."""
    return str(uuid.uuid5(_ALERT_IDS, f"{fingerprint}|{starts_at}"))


def breach_payload(
    *,
    model: str,
    slo: str,
    severity: str,
    source: str,
    version: str | None = None,
    detected_at: dt.datetime | None = None,
    burn_rates: Mapping[str, float] | None = None,
    windows: Mapping[str, str] | None = None,
    objective: float | None = None,
    counts: Mapping[str, Mapping[str, int]] | None = None,
    summary: str = "",
    breach_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The payload of one breach (see the module docstring); checks model, slo and severity."""
    events.service_resource(model)  # a bad model name fails here, with what to use
    if slo not in SLOS:
        raise ValueError(f"slo {slo!r} of a breach of {model} is not one of {list(SLOS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} of a breach of {model} is not one of "
                         f"{list(SEVERITIES)}")  # fmt: skip
    at = (detected_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    payload: dict[str, Any] = {
        "breach_id": breach_id or str(uuid.uuid4()),
        "model": model,
        "version": version,
        "slo": slo,
        "severity": severity,
        "source": source,
        "detected_at": at.isoformat().replace("+00:00", "Z"),
        "burn_rates": {k: float(v) for k, v in (burn_rates or {}).items()},
        "windows": dict(windows or {}),
        "objective": objective,
        "summary": summary,
        "links": {"runbook": RUNBOOK},
    }
    if counts is not None:
        payload["counts"] = {k: dict(v) for k, v in counts.items()}
    payload.update(extra or {})
    return payload


def breach_event(payload: Mapping[str, Any]) -> RiskopsEvent:
    """The Prefect event of a breach payload (resource ``riskops.service.<model>``)."""
    related: tuple[tuple[str, str], ...] = ()
    if payload.get("version"):
        related = ((events.model_resource(payload["model"], payload["version"]), "served"),)
    return RiskopsEvent(
        name=events.SLA_BREACHED,
        resource_id=events.service_resource(payload["model"]),
        payload=dict(payload),
        related=related,
    )


def enqueue_breach(engine: Engine, payload: Mapping[str, Any]) -> str | None:
    """Commit the breach's event to the outbox; None when that breach id is there already
    (Alertmanager resends a firing alert every repeat_interval)."""
    breach_id = str(payload["breach_id"])
    with session_scope(engine) as session:
        if session.get(outbox.OutboxEvent, breach_id) is not None:
            return None
        return outbox.enqueue(session=session, event=breach_event(payload), event_id=breach_id)


def parse_time(text: str) -> dt.datetime:
    """An ISO-8601 instant (``Z`` or an offset) as an aware UTC datetime."""
    # Go (Alertmanager) writes nanoseconds; Python reads at most microseconds.
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    value = dt.datetime.fromisoformat(trimmed)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; send UTC (…Z)")
    return value.astimezone(dt.UTC)
