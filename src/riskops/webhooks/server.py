"""Run the MLflow webhook bridge: ``python -m riskops.webhooks.server``.

Reads ``RISKOPS_WEBHOOK_*`` (see :mod:`riskops.webhooks.settings`) and ``MLFLOW_TRACKING_URI``,
and emits to Prefect (``PREFECT_API_URL`` must be set).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from fastapi import FastAPI
from mlflow import MlflowClient

from riskops.emit import Emitter, emit_to_prefect
from riskops.webhooks.bridge import create_app
from riskops.webhooks.register import ensure_webhook
from riskops.webhooks.settings import WebhookSettings

logger = logging.getLogger("riskops.webhooks")


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the local stack's MLflow server."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    from riskops.settings import MlflowStackSettings

    return MlflowStackSettings().resolved_tracking_uri()


def client_factory_for(uri: str) -> Callable[[], MlflowClient]:
    """A factory of explicit MlflowClients for ``uri`` (no fluent globals)."""

    def factory() -> MlflowClient:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    return factory


def build_app(settings: WebhookSettings, emit: Emitter = emit_to_prefect) -> FastAPI:
    """The bridge app configured from ``settings``; registers the webhook if asked to."""
    secret = settings.required_secret()
    factory = client_factory_for(tracking_uri())
    if settings.register_url:
        webhook_id = ensure_webhook(factory(), url=settings.register_url, secret=secret)
        logger.info("MLflow webhook %s delivers to %s", webhook_id, settings.register_url)
    return create_app(
        secret=secret,
        emit=emit,
        client_factory=factory,
        tolerance_seconds=settings.tolerance_seconds,
    )


def main() -> None:
    """Serve the bridge with uvicorn until interrupted."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = WebhookSettings()
    try:
        app = build_app(settings)
    except ValueError as exc:
        sys.exit(f"riskops webhook bridge: {exc}")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
