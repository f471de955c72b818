"""Alert messages, the automations' templates, and a real Slack webhook block posting to the
local receiver over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect_slack import SlackWebhook

from riskops import events
from riskops.governance.promotion import _event as promotion_event
from riskops.monitoring.receiver import SlackReceiver, render_message
from riskops.monitoring.slack import (
    BUILDERS,
    SlackMessage,
    alert_links,
    message_for,
    post_message,
)
from riskops.monitoring.slack_templates import TEMPLATES, notification_action
from riskops.records import PromotionRecord

PREFECT_UI = "http://127.0.0.1:4200"
MLFLOW = "http://127.0.0.1:5001"
RUN_ID = "0b9c9a52-8d3e-4f4e-9a51-3f1f3b1f0c11"


def _links(event: str, version: str | None = "7") -> dict[str, str]:
    return dict(
        alert_links(
            event, model="credit-scoring", version=version, flow_run_id=RUN_ID,
            prefect_ui_url=PREFECT_UI, mlflow_url=MLFLOW,
        )
    )  # fmt: skip


FULL: dict[str, dict[str, Any]] = {
    events.DRIFT_DETECTED: {
        "model": "credit-scoring",
        "version": "7",
        "kind": "data",
        "severity": "alert",
        "window": {"start": "2026-11-24T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
        "rows": 12000,
        "reference": "training feature set credit-scoring-3f2a",
        "features": [
            {"name": "income", "metric": "psi", "value": 0.3141, "warn": 0.1, "alert": 0.25},
            {"name": "debt_to_income", "metric": "psi", "value": 0.18, "warn": 0.1, "alert": None},
            {"name": "employment_type", "metric": "js", "value": 0.12, "warn": None, "alert": 0.2},
            {"name": "age", "metric": "ks", "value": 0.05, "warn": None, "alert": None},
            {"name": "tenure", "metric": "psi", "value": 0.04, "warn": 0.1, "alert": 0.25},
            {"name": "sixth", "metric": "psi", "value": 0.01, "warn": 0.1, "alert": 0.25},
        ],
        "retraining": "requested: claim 12, flow run 8e0d",
        "links": _links(events.DRIFT_DETECTED),
    },
    events.DATA_REJECTED: {
        "model": "credit-scoring",
        "filename": "2026-12-01.csv",
        "sha256": "ab" * 32,
        "summary": "rejected: column income is missing; ...",
        "reasons": [
            {
                "code": f"code_{i}",
                "message": f"problem {i} in rows 3 < 5",
                "column": "c",
                "rows": [3],
                "count": 1,
            }
            for i in range(7)
        ],
        "quarantine_uri": "file:///lake/quarantine/credit-scoring/abab",
        "links": _links(events.DATA_REJECTED, version=None),
    },
    events.MODEL_REJECTED: {
        "model": "credit-scoring",
        "version": "8",
        "passed": False,
        "failed_gates": ["min_auc", "fairness.age"],
        "champion": "7",
        "reason": "AUC 0.64 below 0.70",
        "links": _links(events.MODEL_REJECTED, version="8"),
    },
    events.PERFORMANCE_DEGRADED: {
        "model": "credit-scoring",
        "version": "7",
        "metric": "auc",
        "value": 0.712,
        "reference_value": 0.771,
        "max_drop": 0.03,
        "labelled_rows": 3400,
        "window": {"start": "2025-12-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        "retraining": "in cooldown until 2026-12-02 09:00Z",
        "links": _links(events.PERFORMANCE_DEGRADED),
    },
    events.MODEL_ROLLED_BACK: {
        "model": "credit-scoring",
        "version": "6",
        "previous_version": "7",
        "actor": "alice",
        "reason": "approval rate fell 9 points",
        "links": _links(events.MODEL_ROLLED_BACK, version="6"),
    },
}

# The keys every builder needs and nothing more: optional lines must drop out cleanly.
MINIMAL: dict[str, dict[str, Any]] = {
    events.DRIFT_DETECTED: {
        k: FULL[events.DRIFT_DETECTED][k]
        for k in ("model", "version", "kind", "severity", "window", "features")
    },
    events.DATA_REJECTED: {
        k: FULL[events.DATA_REJECTED][k] for k in ("model", "filename", "sha256", "summary")
    }
    | {"reasons": FULL[events.DATA_REJECTED]["reasons"][:2]},
    events.MODEL_REJECTED: {"model": "credit-scoring", "version": "8", "failed_gates": []},
    events.PERFORMANCE_DEGRADED: {
        k: v
        for k, v in FULL[events.PERFORMANCE_DEGRADED].items()
        if k not in ("retraining", "links")
    },
    events.MODEL_ROLLED_BACK: {"model": "credit-scoring", "version": "6"},
}

# What each message promises to show, as it must appear in the body (and in the blocks).
PROMISED: dict[str, list[str]] = {
    events.DRIFT_DETECTED: [
        "credit-scoring v7", "data", "alert", "2026-11-24T00:00:00Z", "2026-12-01T00:00:00Z",
        "12000 rows", "training feature set credit-scoring-3f2a",
        "income: psi 0.314 (warn 0.100, alert 0.250)", "debt_to_income: psi 0.180 (warn 0.100)",
        "employment_type: js 0.120 (alert 0.200)", "age: ks 0.050", "tenure: psi 0.040",
        "requested: claim 12", "docs/runbooks/drift-detected.md",
        f"{PREFECT_UI}/runs/flow-run/{RUN_ID}", f"{MLFLOW}/#/models/credit-scoring/versions/7",
    ],
    events.DATA_REJECTED: [
        "credit-scoring", "2026-12-01.csv", "abababababababab", "column income is missing",
        "code_0: problem 0 in rows 3", "code_4: problem 4", "and 2 more",
        "file:///lake/quarantine/credit-scoring/abab", "docs/runbooks/data-rejected.md",
        f"{PREFECT_UI}/runs/flow-run/{RUN_ID}",
    ],
    events.MODEL_REJECTED: [
        "credit-scoring v8", "min_auc, fairness.age", "AUC 0.64 below 0.70", "v7 keeps serving",
        "docs/runbooks/model-rejected.md", f"{MLFLOW}/#/models/credit-scoring/versions/8",
        f"{PREFECT_UI}/runs/flow-run/{RUN_ID}",
    ],
    events.PERFORMANCE_DEGRADED: [
        "credit-scoring v7", "auc", "0.712 on outcomes vs 0.771 at validation",
        "drop 0.059, tolerance 0.030", "2025-12-01T00:00:00Z", "3400 labelled rows",
        "in cooldown until", "docs/runbooks/performance-degraded.md",
        f"{PREFECT_UI}/runs/flow-run/{RUN_ID}", f"{MLFLOW}/#/models/credit-scoring/versions/7",
    ],
    events.MODEL_ROLLED_BACK: [
        "credit-scoring", "v6 (was v7)", "alice", "approval rate fell 9 points",
        "docs/runbooks/signoff-and-rollback.md", f"{MLFLOW}/#/models/credit-scoring/versions/6",
        f"{PREFECT_UI}/runs/flow-run/{RUN_ID}",
    ],
}  # fmt: skip


@pytest.fixture
def receiver(tmp_path: Path):
    echo = io.StringIO()
    with SlackReceiver(out=tmp_path / "slack.jsonl", echo=echo) as running:
        yield running


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _block_text(message: SlackMessage) -> str:
    # What the blocks show (Slack's escapes undone by the receiver's rendering).
    return render_message({"blocks": message.blocks})


@pytest.mark.parametrize("event", sorted(BUILDERS))
def test_messages_show_every_promised_field_in_body_and_blocks(event):
    message = message_for(event, FULL[event])
    blocks = _block_text(message)
    missing_body = [s for s in PROMISED[event] if s not in message.body]
    missing_blocks = [s for s in PROMISED[event] if s not in blocks]
    assert not missing_body and not missing_blocks, (missing_body, missing_blocks)
    assert message.payload()["text"] == message.subject and message.subject in blocks
    assert message.blocks[0]["type"] == "header"


def test_the_drift_message_lists_only_the_top_five_features_worst_first():
    body = message_for(events.DRIFT_DETECTED, FULL[events.DRIFT_DETECTED]).body
    names = [line.split(":")[0][2:] for line in body.splitlines() if line.startswith("- ")]
    assert names == ["income", "debt_to_income", "employment_type", "age", "tenure"]


def test_mrkdwn_control_characters_are_escaped_in_blocks():
    message = message_for(events.DATA_REJECTED, FULL[events.DATA_REJECTED])
    raw = json.dumps(message.blocks)
    assert "rows 3 &lt; 5" in raw and "rows 3 < 5" not in raw
    assert "rows 3 < 5" in message.body  # the plain body stays plain
    links = next(b for b in message.blocks if b["type"] == "context")["elements"]
    assert {"type": "mrkdwn", "text": f"<{PREFECT_UI}/runs/flow-run/{RUN_ID}|Flow run>"} in links
    assert {"type": "mrkdwn", "text": "Runbook: `docs/runbooks/data-rejected.md`"} in links


def test_without_links_the_runbook_path_is_still_named():
    message = message_for(events.MODEL_ROLLED_BACK, MINIMAL[events.MODEL_ROLLED_BACK])
    assert message.body.splitlines()[-1] == "Runbook: docs/runbooks/signoff-and-rollback.md"
    assert "Flow run" not in message.body and "By:" not in message.body


def test_alert_links_join_the_docs_base_url():
    links = alert_links(
        events.DRIFT_DETECTED, docs_base_url="https://git.example/riskops/blob/main/"
    )
    assert links == {
        "runbook": "https://git.example/riskops/blob/main/docs/runbooks/drift-detected.md"
    }


def test_a_payload_missing_a_key_is_refused_with_the_key_named():
    payload = dict(FULL[events.DRIFT_DETECTED])
    del payload["window"]
    with pytest.raises(ValueError, match=r"riskops.drift.detected payload .* lacks \['window'\]"):
        message_for(events.DRIFT_DETECTED, payload)
    with pytest.raises(ValueError, match="has no Slack message"):
        message_for(events.DATA_LANDED, {})


def test_the_rollback_event_riskops_emits_makes_a_message():
    record = PromotionRecord(
        model="credit-scoring", version="6", previous_version="7", kind="rollback",
        actor="alice", reason="approval rate fell",
    )  # fmt: skip
    emitted = promotion_event("rollback", record)
    body = message_for(emitted.name, emitted.payload).body
    assert "Champion: v6 (was v7)" in body and "By: alice" in body


def _render_in_automation(event: str, payload: dict[str, Any]) -> list[str]:
    """Render the template as a Prefect automation does: the server's SendNotification."""
    from prefect.server.events.actions import SendNotification
    from prefect.server.events.schemas.automations import (
        Automation,
        EventTrigger,
        Posture,
        TriggeredAction,
    )
    from prefect.server.events.schemas.events import ReceivedEvent

    client_action = notification_action(event, uuid.uuid4())
    action = SendNotification.model_validate(client_action.model_dump(mode="json"))
    automation = Automation(
        name=f"slack {event}",
        trigger=EventTrigger(expect={event}, posture=Posture.Reactive, threshold=1),
        actions=[action],
    )
    received = ReceivedEvent(
        occurred=dt.datetime.now(dt.UTC), event=event, id=uuid.uuid4(), payload=payload,
        resource={"prefect.resource.id": "riskops.monitor.credit-scoring.data"},
    )  # fmt: skip
    triggered = TriggeredAction(
        automation=automation, triggered=dt.datetime.now(dt.UTC), triggering_labels={},
        triggering_event=received, action=action,
    )  # fmt: skip
    return asyncio.run(action.render(triggered))


@pytest.mark.parametrize("variant", ["full", "minimal"])
@pytest.mark.parametrize("event", sorted(TEMPLATES))
def test_the_automation_templates_render_the_builders_subject_and_body(event, variant):
    payload = (FULL if variant == "full" else MINIMAL)[event]
    message = message_for(event, payload)
    subject, body = _render_in_automation(event, payload)
    assert (subject, body) == (message.subject, message.body)


def test_every_alert_event_has_a_builder_and_a_template():
    assert set(TEMPLATES) == set(BUILDERS) and set(BUILDERS) <= events.ALL_EVENTS


def test_a_real_slack_webhook_block_notifies_the_receiver(receiver, tmp_path):
    # Constructed in-process, never saved: notify needs no Prefect server.
    block = SlackWebhook(url=receiver.url)
    message = message_for(events.DRIFT_DETECTED, FULL[events.DRIFT_DETECTED])
    block.notify(message.body, subject=message.subject)  # what SendNotification calls
    (entry,) = _lines(tmp_path / "slack.jsonl")
    assert entry["payload"] == {"text": f"{message.subject}\n{message.body}"}
    assert entry["path"] == "/services/riskops/local/webhook"
    assert receiver.messages == [entry]
    printed = receiver.echo.getvalue()
    assert "[ALERT] data drift on credit-scoring v7" in printed
    assert "- income: psi 0.314 (warn 0.100, alert 0.250)" in printed


def test_block_kit_messages_go_through_the_blocks_client(receiver, tmp_path):
    block = SlackWebhook(url=receiver.url)
    for event in sorted(BUILDERS):
        post_message(block, message_for(event, FULL[event]))
    received = [entry["payload"] for entry in _lines(tmp_path / "slack.jsonl")]
    assert received == [message_for(e, FULL[e]).payload() for e in sorted(BUILDERS)]
    assert "Model rolled back: credit-scoring now serves v6" in receiver.echo.getvalue()


def test_a_refused_post_raises_with_the_status(receiver):
    block = SlackWebhook(url=receiver.url)
    empty = SlackMessage(event=events.DRIFT_DETECTED, subject="", body="")
    with pytest.raises(RuntimeError, match="HTTP 400 'no_text'"):
        post_message(block, empty)
    assert receiver.messages == []


def test_the_receiver_answers_like_slack(receiver, tmp_path):
    url = receiver.url
    ok = httpx.post(url, json={"text": "hello"})
    assert (ok.status_code, ok.text) == (200, "ok")
    bad = httpx.post(url, content=b"text=hello", headers={"Content-Type": "text/plain"})
    assert (bad.status_code, bad.text) == (400, "invalid_payload")
    assert httpx.post(url, content=b"\xff\xfe").status_code == 400
    assert httpx.post(url, json=["a list"]).status_code == 400
    assert httpx.post(url, json={"username": "x"}).text == "no_text"
    assert httpx.get(url).status_code == 405
    assert [e["payload"] for e in _lines(tmp_path / "slack.jsonl")] == [{"text": "hello"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_receiver_runs_as_a_module(tmp_path):
    port, out = _free_port(), tmp_path / "out" / "slack.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskops.monitoring.receiver", "--port", str(port), "--out",
         str(out)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in first
        url = first.rsplit(" ", 1)[-1].strip()
        SlackWebhook(url=url).notify("body line", subject="subject line")
        assert _lines(out)[0]["payload"] == {"text": "subject line\nbody line"}
    finally:
        proc.terminate()
        stdout, _ = proc.communicate(timeout=10)
    assert "subject line\nbody line" in stdout


class _BrokenStdout(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_message_is_kept_and_acknowledged_when_stdout_is_gone(tmp_path):
    with SlackReceiver(out=tmp_path / "s.jsonl", echo=_BrokenStdout()) as running:
        answer = httpx.post(running.url, json={"text": "still here"})
    assert (answer.status_code, answer.text) == (200, "ok")
    assert _lines(tmp_path / "s.jsonl")[0]["payload"] == {"text": "still here"}


def test_the_webhook_url_comes_from_riskops_slack_webhook_url(monkeypatch):
    from riskops.monitoring.slack import SlackSettings

    monkeypatch.setenv("RISKOPS_SLACK_WEBHOOK_URL", "http://127.0.0.1:5999/services/x")
    url = SlackSettings().webhook_url
    assert url is not None and url.get_secret_value() == "http://127.0.0.1:5999/services/x"
