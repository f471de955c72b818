"""Turn objects in the landing zone into exactly one `riskops.data.landed` event per content."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from riskops import events, ledger
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.hashing import sha256_file
from riskops.lake.base import LANDING, Lake, ObjectInfo, split_landing_key
from riskops.records import LandedObject

log = logging.getLogger("riskops.watcher")

# Sends (event, fixed id) pairs and returns once the server confirmed them.
ConfirmedSender = Callable[[list[tuple[RiskopsEvent, str | None]]], list[str]]

_EVENT_NAMESPACE = uuid.UUID("7a1c0f3e-3c39-4a5e-9f8b-2b1f6d0c9a11")


def landed_event_id(model: str, sha256: str) -> str:
    """The same content always gets the same event id, so a re-send is recognisable."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{events.DATA_LANDED}:{model}:{sha256}"))


def landed_event(row: LandedObject) -> RiskopsEvent:
    return RiskopsEvent(
        name=events.DATA_LANDED,
        resource_id=events.dataset_resource(row.model, row.sha256),
        resource_name=row.filename,
        payload={
            "model": row.model,
            "sha256": row.sha256,
            "uri": row.uri,
            "filename": row.filename,
            "size_bytes": row.size_bytes,
        },
    )


@dataclass(frozen=True)
class Sighting:
    key: str
    model: str
    sha256: str
    first_time: bool
    action: str  # announced | duplicate-removed | pending | error


class LandingWatcher:
    """Hash what lands, record it in the ledger, announce it once; never raise on one bad file."""

    def __init__(self, *, lake: Lake, engine: Engine, send: ConfirmedSender) -> None:
        self.lake = lake
        self.engine = engine
        self.send = send

    def handle(self, key: str) -> Sighting:
        """Process one landing object; errors are logged and reported, not raised."""
        model, filename = split_landing_key(key)
        try:
            with self.lake.local_copy(key) as path:
                sha256 = sha256_file(path)
                size = path.stat().st_size
            with session_scope(self.engine) as session:
                row, first = ledger.record_landing(
                    session=session,
                    model=model,
                    sha256=sha256,
                    uri=self.lake.uri(key),
                    filename=filename,
                    size_bytes=size,
                )
                same_object = row.uri == self.lake.uri(key)
                pending = row.status in {"landed", "failed"}  # still waiting for a verdict
            if not first and not (same_object and pending):
                # The bytes are already kept (in landing, datasets or quarantine): drop the copy.
                self.lake.delete(key)
                log.info("%s: duplicate of %s (%s); copy removed", key, row.uri, row.status)
                return Sighting(key, model, sha256, False, "duplicate-removed")
            self.flush_pending()
            return Sighting(key, model, sha256, first, "announced" if first else "pending")
        except Exception as error:  # one bad object must not stop the watcher
            log.exception("landing object %s could not be processed: %s", key, error)
            return Sighting(key, model, "", False, "error")

    def flush_pending(self) -> int:
        """Send the landed event of every ledger row that has not been confirmed yet."""
        with session_scope(self.engine) as session:
            rows = list(ledger.pending_emissions(session=session))
        if not rows:
            return 0
        batch = [(landed_event(r), landed_event_id(r.model, r.sha256)) for r in rows]
        try:
            ids = self.send(batch)
        except Exception as error:
            log.warning("could not send %d landed events (will retry): %s", len(batch), error)
            return 0
        with session_scope(self.engine) as session:
            for row, event_id in zip(rows, ids, strict=True):
                fresh = ledger.get_landing(session=session, model=row.model, sha256=row.sha256)
                if fresh is not None:
                    ledger.mark_emitted(session=session, landing=fresh, event_id=event_id)
                    log.info("announced %s %s as %s", row.model, row.sha256[:16], event_id)
        return len(rows)


class DirectoryPoller:
    """Find landing objects that are complete: unchanged in size and time for a settle period."""

    def __init__(self, lake: Lake, settle_seconds: float) -> None:
        self.lake = lake
        self.settle_seconds = settle_seconds
        self._first_seen: dict[str, tuple[ObjectInfo, float]] = {}
        self._done: dict[str, ObjectInfo] = {}

    def ready(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        current = {info.key: info for info in self.lake.list(LANDING)}
        ready = []
        for key, info in current.items():
            if self._done.get(key) == info:
                continue
            seen = self._first_seen.get(key)
            if seen is None or seen[0] != info:
                self._first_seen[key] = (info, now)
                if self.settle_seconds > 0:
                    continue
            elif now - seen[1] < self.settle_seconds:
                continue
            ready.append(key)
        for key in set(self._first_seen) - set(current):
            del self._first_seen[key]
        self._done = {k: v for k, v in self._done.items() if k in current}
        return ready

    def done(self, key: str) -> None:
        seen = self._first_seen.pop(key, None)
        if seen is not None:
            self._done[key] = seen[0]
