"""The transactional outbox: events that drive the loop are written with the record they announce.

A stage adds its event to ``outbox`` in the same transaction as its record, so an approval
can never commit without its ``model.approved`` (or the other way round). Delivery happens
after commit, by the stage itself and again by the watcher's loop for anything still pending,
with the row's id as the Prefect event id: a redelivery carries the same id, and stages are
idempotent on it.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import JSON, Column
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.records import utcnow

log = logging.getLogger("riskops.outbox")
MAX_ERROR = 1000


class OutboxEvent(SQLModel, table=True):
    """One event waiting to be (or already) delivered to Prefect."""

    __tablename__ = "outbox"

    id: str = Field(primary_key=True, max_length=36)  # the Prefect event id
    name: str = Field(max_length=100, index=True)
    resource_id: str = Field(max_length=300)
    resource_name: str | None = Field(default=None, max_length=500)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    related: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)
    delivered_at: dt.datetime | None = Field(default=None, index=True)
    attempts: int = 0
    last_error: str | None = None

    def to_event(self) -> RiskopsEvent:
        return RiskopsEvent(
            name=self.name,
            resource_id=self.resource_id,
            payload=dict(self.payload),
            related=tuple((rid, role) for rid, role in self.related),
            resource_name=self.resource_name,
        )


def enqueue(*, session: Session, event: RiskopsEvent, event_id: str | None = None) -> str:
    """Add ``event`` to the outbox in the caller's transaction; returns its stable id."""
    row = OutboxEvent(
        id=event_id or str(uuid.uuid4()),
        name=event.name,
        resource_id=event.resource_id,
        resource_name=event.resource_name,
        payload=dict(event.payload),
        related=[[rid, role] for rid, role in event.related],
    )
    session.add(row)
    session.flush()
    return row.id


Sender = Callable[[list[tuple[RiskopsEvent, str | None]]], Sequence[str]]


def _default_sender(events: list[tuple[RiskopsEvent, str | None]]) -> Sequence[str]:
    from riskops.emit import send_confirmed

    return send_confirmed(events)


def pending(*, session: Session, limit: int = 100) -> list[OutboxEvent]:
    return list(
        session.exec(
            select(OutboxEvent)
            .where(col(OutboxEvent.delivered_at).is_(None))
            .order_by(col(OutboxEvent.created_at), col(OutboxEvent.id))
            .limit(limit)
        ).all()
    )


def deliver(
    engine: Engine, *, ids: Sequence[str] | None = None, send: Sender = _default_sender
) -> int:
    """Send pending events (all, or just ``ids``) and mark them delivered; returns the count.

    A failure is recorded on the rows (attempts, last error) and re-raised only when specific
    ``ids`` were asked for, so a stage learns that its event is late; the watcher's sweep
    (``ids=None``) logs and retries on its next pass.
    """
    with session_scope(engine) as session:
        rows = pending(session=session)
        if ids is not None:
            wanted = set(ids)
            rows = [row for row in rows if row.id in wanted]
        batch = [(row.id, row.to_event()) for row in rows]
    if not batch:
        return 0
    try:
        send([(event, event_id) for event_id, event in batch])
    except Exception as error:
        with session_scope(engine) as session:
            for event_id, _ in batch:
                row = session.get(OutboxEvent, event_id)
                if row is not None:
                    row.attempts += 1
                    row.last_error = f"{type(error).__name__}: {error}"[:MAX_ERROR]
                    session.add(row)
        log.warning("outbox: %d event(s) not delivered yet: %s", len(batch), error)
        if ids is not None:
            raise
        return 0
    now = utcnow()
    with session_scope(engine) as session:
        for event_id, _ in batch:
            row = session.get(OutboxEvent, event_id)
            if row is not None and row.delivered_at is None:
                row.delivered_at, row.attempts = now, row.attempts + 1
                session.add(row)
    return len(batch)
