"""The governance API and sign-off page (one ASGI app): decisions by authenticated people.

API: ``Authorization: Bearer KEY``; 401 without a valid key, 403 without the role. The page
logs a risk officer in with the same key and keeps a signed, HttpOnly session cookie (no key
in it); forms carry a CSRF token bound to the session.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency alias
# `Caller`, which is local to create_app, from the real annotation objects.

import base64
import hashlib
import hmac
import logging
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from riskops import audit
from riskops.db import session_scope
from riskops.governance import pages, views
from riskops.governance.alerts import SendEvents, add_alert_routes
from riskops.governance.decide import DecisionError, Prefect, decide
from riskops.identity.principals import AuthError, Principal, authenticate, get_principal
from riskops.identity.roles import Forbidden, require
from riskops.observability.route import add_metrics_route
from riskops.platform import Platform

log = logging.getLogger("riskops.governance")
COOKIE = "riskops_session"
SESSION_SECONDS = 8 * 3600


class DecisionRequest(BaseModel):
    decision: str = Field(pattern="^(approve|decline)$")
    justification: str = Field(min_length=1, max_length=10_000)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Sessions:
    """Signed session tokens: ``<b64 name>.<expiry>.<hmac>``; nothing kept server-side."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def _mac(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, principal: Principal) -> str:
        """A session bound to the principal's current key: a rotated or revoked key ends it."""
        encoded = _b64(principal.name.encode())
        body = f"{encoded}.{principal.key_hash[:16]}.{int(time.time()) + SESSION_SECONDS}"
        return f"{body}.{self._mac(body)}"

    def name_of(self, token: str | None) -> tuple[str, str] | None:
        """(name, key-hash prefix) of a valid, unexpired session; None otherwise."""
        try:
            encoded, key_prefix, expiry, mac = (token or "").split(".")
        except ValueError:
            return None
        body = f"{encoded}.{key_prefix}.{expiry}"
        if not hmac.compare_digest(mac, self._mac(body)) or int(expiry) < time.time():
            return None
        name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        return name, key_prefix

    def csrf(self, token: str) -> str:
        return self._mac("csrf|" + token)


def create_app(
    *, platform: Platform, prefect: Prefect, signing_key: str, session_secret: str,
    wait_seconds: float = 120.0, secure_cookies: bool = False, metrics_require_key: bool = False,
    send_events: SendEvents | None = None,
) -> FastAPI:  # fmt: skip
    """The governance app over ``platform``; decisions resume runs through ``prefect``;
    breach events from Alertmanager are sent with ``send_events`` (None: the watcher's sweep)."""
    app = FastAPI(title="riskops governance API", version="1")
    sessions = Sessions(session_secret)

    def bearer(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else None
        with session_scope(platform.engine) as session:
            return authenticate(session=session, key=key)

    Caller = Annotated[Principal, Depends(bearer)]
    add_alert_routes(app, platform=platform, bearer=bearer, send_events=send_events)

    @app.exception_handler(AuthError)
    def _unauthorised(_request: Request, error: AuthError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    @app.exception_handler(Forbidden)
    def _forbidden(_request: Request, error: Forbidden) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=403)

    @app.exception_handler(DecisionError)
    def _refused(_request: Request, error: DecisionError) -> JSONResponse:
        record = error.record.model_dump(mode="json") if error.record else None
        return JSONResponse({"error": error.message, "record": record}, status_code=error.status)

    def _decide(principal: Principal, model: str, version: str, decision: str,
                justification: str, channel: str) -> Any:  # fmt: skip
        return decide(
            platform=platform,
            prefect=prefect,
            signing_key=signing_key,
            principal=principal,
            model=model,
            version=version,
            decision=decision,
            justification=justification,
            channel=channel,
            wait_seconds=wait_seconds,
        )

    add_metrics_route(app, platform, require_key=metrics_require_key)  # the platform exporter

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/whoami")
    def whoami(principal: Caller) -> dict[str, Any]:
        return {"name": principal.name, "role": principal.role, "demo": principal.demo}

    @app.get("/api/v1/signoffs")
    def signoffs(principal: Caller) -> list[dict[str, Any]]:
        return views.pending(platform)

    @app.get("/api/v1/models/{model}/versions/{version}")
    def version_state(model: str, version: str, principal: Caller) -> Any:
        return views.version_view(platform, model, version)

    @app.post("/api/v1/models/{model}/versions/{version}/decision")
    def decision_api(model: str, version: str, body: DecisionRequest,
                     principal: Caller) -> Any:  # fmt: skip
        record = _decide(principal, model, version, body.decision, body.justification,
                         "governance-api")  # fmt: skip
        return record.model_dump(mode="json")

    # --- the sign-off page ------------------------------------------------------------------

    def page_user(request: Request) -> Principal | None:
        found = sessions.name_of(request.cookies.get(COOKIE))
        if found is None:
            return None
        name, key_prefix = found
        with session_scope(platform.engine) as session:
            principal = get_principal(session=session, name=name)
        if principal is None or not principal.active or principal.role != "risk-officer":
            return None
        if not hmac.compare_digest(principal.key_hash[:16], key_prefix):
            return None  # the key was rotated since the login
        return principal

    @app.get("/signoff", response_class=HTMLResponse)
    def signoff_home(request: Request) -> Response:
        principal = page_user(request)
        if principal is None:
            return HTMLResponse(pages.login_page())
        return HTMLResponse(pages.pending_page(principal.name, views.pending(platform)))

    @app.post("/signoff/login", response_class=HTMLResponse)
    def signoff_login(key: Annotated[str, Form()] = "") -> Response:
        try:
            with session_scope(platform.engine) as session:
                principal = authenticate(session=session, key=key)
                try:
                    require(principal.role, "signoff.decide", who=principal.name)
                except Forbidden as error:
                    audit.append(
                        session=session, actor=principal.name, action="signoff-page.refused",
                        subject="signoff-page", payload={"role": principal.role},
                    )  # fmt: skip
                    return HTMLResponse(pages.login_page(str(error)), status_code=403)
        except AuthError as error:
            return HTMLResponse(pages.login_page(str(error)), status_code=401)
        response = RedirectResponse("/signoff", status_code=303)
        response.set_cookie(COOKIE, sessions.issue(principal), httponly=True,
                            samesite="strict", max_age=SESSION_SECONDS,
                            secure=secure_cookies)  # fmt: skip
        return response

    @app.post("/signoff/logout")
    def signoff_logout() -> Response:
        response = RedirectResponse("/signoff", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/signoff/{model}/{version}", response_class=HTMLResponse)
    def signoff_version(model: str, version: str, request: Request) -> Response:
        principal = page_user(request)
        if principal is None:
            return RedirectResponse("/signoff", status_code=303)
        token = request.cookies.get(COOKIE, "")
        view = views.version_view(platform, model, version)
        return HTMLResponse(pages.version_page(principal.name, view, sessions.csrf(token)))

    @app.get("/signoff/{model}/{version}/card", response_class=HTMLResponse)
    def signoff_card(model: str, version: str, request: Request) -> Response:
        if page_user(request) is None:
            return RedirectResponse("/signoff", status_code=303)
        from riskops.stages.cards import make_card

        with tempfile.TemporaryDirectory(prefix="riskops-card-") as tmp:
            card = make_card(engine=platform.engine, client=platform.mlflow, model=model,
                             version=version, workdir=Path(tmp))  # fmt: skip
            return HTMLResponse(card.to_html())

    @app.post("/signoff/{model}/{version}/decision", response_class=HTMLResponse)
    def signoff_decide(
        model: str, version: str, request: Request, csrf: Annotated[str, Form()] = "",
        decision: Annotated[str, Form()] = "", justification: Annotated[str, Form()] = "",
    ) -> Response:  # fmt: skip
        principal = page_user(request)
        token = request.cookies.get(COOKIE, "")
        if principal is None:
            return RedirectResponse("/signoff", status_code=303)
        if not hmac.compare_digest(csrf, sessions.csrf(token)):
            return HTMLResponse(pages.login_page("the form expired; log in again"), 403)
        message, status, code = "", "ok", 200
        if decision not in {"approve", "decline"}:
            message, status, code = "choose approve or decline", "error", 422
        else:
            try:
                record = _decide(principal, model, version, decision, justification,
                                 "signoff-page")  # fmt: skip
                message = f"{record.decision} recorded for {model} v{version} as {record.approver}"
            except DecisionError as error:
                message, status, code = error.message, "error", error.status
        view = views.version_view(platform, model, version)
        html = pages.version_page(principal.name, view, sessions.csrf(token), message, status)
        return HTMLResponse(html, status_code=code)

    return app
