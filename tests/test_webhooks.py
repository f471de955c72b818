"""MLflow registry webhooks → riskops events: signatures, the bridge app, a real MLflow server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from mlflow import MlflowClient

from riskops.events import MODEL_REGISTERED, RiskopsEvent
from riskops.webhooks.bridge import WEBHOOK_PATH, create_app
from riskops.webhooks.register import ensure_webhook, find_webhook
from riskops.webhooks.settings import WebhookSettings
from riskops.webhooks.signature import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    expected_signature,
    sign_like_mlflow,
    verify_mlflow_signature,
)
from tests.helpers import AppClient

SECRET = "s3cr3t-for-tests"


class Collector:
    """An emitter that records events (thread-safe) and can be told to fail."""

    def __init__(self) -> None:
        self.events: list[RiskopsEvent] = []
        self.fail = False
        self._lock = threading.Lock()

    def __call__(self, event: RiskopsEvent) -> str:
        if self.fail:
            raise ConnectionError("prefect unreachable")
        with self._lock:
            self.events.append(event)
        return f"evt-{len(self.events)}"

    def for_model(self, model: str) -> list[RiskopsEvent]:
        with self._lock:
            return [e for e in self.events if e.payload.get("model") == model]


def mlflow_delivery(
    monkeypatch: pytest.MonkeyPatch,
    data: dict[str, Any],
    *,
    secret: str = SECRET,
    event: str = "model_version.created",
) -> tuple[dict[str, str], bytes]:
    """Headers and body exactly as MLflow's own delivery code builds and signs them."""
    from mlflow.entities.webhook import Webhook, WebhookEvent
    from mlflow.webhooks import delivery

    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "true")
    monkeypatch.setenv("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "http,https")
    sent: dict[str, Any] = {}

    class CapturingSession:
        def post(self, url: str, *, data: bytes, headers: dict[str, str], timeout: int) -> None:
            sent.update(headers=headers, body=data)

    hook = Webhook("wh-1", "riskops", "http://127.0.0.1:9/hook", [WebhookEvent.from_str(event)],
                   0, 0, secret=secret)  # fmt: skip
    delivery._send_webhook_request(hook, data, WebhookEvent.from_str(event), CapturingSession())
    return sent["headers"], sent["body"]


def version_data(name: str = "credit-scoring", version: str = "3", **tags: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "source": "mlflow-artifacts:/1/abc/artifacts/model",
        "run_id": "abc",
        "tags": dict(tags),
        "description": None,
    }


# --- signatures ----------------------------------------------------------------------------


def test_mlflow_signed_delivery_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    headers, body = mlflow_delivery(monkeypatch, version_data())
    assert set(headers) >= {SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_ID_HEADER}
    assert headers[SIGNATURE_HEADER].startswith("v1,")
    verify_mlflow_signature(secret=SECRET, headers=headers, body=body)
    lowered = {k.lower(): v for k, v in headers.items()}
    verify_mlflow_signature(secret=SECRET, headers=lowered, body=body)


def test_sign_like_mlflow_matches_our_scheme() -> None:
    body = b'{"entity": "model_version", "action": "created", "data": {}}'
    headers = sign_like_mlflow(secret=SECRET, body=body, delivery_id="d-1", timestamp=1_700_000_000)
    assert headers[SIGNATURE_HEADER] == expected_signature(
        secret=SECRET, delivery_id="d-1", timestamp="1700000000", body=body
    )
    verify_mlflow_signature(secret=SECRET, headers=headers, body=body, now=1_700_000_010)


def test_wrong_secret_and_tampered_body_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    headers, body = mlflow_delivery(monkeypatch, version_data())
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_mlflow_signature(secret="other", headers=headers, body=body)
    tampered = body.replace(b"credit-scoring", b"fraud-detection")
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_mlflow_signature(secret=SECRET, headers=headers, body=tampered)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_ID_HEADER])
def test_missing_header_fails(missing: str) -> None:
    headers = sign_like_mlflow(secret=SECRET, body=b"{}")
    del headers[missing]
    with pytest.raises(InvalidSignature, match=f"missing header.*{missing}"):
        verify_mlflow_signature(secret=SECRET, headers=headers, body=b"{}")


def test_old_future_and_garbled_timestamps_fail() -> None:
    now = time.time()
    old = sign_like_mlflow(secret=SECRET, body=b"{}", timestamp=now - 301)
    with pytest.raises(InvalidSignature, match="replay"):
        verify_mlflow_signature(secret=SECRET, headers=old, body=b"{}", now=now)
    future = sign_like_mlflow(secret=SECRET, body=b"{}", timestamp=now + 301)
    with pytest.raises(InvalidSignature, match="replay"):
        verify_mlflow_signature(secret=SECRET, headers=future, body=b"{}", now=now)
    garbled = {**old, TIMESTAMP_HEADER: "yesterday"}
    with pytest.raises(InvalidSignature, match="unix seconds"):
        verify_mlflow_signature(secret=SECRET, headers=garbled, body=b"{}", now=now)


def test_rotated_secret_list_accepts_any_matching_signature() -> None:
    headers = sign_like_mlflow(secret=SECRET, body=b"{}")
    headers[SIGNATURE_HEADER] = f"v1,bm9wZQ== {headers[SIGNATURE_HEADER]}"
    verify_mlflow_signature(secret=SECRET, headers=headers, body=b"{}")


# --- the bridge app ------------------------------------------------------------------------


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def app_client(collector: Collector) -> AppClient:
    return AppClient(create_app(secret=SECRET, emit=collector))


def post(client: AppClient, headers: dict[str, str], body: bytes) -> httpx.Response:
    return client.request("POST", WEBHOOK_PATH, content=body, headers=headers)


def test_health(app_client: AppClient) -> None:
    assert app_client.get("/health").json() == {"status": "ok"}


def test_forged_delivery_is_refused(
    app_client: AppClient, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, body = mlflow_delivery(monkeypatch, version_data(), secret="attacker")
    response = post(app_client, headers, body)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid signature"
    unsigned = {k: v for k, v in headers.items() if k != SIGNATURE_HEADER}
    assert post(app_client, unsigned, body).status_code == 401
    assert collector.events == []


def test_valid_delivery_emits_registered(
    app_client: AppClient, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = "ab" * 32
    data = version_data(**{"riskops.dataset_sha256": sha, "riskops.featureset_version": "v7"})
    headers, body = mlflow_delivery(monkeypatch, data)
    response = post(app_client, headers, body)
    assert response.status_code == 202, response.text
    assert response.json()["resource_id"] == "riskops.model.credit-scoring.3"
    assert response.json()["event_id"] == "evt-1"
    [event] = collector.events
    assert event.name == MODEL_REGISTERED
    assert event.resource_id == "riskops.model.credit-scoring.3"
    assert event.payload == {
        "model": "credit-scoring",
        "version": "3",
        "run_id": "abc",
        "source_uri": "mlflow-artifacts:/1/abc/artifacts/model",
        "source": "mlflow-webhook",
        "delivery_id": headers[DELIVERY_ID_HEADER],
    }
    assert event.related == (
        (f"riskops.dataset.credit-scoring.{sha[:16]}", "dataset"),
        ("riskops.featureset.credit-scoring.v7", "featureset"),
    )


def test_pipeline_version_and_foreign_names_are_skipped(
    app_client: AppClient, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, body = mlflow_delivery(monkeypatch, version_data(**{"riskops.source": "pipeline"}))
    response = post(app_client, headers, body)
    assert response.status_code == 200
    assert "riskops.source=pipeline" in response.json()["skipped"]
    headers, body = mlflow_delivery(monkeypatch, version_data(name="Some_Notebook_Model"))
    response = post(app_client, headers, body)
    assert response.status_code == 200
    assert "not a riskops model name" in response.json()["skipped"]
    assert collector.events == []


def test_redelivery_is_emitted_once(
    app_client: AppClient, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, body = mlflow_delivery(monkeypatch, version_data())
    assert post(app_client, headers, body).status_code == 202
    again = post(app_client, headers, body)
    assert again.status_code == 200
    assert again.json() == {"duplicate": headers[DELIVERY_ID_HEADER]}
    assert len(collector.events) == 1


def test_emit_failure_answers_503_and_the_retry_emits(
    app_client: AppClient, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, body = mlflow_delivery(monkeypatch, version_data())
    collector.fail = True
    assert post(app_client, headers, body).status_code == 503  # MLflow retries 5xx
    collector.fail = False
    assert post(app_client, headers, body).status_code == 202
    assert len(collector.events) == 1


def signed_raw(body: bytes) -> dict[str, str]:
    """Headers for any bytes (MLflow's signer only takes text)."""
    delivery_id, ts = str(uuid.uuid4()), str(int(time.time()))
    signature = expected_signature(secret=SECRET, delivery_id=delivery_id, timestamp=ts, body=body)
    return {DELIVERY_ID_HEADER: delivery_id, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature}


def test_malformed_and_unknown_deliveries_are_400(
    app_client: AppClient, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    for body in (b"{not json", b"[1, 2]", b'{"entity": "model_version"}', b"\xff\xfe"):
        assert post(app_client, signed_raw(body), body).status_code == 400, body
    unknown = json.dumps({"entity": "spaceship", "action": "launched", "data": {}}).encode()
    response = post(app_client, sign_like_mlflow(secret=SECRET, body=unknown), unknown)
    assert response.status_code == 400
    assert "unknown" in response.json()["error"]
    headers, body = mlflow_delivery(monkeypatch, version_data(version=""))
    assert post(app_client, headers, body).status_code == 400
    assert collector.events == []


def test_other_events_and_mlflow_test_payload_are_acknowledged(
    app_client: AppClient, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.webhooks.types import ModelVersionCreatedPayload

    alias = {"name": "credit-scoring", "alias": "champion", "version": "3"}
    headers, body = mlflow_delivery(monkeypatch, alias, event="model_version_alias.created")
    response = post(app_client, headers, body)
    assert response.status_code == 200
    assert "not bridged" in response.json()["skipped"]
    example = dict(ModelVersionCreatedPayload.example())
    headers, body = mlflow_delivery(monkeypatch, example)
    response = post(app_client, headers, body)
    assert response.status_code == 200
    assert response.json()["test"] is True
    assert collector.events == []


def test_tags_are_fetched_when_the_payload_has_none(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []

    class FakeVersion:
        tags = {"riskops.source": "pipeline"}

    class FakeClient:
        def get_model_version(self, name: str, version: str) -> FakeVersion:
            calls.append((name, version))
            return FakeVersion()

    app = create_app(secret=SECRET, emit=collector, client_factory=FakeClient)  # type: ignore[arg-type]
    data = version_data()
    del data["tags"]
    headers, body = mlflow_delivery(monkeypatch, data)
    response = post(AppClient(app), headers, body)
    assert response.status_code == 200
    assert "skipped" in response.json()
    assert calls == [("credit-scoring", "3")]
    assert collector.events == []


def test_settings_require_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKOPS_WEBHOOK_SECRET", raising=False)
    settings = WebhookSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 5002)
    with pytest.raises(ValueError, match="RISKOPS_WEBHOOK_SECRET"):
        settings.required_secret()
    monkeypatch.setenv("RISKOPS_WEBHOOK_SECRET", "abc")
    assert WebhookSettings().required_secret() == "abc"


# --- end to end: a real MLflow server delivering to the bridge over HTTP --------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",  # our receiver is on loopback
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",  # default is https only
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job workers: faster start
    }
    cmd = [sys.executable, "-m", "mlflow", "server",
           "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
           "--artifacts-destination", str(tmp / "art"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", 90, proc)  # ~10 s on an idle machine
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def bridge() -> Iterator[tuple[str, Collector, FastAPI]]:
    collector = Collector()
    port = free_port()
    app = create_app(secret=SECRET, emit=collector)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(f"http://127.0.0.1:{port}/health", 15)
        yield f"http://127.0.0.1:{port}{WEBHOOK_PATH}", collector, app
    finally:
        server.should_exit = True
        thread.join(10)


def wait_events(collector: Collector, model: str, timeout: float = 20) -> list[RiskopsEvent]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not collector.for_model(model):
        time.sleep(0.1)
    time.sleep(0.5)  # let a (wrong) second delivery arrive, if there were one
    return collector.for_model(model)


def test_real_mlflow_delivers_to_the_bridge(
    mlflow_url: str, bridge: tuple[str, Collector, FastAPI], tmp_path: Path
) -> None:
    url, collector, app = bridge
    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    webhook_id = ensure_webhook(client, url=url, secret=SECRET)
    assert ensure_webhook(client, url=url, secret=SECRET) == webhook_id  # idempotent
    hook = find_webhook(client, "riskops-bridge")
    assert hook is not None
    assert [str(e) for e in hook.events] == ["model_version.created"]
    test_result = client.test_webhook(webhook_id)  # MLflow's connection test
    assert test_result.success, test_result

    # A notebook user's path: a run with an artifact, then a version created by hand.
    experiment_id = client.create_experiment(f"notebook-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    (tmp_path / "model.txt").write_text("tiny model")
    client.log_artifact(run.info.run_id, str(tmp_path / "model.txt"), "model")
    client.set_terminated(run.info.run_id)
    source = f"{run.info.artifact_uri}/model"

    model = f"fraud-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(model)
    version = client.create_model_version(model, source, run_id=run.info.run_id)
    [event] = wait_events(collector, model)
    assert event.name == MODEL_REGISTERED
    assert event.resource_id == f"riskops.model.{model}.{version.version}"
    assert event.payload["run_id"] == run.info.run_id
    assert event.payload["source_uri"] == source
    assert event.payload["source"] == "mlflow-webhook"

    piped = f"credit-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(piped)
    client.create_model_version(
        piped, source, run_id=run.info.run_id, tags={"riskops.source": "pipeline"}
    )
    client.create_model_version(model, source, run_id=run.info.run_id)
    deadline = time.monotonic() + 20  # three real deliveries handled (the test one is not kept)
    while time.monotonic() < deadline and len(app.state.deliveries) < 3:
        time.sleep(0.1)
    time.sleep(0.5)
    assert len(app.state.deliveries) == 3
    assert [e.payload["version"] for e in collector.for_model(model)] == ["1", "2"]
    assert collector.for_model(piped) == []

    body = json.dumps({"entity": "model_version", "action": "created", "data": {}}).encode()
    forged = sign_like_mlflow(secret="not-the-secret", body=body)
    response = httpx.post(url, content=body, headers=forged, timeout=5)
    assert response.status_code == 401
    assert len(collector.events) == 2
