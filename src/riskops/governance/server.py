"""Run the governance API and sign-off page: ``python -m riskops.governance.server``.

Reads the RISKOPS_* settings; reaches Prefect through PREFECT_API_URL (`riskops up` sets it).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from riskops.governance.decide import Prefect
from riskops.governance.remote import flow_run_state, resume_signoff
from riskops.governance.service import create_app
from riskops.platform import Platform
from riskops.secrets import governance_signing_key, local_secret
from riskops.settings import Settings, load_settings


def build_app(settings: Settings) -> FastAPI:
    """The governance app on the settings' platform, resuming runs on the real Prefect API."""
    from riskops import outbox

    platform = Platform.from_settings(settings)
    return create_app(
        platform=platform,
        prefect=Prefect(run_state=flow_run_state, resume=resume_signoff),
        signing_key=governance_signing_key(settings),
        session_secret=local_secret(settings, "governance-session.key"),
        wait_seconds=settings.governance.approve_wait_seconds,
        secure_cookies=settings.governance.secure_cookies,
        send_events=lambda ids: outbox.deliver(platform.engine, ids=list(ids)),
        metrics_require_key=settings.governance.metrics_require_key,
    )


def main() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    uvicorn.run(
        build_app(settings),
        host=settings.governance.host,
        port=settings.governance.port,
        log_level="info",
        access_log=False,  # request lines would carry nothing useful; keys are never logged
    )


if __name__ == "__main__":
    main()
