"""What makes the service pick up a new champion: promotion events, and a registry poll.

``riskops.model.promoted`` and ``riskops.model.rolled-back`` (and ``riskops.model.validated``,
which may name a new challenger) arrive over Prefect's event stream and reload that model at
once. The poll is the safety net for a missed event (the service was restarting, the websocket
dropped): every ``registry_poll_seconds`` each model is reloaded, which is a no-op when the
registry names the versions already served. Both run in the service's event loop and load in a
worker thread, so requests keep being answered by the old champion meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from riskops import events

if TYPE_CHECKING:
    from riskops.serving.app import ScoringService

log = logging.getLogger(__name__)
RELOAD_ON = (events.MODEL_PROMOTED, events.MODEL_ROLLED_BACK, events.MODEL_VALIDATED)


def model_of(resource_id: str) -> str | None:
    """``riskops.model.<name>.<version>`` -> name."""
    prefix = events.MODEL + "."
    if not resource_id.startswith(prefix):
        return None
    name, _, _version = resource_id[len(prefix) :].rpartition(".")
    return name or None


async def follow_promotions(service: ScoringService) -> None:
    """Reload a model whenever Prefect reports it was promoted, rolled back or validated."""
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter

    filter_ = EventFilter(event=EventNameFilter(name=list(RELOAD_ON)))
    while True:
        try:
            async with get_events_subscriber(filter=filter_) as subscriber:
                log.info("scoring: following %s on Prefect's event stream", ", ".join(RELOAD_ON))
                async for event in subscriber:
                    name = model_of(event.resource.id)
                    if name is None:
                        continue
                    log.info("scoring: %s for %s: reloading", event.event, name)
                    # an explicit instruction: a version refused before is tried again
                    await service.models.reload(name, force=True)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("scoring: the Prefect event stream failed (%s); the registry poll "
                        "keeps the service current; reconnecting in 5s", error)  # fmt: skip
            await asyncio.sleep(5.0)


async def poll_registry(service: ScoringService) -> None:
    """Add newly onboarded models and reload every model, every ``registry_poll_seconds``."""
    while True:
        await asyncio.sleep(service.settings.registry_poll_seconds)
        await service.models.discover_models()
        for name in list(service.models.states):
            await service.models.reload(name)
