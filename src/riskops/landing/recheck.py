"""Send a quarantined file back through the contract check, against the spec now in force.

The data-rejected runbook tells people to fix the spec (or the data) and re-check; a landing
of the same bytes is a duplicate and does nothing, so this is the explicit way back. The file
is checked where it lies in quarantine; the request is audited and announced through the
outbox as a new ``riskops.data.landed`` (a fresh event id per re-check).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from riskops import audit, ledger, outbox
from riskops.db import session_scope
from riskops.landing.watcher import landed_event
from riskops.platform import Platform


class RecheckRefused(ValueError):
    """The landing is not in quarantine (unknown, accepted, or already being re-checked)."""


@dataclass(frozen=True)
class Recheck:
    model: str
    sha256: str
    spec_hash: str
    attempt: int
    outbox_id: str


def request_recheck(*, platform: Platform, model: str, sha256: str, actor: str) -> Recheck:
    """Mark a rejected landing for a new check and queue its landed event."""
    with session_scope(platform.engine) as session:
        matches = [
            row for row in ledger.list_landings(session=session, model=model)
            if row.sha256.startswith(sha256.lower())
        ]  # fmt: skip
        if len(matches) != 1:
            found = "no landing" if not matches else f"{len(matches)} landings"
            raise RecheckRefused(f"{found} of {model} match sha256 {sha256!r}")
        row = matches[0]
        if row.status != "rejected" or not row.quarantine_uri:
            raise RecheckRefused(
                f"{model} {row.sha256[:16]} ({row.filename}) is {row.status}, not in quarantine; "
                "only a rejected file can be re-checked"
            )
        if not platform.lake.exists(platform.lake.key_of(row.quarantine_uri)):
            raise RecheckRefused(f"the quarantined file {row.quarantine_uri} is missing")
        spec = ledger.current_spec(session=session, name=model)
        previous = [reason.get("code") for reason in row.reasons or []]
        row.status, row.rechecks, row.uri = "landed", row.rechecks + 1, row.quarantine_uri
        session.add(row)
        audit.append(
            session=session, actor=actor, action="data.recheck-requested",
            subject=f"{model}/data/{row.sha256}",
            payload={"spec_hash": spec.spec_hash(), "previous_reasons": previous,
                     "attempt": row.rechecks},
        )  # fmt: skip
        event_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"recheck:{model}:{row.sha256}:{row.rechecks}")
        )
        outbox.enqueue(session=session, event=landed_event(row), event_id=event_id)
        return Recheck(model, row.sha256, spec.spec_hash(), row.rechecks, event_id)
