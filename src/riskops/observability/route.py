"""``GET /metrics`` of the platform exporter on a FastAPI app (the governance API).

Open on loopback, as the scoring service's ``/metrics`` is, so that a Prometheus beside the
process scrapes it without a key; from anywhere else (or with ``require_key``) the caller needs
a principal's key (``Authorization: Bearer KEY``), any role: the gauges name models, versions and
features, never people or decisions.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from riskops.db import session_scope
from riskops.identity.principals import authenticate
from riskops.loopback import is_loopback
from riskops.observability.exporter import exposition, platform_registry
from riskops.platform import Platform


def add_metrics_route(app: FastAPI, platform: Platform, *, require_key: bool = False) -> None:
    """Serve the platform collector at ``/metrics``; an invalid key raises the app's AuthError."""
    registry = platform_registry(platform)

    # A sync route: FastAPI runs it in a worker thread, so DB and registry reads do not block.
    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if require_key or not is_loopback(request):
            header = request.headers.get("authorization", "")
            key = header[7:].strip() if header.lower().startswith("bearer ") else None
            with session_scope(platform.engine) as session:
                authenticate(session=session, key=key)
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)
