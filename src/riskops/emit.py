"""Send :class:`~riskops.events.RiskopsEvent` objects to Prefect.

The library decides *what* happened; this is the one place that knows *how* it is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from riskops.events import RiskopsEvent

Emitter = Callable[[RiskopsEvent], Any]


def prefect_resource(event: RiskopsEvent) -> dict[str, str]:
    resource = {"prefect.resource.id": event.resource_id}
    if event.resource_name:
        resource["prefect.resource.name"] = event.resource_name
    return resource


def prefect_related(event: RiskopsEvent) -> list[dict[str, str]]:
    return [
        {"prefect.resource.id": rid, "prefect.resource.role": role} for rid, role in event.related
    ]


def emit_to_prefect(event: RiskopsEvent) -> str:
    """Emit through Prefect's events client; returns the Prefect event id.

    Raises RuntimeError when Prefect is not configured to send events (no PREFECT_API_URL),
    because a silently dropped event would stall the chain.
    """
    from prefect.events import emit_event

    sent = emit_event(
        event=event.name,
        resource=prefect_resource(event),
        related=prefect_related(event),
        payload=event.payload,
    )
    if sent is None:
        raise RuntimeError(
            f"event {event.name} for {event.resource_id} was not sent: Prefect events are "
            "disabled here. Set PREFECT_API_URL (riskops up prints it) and retry."
        )
    flush_prefect_events()  # the next stage waits for it: do not leave it in a queue
    return str(sent.id)


def flush_prefect_events() -> None:
    """Block until queued Prefect events are delivered (for short-lived processes)."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()


def to_prefect_event(event: RiskopsEvent, event_id: str | None = None) -> Any:
    """The Prefect ``Event`` for ``event``; a fixed ``event_id`` makes re-sends recognisable."""
    from uuid import UUID

    from prefect.events import Event

    fields: dict[str, Any] = {
        "event": event.name,
        "resource": prefect_resource(event),
        "related": prefect_related(event),
        "payload": event.payload,
    }
    if event_id:
        fields["id"] = UUID(event_id)
    return Event(**fields)


def send_confirmed(events: list[tuple[RiskopsEvent, str | None]]) -> list[str]:
    """Send events and return only once the server has confirmed receipt of all of them.

    Raises whatever the websocket raises when the server is unreachable, so the caller can
    keep the events pending and retry (the landing ledger does).
    """
    import asyncio

    from prefect.events.clients import get_events_client

    prepared = [to_prefect_event(event, event_id) for event, event_id in events]

    async def _send() -> None:
        async with get_events_client(reconnection_attempts=2, checkpoint_every=1) as client:
            for item in prepared:
                await client.emit(item)

    asyncio.run(_send())
    return [str(item.id) for item in prepared]
