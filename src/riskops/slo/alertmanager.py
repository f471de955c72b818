"""Alertmanager's webhook (payload version 4) -> `riskops.sla.breached` payloads.

The alert rules in ``infra/prometheus/`` name two alerts, ``RiskopsLatencyBudgetBurn`` and
``RiskopsErrorBudgetBurn``, labelled ``model``, ``slo`` (latency | errors) and ``severity``
(page | ticket). Each *firing* alert of those names is one breach; its event id is derived from
the alert's fingerprint and start, so Alertmanager's repeats (``repeat_interval``) and retries
give the same id and announce it once. Resolved alerts and alerts of other names are ignored
(reported back in the response, not recorded): a breach is an instant, and the rollback policy
acts on the first one.

Burn figures: every label or annotation whose name starts with ``burn_rate`` is read as a
number (``burn_rate_long`` / ``burn_rate`` -> ``long``, ``burn_rate_short`` -> ``short``); the
windows come from ``long_window`` / ``short_window``, the objective from ``objective`` and the
served version from ``version``, each optional and looked up in labels, then annotations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskops.slo.breach import SEVERITIES, alert_breach_id, breach_payload, parse_time

ALERTS: dict[str, str] = {"RiskopsLatencyBudgetBurn": "latency", "RiskopsErrorBudgetBurn": "errors"}


class MalformedWebhook(ValueError):
    """The body is not an Alertmanager v4 webhook, or an alert of ours lacks what it needs."""


class _Alert(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: str = Field(alias="startsAt")
    ends_at: str = Field(default="", alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(min_length=1)


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    status: Literal["firing", "resolved"]
    receiver: str
    alerts: list[_Alert]
    external_url: str = Field(default="", alias="externalURL")


@dataclass
class Triage:
    """What one webhook delivery holds: breach payloads, and the alerts left alone and why."""

    breaches: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)


def _problems(error: ValidationError) -> str:
    parts = []
    for problem in error.errors()[:10]:
        where = ".".join(str(p) for p in problem["loc"]) or "(body)"
        parts.append(f"{where}: {problem['msg']}")
    return "; ".join(parts)


def _lookup(alert: _Alert, key: str) -> str | None:
    return alert.labels.get(key) or alert.annotations.get(key) or None


def _burn_rates(alert: _Alert, where: str) -> dict[str, float]:
    rates: dict[str, float] = {}
    for source in (alert.annotations, alert.labels):  # labels win
        for key, text in source.items():
            if not key.startswith("burn_rate"):
                continue
            try:
                value = float(text)
            except ValueError:
                raise MalformedWebhook(
                    f"{where}: {key}={text!r} is not a number; template it as "
                    "{{ $value }} or a humanize-free printf in the alert rule"
                ) from None
            if not math.isfinite(value):
                continue
            window = "short" if key.endswith("short") else "long"
            rates[window] = value
    return rates


def triage(body: Any) -> Triage:
    """The breaches in an Alertmanager webhook body; :class:`MalformedWebhook` says what is wrong.

    Nothing is taken from a body with a bad alert of ours (all or none), so a broken rule is
    seen at once in Alertmanager's log rather than half-delivered.
    """
    if not isinstance(body, Mapping):
        raise MalformedWebhook("the body must be a JSON object (Alertmanager webhook, version 4)")
    try:
        webhook = _Webhook.model_validate(body)
    except ValidationError as error:
        raise MalformedWebhook(
            f"not an Alertmanager webhook (version 4): {_problems(error)}"
        ) from None
    out = Triage()
    for i, alert in enumerate(webhook.alerts):
        name = alert.labels.get("alertname", "")
        where = f"alerts[{i}] ({name or 'no alertname'}, fingerprint {alert.fingerprint})"
        if name not in ALERTS:
            out.ignored.append({"alert": where, "why": "not an SLO burn alert of riskops"})
            continue
        if alert.status != "firing":
            out.ignored.append({"alert": where, "why": "resolved"})
            continue
        slo = ALERTS[name]
        if alert.labels.get("slo", slo) != slo:
            raise MalformedWebhook(f"{where}: label slo={alert.labels['slo']!r} contradicts "
                                   f"{name} (slo {slo!r}); fix the alert rule")  # fmt: skip
        model = alert.labels.get("model")
        if not model:
            raise MalformedWebhook(f"{where}: no model label; the rule must keep `model`")
        severity = alert.labels.get("severity", "")
        if severity not in SEVERITIES:
            raise MalformedWebhook(f"{where}: label severity={severity!r} is not one of "
                                   f"{list(SEVERITIES)}")  # fmt: skip
        try:
            started = parse_time(alert.starts_at)
        except ValueError as error:
            raise MalformedWebhook(f"{where}: startsAt {alert.starts_at!r}: {error}") from None
        objective_text = _lookup(alert, "objective")
        try:
            objective = float(objective_text) if objective_text else None
        except ValueError:
            raise MalformedWebhook(
                f"{where}: objective={objective_text!r} is not a number"
            ) from None
        windows = {w: text for w in ("long", "short") if (text := _lookup(alert, f"{w}_window"))}
        summary = (
            alert.annotations.get("summary")
            or alert.annotations.get("description")
            or (f"{name} firing for {model} ({severity})")
        )
        try:
            payload = breach_payload(
                model=model, slo=slo, severity=severity, source="alertmanager",
                version=_lookup(alert, "version"), detected_at=started,
                burn_rates=_burn_rates(alert, where), windows=windows, objective=objective,
                summary=summary, breach_id=alert_breach_id(alert.fingerprint, alert.starts_at),
                extra={"alertname": name, "fingerprint": alert.fingerprint,
                       "generator_url": alert.generator_url or None,
                       "receiver": webhook.receiver},
            )  # fmt: skip
        except ValueError as error:
            raise MalformedWebhook(f"{where}: {error}") from None
        out.breaches.append(payload)
    return out
