"""``POST /v1/alerts/alertmanager``: Alertmanager's webhook receiver on the governance API.

Alertmanager authenticates as a machine principal, the way every other machine caller does:
``Authorization: Bearer KEY`` of a principal whose role may ``sla.report`` (service or
operator; Alertmanager's ``http_config.authorization.credentials_file`` holds the key). 401
without a valid key, 403 without the role, 422 with what is wrong for a body that is not a
version-4 webhook or an alert of ours that lacks its labels. Each firing SLO burn alert becomes
one ``riskops.sla.breached`` in the outbox (the same alert repeated: once), delivered to Prefect
at once when it answers and by the watcher's sweep otherwise.
"""

# No `from __future__ import annotations`: FastAPI resolves the dependency `bearer`, local to
# add_alert_routes, from the real annotation objects.

import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI
from fastapi.responses import JSONResponse

from riskops.identity.principals import Principal
from riskops.identity.roles import require
from riskops.platform import Platform
from riskops.slo.alertmanager import MalformedWebhook, triage
from riskops.slo.breach import enqueue_breach

log = logging.getLogger("riskops.governance")
PATH = "/v1/alerts/alertmanager"
SendEvents = Callable[[Sequence[str]], Any]  # outbox ids -> delivered (raises when not)


def add_alert_routes(
    app: FastAPI, *, platform: Platform, bearer: Callable[..., Principal],
    send_events: SendEvents | None,
) -> None:  # fmt: skip
    """Mount the Alertmanager receiver on ``app``."""

    @app.post(PATH)
    def alertmanager(
        principal: Annotated[Principal, Depends(bearer)], body: Annotated[Any, Body()]
    ) -> JSONResponse:
        require(principal.role, "sla.report", who=principal.name)
        try:
            found = triage(body)
        except MalformedWebhook as error:
            log.warning("alertmanager webhook from %s refused: %s", principal.name, error)
            return JSONResponse({"error": str(error)}, status_code=422)
        emitted, repeated = [], []
        for payload in found.breaches:
            event_id = enqueue_breach(platform.engine, payload)
            (emitted if event_id else repeated).append(payload["breach_id"])
            log.error("SLO breach reported by %s: %s", principal.name, payload["summary"])
        delivered = not emitted
        if emitted and send_events is not None:
            try:
                send_events(emitted)
                delivered = True
            except Exception as error:  # committed: the watcher's sweep delivers them
                log.warning("sla.breached %s queued, not yet sent: %s", emitted, error)
        return JSONResponse(
            {"emitted": emitted, "repeated": repeated, "ignored": found.ignored,
             "delivered": delivered}
        )  # fmt: skip
