"""Run the scoring service on the platform: ``python -m riskops.serving.server`` (or
``riskops serve``). Reads the RISKOPS_* settings; follows Prefect through PREFECT_API_URL."""

from __future__ import annotations

import logging
from typing import Any

from riskops import events
from riskops.db import session_scope
from riskops.features.online_store import EventStore, InProcessStore, RedisStore
from riskops.ledger import list_specs
from riskops.platform import Platform
from riskops.serving.app import ScoringService
from riskops.serving.decision_process import decision_log_for
from riskops.serving.keys import KeyCache
from riskops.serving.loader import load_version, resolve_version
from riskops.serving.metrics import ServiceMetrics
from riskops.serving.models import ServedModels
from riskops.serving.reload import follow_promotions, poll_registry
from riskops.serving.slo import SloTracker
from riskops.settings import ScoringSettings, Settings, load_settings

log = logging.getLogger(__name__)


def online_store(settings: ScoringSettings) -> EventStore:
    """The event store of the velocity features the settings choose."""
    if settings.online_store == "redis":
        return RedisStore(settings.redis_url)
    return InProcessStore()


def onboarded(platform: Platform) -> list[str]:
    """Names of the onboarded models."""
    with session_scope(platform.engine) as session:
        return sorted({record.name for record in list_specs(session=session)})


def _announcer(platform: Platform) -> Any:
    from riskops.outbox import deliver, enqueue

    def announce(model: str, role: str, why: str) -> None:
        event = events.RiskopsEvent(
            name=events.MODEL_LOAD_FAILED,
            resource_id=events.service_resource(model),
            payload={"model": model, "role": role, "reason": why[:2000],
                     "what_to_do": "the previous version keeps serving; see "
                                   "docs/runbooks/model-load-failed.md"},
        )  # fmt: skip
        with session_scope(platform.engine) as session:
            event_id = enqueue(session=session, event=event)
        try:
            deliver(platform.engine, ids=[event_id])
        except Exception as error:  # the watcher's sweep delivers it later
            log.warning("scoring: load-failed event for %s queued, not yet sent: %s", model, error)

    return announce


def _breach_announcer(platform: Platform) -> Any:
    from riskops.outbox import deliver
    from riskops.slo.breach import enqueue_breach

    def announce(payload: dict[str, Any]) -> None:
        from prefect.settings import PREFECT_API_URL

        event_id = enqueue_breach(platform.engine, payload)
        if not PREFECT_API_URL.value():  # Prefect's client would start a server of its own
            log.warning("scoring: sla.breached of %s queued; no PREFECT_API_URL, so the "
                        "watcher's sweep delivers it", payload["model"])  # fmt: skip
            return
        try:
            deliver(platform.engine, ids=[event_id] if event_id else [])
        except Exception as error:  # the watcher's sweep delivers it later
            log.warning("scoring: sla.breached of %s queued, not yet sent: %s",
                        payload["model"], error)  # fmt: skip

    return announce


def build_service(
    settings: Settings,
    platform: Platform,
    *,
    follow_events: bool = True,
    announce: Any = None,
    announce_breach: Any = None,
) -> ScoringService:
    """The service on ``platform``: every onboarded model, keys from the principals.

    ``announce`` (load refused) and ``announce_breach`` (SLO breached) default to the outbox."""
    scoring = settings.scoring
    store = online_store(scoring)
    metrics = ServiceMetrics()
    cache = settings.home_dir / "serving"

    def resolve(name: str, role: str) -> str | None:
        return resolve_version(platform, name, role)

    def loader(name: str, role: str, version: str) -> Any:
        return load_version(
            platform, name, role, store=store, cache_dir=cache,
            reason_count=scoring.reason_count, version=version,
        )  # fmt: skip

    models = ServedModels(
        onboarded(platform), resolve, loader, metrics, announce or _announcer(platform),
        discover=lambda: onboarded(platform),
    )  # fmt: skip
    decisions = decision_log_for(
        scoring, platform.lake, platform.engine,
        on_drop=lambda model, n: metrics.child(metrics.log_dropped, model).inc(n),
    )  # fmt: skip
    background: list[Any] = [poll_registry]
    if follow_events:
        background.append(follow_promotions)
    slo = None
    if settings.slo.tracker:
        slo = SloTracker(settings.slo, announce_breach or _breach_announcer(platform))
    if slo is not None:
        background.append(slo.watch)
    return ScoringService(
        settings=scoring,
        models=models,
        keys=KeyCache.from_engine(platform.engine, scoring.key_refresh_seconds),
        metrics=metrics,
        decisions=decisions,
        background=background,
        slo=slo,
    )


def main() -> None:
    """Serve on the settings' host and port until stopped."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    platform = Platform.from_settings(settings)
    service = build_service(settings, platform)
    uvicorn.run(
        service.app(),
        host=settings.scoring.host,
        port=settings.scoring.port,
        loop="uvloop",
        http="httptools",
        log_level="info",
        access_log=False,  # request lines never carry keys, but they carry nothing useful either
    )


if __name__ == "__main__":
    main()
