"""Slack messages for riskops alerts, built from the payload of the event that raised them.

One builder per alert event returns a :class:`SlackMessage`: a one-line ``subject`` (Slack's
``text`` fallback), Block Kit ``blocks`` (what the channel shows), and a plain-text ``body``.
``subject`` and ``body`` are exactly what the Jinja templates of
:mod:`riskops.monitoring.slack_templates` render from ``event.payload`` in a Prefect automation's
``SendNotification`` (a test checks that both agree), so a message looks the same whether a flow
posts it or an automation does.

Payload keys (a contract: emit the events with these keys; ``links`` is optional everywhere):

``riskops.drift.detected`` (:class:`DriftPayload`)
    ``model``, ``version`` (the champion compared), ``kind`` (data | prediction | skew |
    quality), ``severity`` (warn | alert), ``window`` ``{"start", "end"}`` (ISO-8601 UTC strings),
    ``features``: a list of :class:`FeatureDrift` ``{"name", "metric", "value", "warn", "alert"}``
    worst first (the message shows the first five; ``warn``/``alert`` are the spec's thresholds,
    null when none); optional ``rows`` (rows in the window), ``reference`` (what was compared
    against, e.g. ``"training feature set credit-scoring-3f2a"``), ``retraining`` (one line:
    what happened to retraining, e.g. the cooldown message of riskops.monitoring.cooldown).
``riskops.data.rejected`` (as riskops.stages.contract emits it)
    ``model``, ``filename``, ``sha256``, ``summary``, ``reasons`` (``{"code", "message",
    "column", "rows", "count"}``), optional ``quarantine_uri``.
``riskops.model.rejected`` (as riskops.stages.validation emits it)
    ``model``, ``version``, ``failed_gates`` (list of gate names), optional ``champion``,
    ``reason``.
``riskops.performance.degraded`` (:class:`PerformancePayload`)
    ``model``, ``version``, ``metric`` (e.g. ``auc``), ``value`` (on labelled outcomes),
    ``reference_value`` (at validation), ``max_drop`` (the spec's tolerance), ``labelled_rows``,
    ``window`` ``{"start", "end"}``; optional ``retraining``.
``riskops.model.rolled-back`` (as riskops.governance.promotion emits it)
    ``model``, ``version`` (the champion now), optional ``previous_version``, ``actor``,
    ``reason``.
``links`` (:func:`alert_links`)
    ``{"runbook", "flow_run", "model_version"}``, each optional: URLs of the runbook, the Prefect
    flow run that raised the event and the MLflow model version. Without ``runbook`` the message
    names the repository path ``docs/runbooks/<name>.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskops import events

SLACK_BLOCK = "riskops-slack"  # the prefect_slack.SlackWebhook document the automations use
TOP_FEATURES = 5
TOP_REASONS = 5

RUNBOOKS: dict[str, str] = {
    events.DRIFT_DETECTED: "docs/runbooks/drift-detected.md",
    events.DATA_REJECTED: "docs/runbooks/data-rejected.md",
    events.MODEL_REJECTED: "docs/runbooks/model-rejected.md",
    events.PERFORMANCE_DEGRADED: "docs/runbooks/performance-degraded.md",
    events.MODEL_ROLLED_BACK: "docs/runbooks/signoff-and-rollback.md",
}


class SlackSettings(BaseSettings):
    """Where alerts go (the Slack webhook block is built from this) and how links are made."""

    model_config = SettingsConfigDict(env_prefix="RISKOPS_SLACK_", extra="ignore", env_file=None)

    webhook_url: SecretStr | None = Field(
        default=None,
        description="Incoming-webhook URL of the Slack block; the embedded defaults point it at "
        "the local receiver (python -m riskops.monitoring.receiver).",
    )
    docs_base_url: str | None = Field(
        default=None,
        description="Base URL the runbook paths are joined to (e.g. the repository's blob/main/); "
        "unset: messages name the path docs/runbooks/<name>.md.",
    )
    receiver_host: str = Field(
        default="127.0.0.1", description="Interface of the local receiver `riskops up` starts."
    )
    receiver_port: int = Field(default=5005, description="Port of the local Slack receiver.")

    def receiver_url(self) -> str:
        """The local receiver's webhook URL (any path is accepted; this one reads well)."""
        return f"http://{self.receiver_host}:{self.receiver_port}/services/riskops/local/webhook"

    def block_url(self) -> str:
        """Where the Slack block posts: ``webhook_url`` when set, else the local receiver."""
        if self.webhook_url is not None:
            return self.webhook_url.get_secret_value()
        return self.receiver_url()


class Window(TypedDict):
    start: str
    end: str


class FeatureDrift(TypedDict):
    name: str
    metric: str  # psi | ks | js | ...
    value: float
    warn: float | None
    alert: float | None


class Links(TypedDict, total=False):
    runbook: str
    flow_run: str
    model_version: str


class DriftPayload(TypedDict):
    model: str
    version: str
    kind: str
    severity: str
    window: Window
    features: list[FeatureDrift]
    rows: NotRequired[int]
    reference: NotRequired[str]
    retraining: NotRequired[str]
    links: NotRequired[Links]


class PerformancePayload(TypedDict):
    model: str
    version: str
    metric: str
    value: float
    reference_value: float
    max_drop: float
    labelled_rows: int
    window: Window
    retraining: NotRequired[str]
    links: NotRequired[Links]


def alert_links(
    event: str,
    *,
    model: str | None = None,
    version: str | None = None,
    flow_run_id: str | None = None,
    prefect_ui_url: str | None = None,
    mlflow_url: str | None = None,
    docs_base_url: str | None = None,
) -> Links:
    """The ``links`` of an alert payload, for the flow that emits the event.

    Args:
        prefect_ui_url: the Prefect UI (``http://127.0.0.1:4200`` locally; the API URL without
            ``/api``). mlflow_url: the MLflow server (its UI is at the same address).
    """
    links: Links = {}
    runbook = RUNBOOKS.get(event)
    if runbook:
        links["runbook"] = f"{docs_base_url.rstrip('/')}/{runbook}" if docs_base_url else runbook
    if flow_run_id and prefect_ui_url:
        links["flow_run"] = f"{prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"
    if model and version and mlflow_url:
        links["model_version"] = f"{mlflow_url.rstrip('/')}/#/models/{model}/versions/{version}"
    return links


@dataclass(frozen=True)
class SlackMessage:
    """One alert, ready for a Slack webhook (``payload()``) or a notification block (``body``)."""

    event: str
    subject: str
    body: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The JSON an incoming webhook takes: ``text`` is the fallback for notifications."""
        return {"text": self.subject, "blocks": self.blocks}


def _num(value: Any) -> str:
    return "%.3f" % value  # noqa: UP031 (the same format as the templates' `"%.3f"|format`)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)  # as the templates' `is number`


def _esc(text: Any) -> str:
    # Slack mrkdwn treats these three as control characters.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _require(payload: Mapping[str, Any], event: str, *keys: str) -> None:
    missing = [key for key in keys if key not in payload]
    if missing:
        raise ValueError(
            f"{event} payload for {payload.get('model', '(no model)')!r} lacks {missing}: "
            "emit it with the keys documented in riskops.monitoring.slack"
        )


@dataclass
class _Alert:
    """A message in the shape every alert shares: facts, a list, links."""

    event: str
    subject: str
    facts: list[tuple[str, str]]
    list_title: str | None = None
    items: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)

    def body(self) -> str:
        lines = [f"{label}: {value}" for label, value in self.facts]
        if self.list_title is not None:
            lines += [f"{self.list_title}:"] + [f"- {item}" for item in self.items]
        lines += [f"{label}: {url}" for label, url in self.links]
        return "\n".join(lines)

    def blocks(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": self.subject[:150]}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_esc(label)}*\n{_esc(value)}"[:2000]}
                    for label, value in self.facts[:10]
                ],
            },
        ]
        if self.list_title is not None:
            listed = "\n".join(f"• {_esc(item)}" for item in self.items) or "(none)"
            text = f"*{_esc(self.list_title)}*\n{listed}"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        if self.links:
            blocks.append({"type": "context", "elements": [_link(*link) for link in self.links]})
        return blocks

    def message(self) -> SlackMessage:
        return SlackMessage(self.event, self.subject, self.body(), self.blocks())


def _link(label: str, target: str) -> dict[str, str]:
    if "://" in target:
        return {"type": "mrkdwn", "text": f"<{target}|{_esc(label)}>"}
    return {"type": "mrkdwn", "text": f"{_esc(label)}: `{_esc(target)}`"}  # a repository path


def _links(event: str, payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    links = payload.get("links") or {}
    found = [("Runbook", links.get("runbook") or RUNBOOKS[event])]
    if links.get("flow_run"):
        found.append(("Flow run", links["flow_run"]))
    if links.get("model_version"):
        found.append(("Model version", links["model_version"]))
    return found


def drift_message(payload: Mapping[str, Any]) -> SlackMessage:
    """`riskops.drift.detected`: which model, how bad, over which window, which features."""
    event = events.DRIFT_DETECTED
    _require(payload, event, "model", "version", "kind", "severity", "window", "features")
    p = payload
    window = f"{p['window']['start']} to {p['window']['end']}"
    if p.get("rows"):
        window += f", {p['rows']} rows"
    facts = [
        ("Model", f"{p['model']} v{p['version']}"),
        ("Drift", f"{p['kind']}, severity {p['severity']}"),
        ("Window", window),
    ]
    if p.get("reference"):
        facts.append(("Reference", str(p["reference"])))
    if p.get("retraining"):
        facts.append(("Retraining", str(p["retraining"])))
    items = []
    for f in p["features"][:TOP_FEATURES]:
        item = f"{f['name']}: {f['metric']} {_num(f['value'])}"
        if _is_number(f.get("warn")):
            item += f" (warn {_num(f['warn'])}"
            item += f", alert {_num(f['alert'])})" if _is_number(f.get("alert")) else ")"
        elif _is_number(f.get("alert")):
            item += f" (alert {_num(f['alert'])})"
        items.append(item)
    subject = f"[{p['severity'].upper()}] {p['kind']} drift on {p['model']} v{p['version']}"
    return _Alert(event, subject, facts, "Top features", items, _links(event, p)).message()


def data_rejected_message(payload: Mapping[str, Any]) -> SlackMessage:
    """`riskops.data.rejected`: which file, why, where it was quarantined."""
    event = events.DATA_REJECTED
    _require(payload, event, "model", "filename", "sha256", "summary", "reasons")
    p = payload
    facts = [
        ("Model", str(p["model"])),
        ("File", f"{p['filename']} (sha256 {p['sha256'][:16]})"),
        ("Summary", str(p["summary"])),
    ]
    if p.get("quarantine_uri"):
        facts.append(("Quarantine", str(p["quarantine_uri"])))
    reasons = p["reasons"]
    items = [f"{r['code']}: {r['message']}" for r in reasons[:TOP_REASONS]]
    if len(reasons) > TOP_REASONS:
        items.append(f"and {len(reasons) - TOP_REASONS} more")
    subject = f"Data rejected for {p['model']}: {p['filename']}"
    return _Alert(event, subject, facts, "Reasons", items, _links(event, p)).message()


def model_rejected_message(payload: Mapping[str, Any]) -> SlackMessage:
    """`riskops.model.rejected`: which version failed which gates; the champion keeps serving."""
    event = events.MODEL_REJECTED
    _require(payload, event, "model", "version", "failed_gates")
    p = payload
    facts = [
        ("Model", f"{p['model']} v{p['version']}"),
        ("Failed gates", ", ".join(p["failed_gates"])),
    ]
    if p.get("reason"):
        facts.append(("Reason", str(p["reason"])))
    if p.get("champion"):
        facts.append(("Champion", f"v{p['champion']} keeps serving"))
    subject = f"Model rejected: {p['model']} v{p['version']}"
    return _Alert(event, subject, facts, links=_links(event, p)).message()


def performance_degraded_message(payload: Mapping[str, Any]) -> SlackMessage:
    """`riskops.performance.degraded`: realised performance against validation and tolerance."""
    event = events.PERFORMANCE_DEGRADED
    keys = ("model", "version", "metric", "value", "reference_value", "max_drop")
    _require(payload, event, *keys, "labelled_rows", "window")
    p = payload
    facts = [
        ("Model", f"{p['model']} v{p['version']}"),
        (
            str(p["metric"]),
            f"{_num(p['value'])} on outcomes vs {_num(p['reference_value'])} at validation "
            f"(drop {_num(p['reference_value'] - p['value'])}, tolerance {_num(p['max_drop'])})",
        ),
        (
            "Window",
            f"{p['window']['start']} to {p['window']['end']}, {p['labelled_rows']} labelled rows",
        ),
    ]
    if p.get("retraining"):
        facts.append(("Retraining", str(p["retraining"])))
    subject = f"Performance degraded: {p['model']} v{p['version']} {p['metric']} {_num(p['value'])}"
    return _Alert(event, subject, facts, links=_links(event, p)).message()


def rolled_back_message(payload: Mapping[str, Any]) -> SlackMessage:
    """`riskops.model.rolled-back`: which version serves now, which one it replaced, who, why."""
    event = events.MODEL_ROLLED_BACK
    _require(payload, event, "model", "version")
    p = payload
    champion = f"v{p['version']}"
    if p.get("previous_version"):
        champion += f" (was v{p['previous_version']})"
    facts = [("Model", str(p["model"])), ("Champion", champion)]
    if p.get("actor"):
        facts.append(("By", str(p["actor"])))
    if p.get("reason"):
        facts.append(("Reason", str(p["reason"])))
    subject = f"Model rolled back: {p['model']} now serves v{p['version']}"
    return _Alert(event, subject, facts, links=_links(event, p)).message()


BUILDERS: dict[str, Callable[[Mapping[str, Any]], SlackMessage]] = {
    events.DRIFT_DETECTED: drift_message,
    events.DATA_REJECTED: data_rejected_message,
    events.MODEL_REJECTED: model_rejected_message,
    events.PERFORMANCE_DEGRADED: performance_degraded_message,
    events.MODEL_ROLLED_BACK: rolled_back_message,
}


def message_for(event: str, payload: Mapping[str, Any]) -> SlackMessage:
    """The message of an alert event; ValueError for an event that has no Slack message."""
    try:
        builder = BUILDERS[event]
    except KeyError:
        raise ValueError(
            f"{event!r} has no Slack message; alert events are {sorted(BUILDERS)}"
        ) from None
    return builder(payload)


def post_message(webhook: Any, message: SlackMessage) -> None:
    """Post ``message`` with its blocks through a ``prefect_slack.SlackWebhook`` block.

    The block's own ``notify`` sends text only; Block Kit needs its client. Raises RuntimeError
    when the webhook answers with an error (a connection failure raises as slack_sdk does).
    """
    response = webhook.get_client(sync_client=True).send(**message.payload())
    if response.status_code >= 400:
        raise RuntimeError(
            f"Slack refused the {message.event} message {message.subject!r}: HTTP "
            f"{response.status_code} {response.body!r}. Check the webhook URL of the Slack block "
            "(RISKOPS_SLACK_WEBHOOK_URL on the embedded defaults)"
        )
