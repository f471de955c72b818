"""Alertmanager's webhook on the governance API: authenticated, strict, one event per burn alert."""

from __future__ import annotations

import copy

import pytest
from sqlmodel import select

from riskops import events, outbox
from riskops.db import session_scope
from riskops.governance.service import create_app
from riskops.slo.alertmanager import MalformedWebhook, triage
from riskops.slo.breach import alert_breach_id
from tests.governance_helpers import principal
from tests.helpers import AppClient, CollectingSender
from tests.test_signoff import KEYS, FakePrefect, platform  # noqa: F401  (fixture)

PATH = "/v1/alerts/alertmanager"
STARTS = "2026-12-01T16:00:05.123456789Z"  # Go writes nanoseconds


def _alert(name: str, model: str = "credit-scoring", status: str = "firing", **labels: str):
    slo = {"RiskopsErrorBudgetBurn": "errors", "RiskopsLatencyBudgetBurn": "latency"}.get(name)
    return {
        "status": status,
        "labels": {"alertname": name, "model": model, "severity": "page",
                   **({"slo": slo} if slo else {}), **labels},
        "annotations": {"summary": f"{model} burns its {slo} budget",
                        "burn_rate_long": "16.2", "burn_rate_short": "31.5"},
        "startsAt": STARTS,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
        "fingerprint": f"{abs(hash((name, model))):016x}",
    }  # fmt: skip


def _webhook(*alerts: dict) -> dict:
    return {
        "version": "4", "groupKey": "{}:{model=\"credit-scoring\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "riskops", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }  # fmt: skip


@pytest.fixture
def api(platform):  # noqa: F811
    sender = CollectingSender()
    app = create_app(
        platform=platform, prefect=FakePrefect(platform).prefect(), signing_key=KEYS[0],
        session_secret="s" * 32,
        send_events=lambda ids: outbox.deliver(platform.engine, ids=list(ids), send=sender),
    )  # fmt: skip
    key = principal(platform.engine, "alertmanager", "service")
    return AppClient(app), platform, {"Authorization": f"Bearer {key}"}, sender


def test_firing_burn_alerts_are_one_event_each_and_the_rest_is_ignored(api):
    client, plat, auth, sender = api
    body = _webhook(
        _alert("RiskopsErrorBudgetBurn"),
        _alert("RiskopsLatencyBudgetBurn", model="fraud-detection", severity="ticket",
               version="7", long_window="6h", short_window="30m"),
        _alert("RiskopsErrorBudgetBurn", model="transaction-risk", status="resolved"),
        _alert("RiskopsNoTraffic"),
    )  # fmt: skip
    answer = client.post(PATH, json=body, headers=auth)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert len(result["emitted"]) == 2 and result["repeated"] == [] and result["delivered"]
    assert [i["why"] for i in result["ignored"]] == ["resolved", "not an SLO burn alert of riskops"]
    assert sender.names == [events.SLA_BREACHED, events.SLA_BREACHED]
    (errors, latency) = [event for event, _ in sender.sent]
    assert errors.resource_id == "riskops.service.credit-scoring"
    assert errors.payload["slo"] == "errors" and errors.payload["severity"] == "page"
    assert errors.payload["burn_rates"] == {"long": 16.2, "short": 31.5}
    assert errors.payload["source"] == "alertmanager" and errors.payload["version"] is None
    assert errors.payload["detected_at"] == "2026-12-01T16:00:05.123456Z"
    assert latency.payload["model"] == "fraud-detection" and latency.payload["version"] == "7"
    assert latency.payload["severity"] == "ticket"
    assert latency.payload["windows"] == {"long": "6h", "short": "30m"}
    assert latency.related == (("riskops.model.fraud-detection.7", "served"),)
    # Alertmanager repeats a firing alert every repeat_interval: the same breach, not a new one
    again = client.post(PATH, json=body, headers=auth).json()
    assert again["emitted"] == [] and sorted(again["repeated"]) == sorted(result["emitted"])
    with session_scope(plat.engine) as session:
        rows = session.exec(select(outbox.OutboxEvent)).all()
    assert sorted(r.id for r in rows) == sorted(result["emitted"])
    assert (
        alert_breach_id(_alert("RiskopsErrorBudgetBurn")["fingerprint"], STARTS)
        in result["emitted"]
    )


def test_without_a_key_401_and_with_a_role_that_may_not_report_403(api):
    client, plat, _auth, sender = api
    body = _webhook(_alert("RiskopsErrorBudgetBurn"))
    assert client.post(PATH, json=body).status_code == 401
    bad = client.post(PATH, json=body, headers={"Authorization": "Bearer not-a-key"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    developer = principal(plat.engine, "dev@bank", "model-developer")
    refused = client.post(PATH, json=body, headers={"Authorization": f"Bearer {developer}"})
    assert refused.status_code == 403 and "sla.report" in refused.json()["error"]
    assert sender.sent == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update(version="3"), "version: Input should be '4'"),
        (lambda b: b.pop("alerts"), "alerts: Field required"),
        (lambda b: b["alerts"][0]["labels"].pop("model"), "no model label"),
        (lambda b: b["alerts"][0]["labels"].update(severity="urgent"), "severity='urgent'"),
        (lambda b: b["alerts"][0]["labels"].update(slo="latency"), "contradicts"),
        (lambda b: b["alerts"][0]["labels"].update(model="Credit Scoring"), "resource id"),
        (lambda b: b["alerts"][0]["annotations"].update(burn_rate_long="high"), "not a number"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "startsAt"),
    ],
)
def test_a_malformed_payload_is_422_with_what_is_wrong_and_nothing_is_emitted(api, change, message):
    client, _plat, auth, sender = api
    body = _webhook(_alert("RiskopsLatencyBudgetBurn", model="fraud-detection"),
                    _alert("RiskopsErrorBudgetBurn"))  # fmt: skip
    body["alerts"].reverse()  # the broken one (index 0) comes first; the good one is not sent
    change(body)
    answer = client.post(PATH, json=body, headers=auth)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"]
    assert sender.sent == []


def test_a_body_that_is_not_json_or_not_an_object_is_refused(api):
    client, _plat, auth, _sender = api
    assert client.post(PATH, content=b"{nope", headers={**auth, "content-type":
                       "application/json"}).status_code == 422  # fmt: skip
    answer = client.post(PATH, json=["not", "an", "object"], headers=auth)
    assert answer.status_code == 422 and "JSON object" in answer.json()["error"]


def test_triage_keeps_a_good_webhook_unchanged():
    body = _webhook(_alert("RiskopsErrorBudgetBurn"))
    before = copy.deepcopy(body)
    assert len(triage(body).breaches) == 1 and body == before
    with pytest.raises(MalformedWebhook, match="version 4"):
        triage({**body, "version": 4})
