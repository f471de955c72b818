"""API keys of the scoring service: the principals' keys, held in memory and refreshed.

A request is authenticated against an in-memory map from key digest to (principal, role), so
no request waits for the database. The map is rebuilt from the platform DB every
``refresh_seconds`` in the background: a revoked key stops working within that time (the
documented bound), a new key starts working within it. Keys are never logged; only digests
are held.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from riskops.db import session_scope
from riskops.identity.principals import list_principals
from riskops.identity.roles import PERMISSIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal behind a request."""

    name: str
    role: str

    def may(self, action: str) -> bool:
        """True when the role allows ``action`` (riskops.identity.roles)."""
        return self.role in PERMISSIONS[action]


def digest(key: str) -> str:
    """sha256 hex of a key, as the principals table stores it."""
    return hashlib.sha256(key.strip().encode("utf-8")).hexdigest()


class KeyCache:
    """Digest -> caller, rebuilt from a loader on a timer."""

    def __init__(self, load: Callable[[], dict[str, Caller]], refresh_seconds: float) -> None:
        self._load = load
        self._refresh = refresh_seconds
        self._keys: dict[str, Caller] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    @classmethod
    def from_engine(cls, engine: Engine, refresh_seconds: float) -> KeyCache:
        """Keys of the active principals in the platform DB."""

        def load() -> dict[str, Caller]:
            with session_scope(engine) as session:
                return {
                    p.key_hash: Caller(p.name, p.role)
                    for p in list_principals(session=session)
                    if p.active
                }

        return cls(load, refresh_seconds)

    def refresh(self) -> None:
        """Reload now; on a DB error the previous keys stay (and the error is kept)."""
        try:
            keys = self._load()
        except Exception as error:
            self.last_error = f"{type(error).__name__}: {error}"
            log.error("scoring: reloading API keys failed (%s); the previous keys stay in use",
                      self.last_error)  # fmt: skip
            return
        self._keys = keys  # one assignment: readers see the old map or the new one
        self.last_error = None

    def start(self) -> None:
        """Load once, then refresh in a daemon thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="riskops-keys", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._refresh):
            self.refresh()

    def stop(self) -> None:
        """Stop refreshing."""
        self._stop.set()

    def caller(self, authorization: str | None) -> Caller | None:
        """The caller of an ``Authorization: Bearer KEY`` header; None when unknown."""
        if not authorization:
            return None
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        # A lookup by digest: timing can only tell about digests, which reveal nothing of keys.
        return self._keys.get(digest(key))
