"""FastAPI receiver that turns MLflow ``model_version.created`` deliveries into riskops events.

Versions registered by riskops' own training flow (tag ``riskops.source=pipeline``) are skipped:
that flow emits ``riskops.model.registered`` itself. MLflow retries a delivery on 429/5xx with
the same delivery id, so failures to read the registry or to emit answer 503, and a delivery id
is only remembered once it has been handled.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from riskops.events import (
    MODEL_REGISTERED,
    RiskopsEvent,
    dataset_resource,
    featureset_resource,
    model_resource,
)
from riskops.webhooks.signature import DELIVERY_ID_HEADER, InvalidSignature, verify_mlflow_signature

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/mlflow/webhook"
MODEL_VERSION_CREATED = "model_version.created"
WEBHOOK_SOURCE = "mlflow-webhook"
SOURCE_TAG = "riskops.source"
PIPELINE_SOURCE = "pipeline"
DATASET_TAG = "riskops.dataset_sha256"
FEATURESET_TAG = "riskops.featureset_version"
MODEL_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")  # riskops.specs.Name


class DeliveryLog:
    """A bounded, thread-safe LRU of delivery ids already handled."""

    def __init__(self, maxsize: int = 2048) -> None:
        self.maxsize = maxsize
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def reserve(self, delivery_id: str) -> bool:
        """Remember ``delivery_id``; False if it was already there (a redelivery)."""
        with self._lock:
            if delivery_id in self._ids:
                self._ids.move_to_end(delivery_id)
                return False
            self._ids[delivery_id] = None
            while len(self._ids) > self.maxsize:
                self._ids.popitem(last=False)
            return True

    def release(self, delivery_id: str) -> None:
        """Forget ``delivery_id`` after a failure, so that MLflow's retry is handled."""
        with self._lock:
            self._ids.pop(delivery_id, None)

    def __contains__(self, delivery_id: object) -> bool:
        with self._lock:
            return delivery_id in self._ids

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)


def is_mlflow_event(event: str) -> bool:
    """True if ``event`` (``entity.action``) is an event MLflow can send."""
    from mlflow.entities.webhook import WebhookEvent

    try:
        WebhookEvent.from_str(event)  # type: ignore[arg-type]
    except Exception:
        return False
    return True


def is_mlflow_test_delivery(event: str, data: Any) -> bool:
    """True if ``data`` is the example payload that ``MlflowClient.test_webhook`` sends."""
    try:
        from mlflow.entities.webhook import WebhookEvent
        from mlflow.webhooks.types import get_example_payload_for_event

        example = get_example_payload_for_event(WebhookEvent.from_str(event))  # type: ignore[arg-type]
    except Exception:
        return False
    return data == dict(example)


def lineage(model: str, tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """``related`` entries for the riskops lineage tags a model version carries."""
    related: list[tuple[str, str]] = []
    builders = (
        (DATASET_TAG, "dataset", lambda v: dataset_resource(model, v.strip().lower())),
        (FEATURESET_TAG, "featureset", lambda v: featureset_resource(model, v.strip())),
    )
    for tag, role, build in builders:
        value = tags.get(tag)
        if not value:
            continue
        try:
            related.append((build(value), role))
        except ValueError as exc:
            logger.warning("ignoring tag %s=%r of %s: %s", tag, value, model, exc)
    return tuple(related)


def registered_event(
    data: Mapping[str, Any], tags: Mapping[str, str], delivery_id: str
) -> RiskopsEvent:
    """The ``riskops.model.registered`` event for a ``model_version.created`` payload."""
    name, version = str(data["name"]), str(data["version"])
    return RiskopsEvent(
        name=MODEL_REGISTERED,
        resource_id=model_resource(name, version),
        payload={
            "model": name,
            "version": version,
            "run_id": data.get("run_id") or None,
            "source_uri": data.get("source"),
            "source": WEBHOOK_SOURCE,
            "delivery_id": delivery_id,
        },
        related=lineage(name, tags),
    )


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, **extra})


def create_app(
    *,
    secret: str,
    emit: Callable[[RiskopsEvent], Any],
    client_factory: Callable[[], MlflowClient] | None = None,
    tolerance_seconds: int = 300,
    max_deliveries: int = 2048,
) -> FastAPI:
    """The bridge app: ``POST /mlflow/webhook`` and ``GET /health``."""
    if not secret:
        raise ValueError("the webhook secret must not be empty")
    app = FastAPI(title="riskops MLflow webhook bridge")
    deliveries = DeliveryLog(max_deliveries)
    app.state.deliveries = deliveries

    def read_tags(data: Mapping[str, Any]) -> dict[str, str]:
        tags = data.get("tags")
        if isinstance(tags, dict):
            return {str(k): str(v) for k, v in tags.items()}
        if client_factory is None:
            logger.warning("delivery for %s has no tags and no MLflow client is set", data)
            return {}
        version = client_factory().get_model_version(str(data["name"]), str(data["version"]))
        return dict(version.tags or {})

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(WEBHOOK_PATH)
    async def mlflow_webhook(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            verify_mlflow_signature(
                secret=secret,
                headers=request.headers,
                body=body,
                tolerance_seconds=tolerance_seconds,
            )
        except InvalidSignature as exc:
            logger.warning("refused an MLflow delivery: %s", exc.reason)
            return _error(401, "invalid signature", reason=exc.reason)
        delivery_id = request.headers[DELIVERY_ID_HEADER]
        try:
            message = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
            return _error(400, "body is not an MLflow webhook payload (entity, action, data)")
        event = f"{message.get('entity')}.{message.get('action')}"
        data: dict[str, Any] = message["data"]
        if not is_mlflow_event(event):
            return _error(400, f"unknown MLflow webhook event {event!r}")
        if is_mlflow_test_delivery(event, data):
            return JSONResponse({"ok": True, "test": True, "event": event})
        if event != MODEL_VERSION_CREATED:
            return JSONResponse({"skipped": f"event {event} is not bridged"})
        if not data.get("name") or not data.get("version"):
            return _error(400, "model_version.created payload lacks name or version")
        name, version = str(data["name"]), str(data["version"])
        if not MODEL_NAME.match(name):
            reason = f"{name!r} is not a riskops model name ([a-z0-9-]+)"
            return JSONResponse({"skipped": reason, "model": name, "version": version})
        if not deliveries.reserve(delivery_id):
            return JSONResponse({"duplicate": delivery_id})
        try:
            tags = await run_in_threadpool(read_tags, data)
        except Exception as exc:
            deliveries.release(delivery_id)
            logger.exception("could not read tags of %s version %s", name, version)
            return _error(503, f"could not read model version tags from MLflow: {exc}")
        if tags.get(SOURCE_TAG) == PIPELINE_SOURCE:
            reason = f"{SOURCE_TAG}={PIPELINE_SOURCE}: the training flow emits this event itself"
            return JSONResponse({"skipped": reason, "model": name, "version": version})
        try:
            riskops_event = registered_event(data, tags, delivery_id)
        except ValueError as exc:
            return JSONResponse({"skipped": str(exc), "model": name, "version": version})
        try:
            sent = await run_in_threadpool(emit, riskops_event)
        except Exception as exc:
            deliveries.release(delivery_id)
            logger.exception("could not emit %s", riskops_event.resource_id)
            return _error(503, f"could not emit {MODEL_REGISTERED}: {exc}")
        content: dict[str, Any] = {
            "emitted": MODEL_REGISTERED,
            "resource_id": riskops_event.resource_id,
            "delivery_id": delivery_id,
        }
        if isinstance(sent, str):
            content["event_id"] = sent
        return JSONResponse(status_code=202, content=content)

    return app
