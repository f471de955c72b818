"""The producer side of the landing zone: put a file there, wait for its verdict."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select

from riskops import audit, ledger
from riskops.db import insert_once, make_engine, session_scope
from riskops.hashing import sha256_file
from riskops.lake.base import landing_key
from riskops.lake.factory import lake_from_settings
from riskops.records import LandedObject, LandingClaim
from riskops.settings import Settings


class LandingTimeout(TimeoutError):
    pass


@dataclass(frozen=True)
class Landed:
    model: str
    sha256: str
    uri: str
    duplicate_of: LandedObject | None = None  # these bytes landed before: nothing was done


def land_file(
    settings: Settings, path: Path, model: str, *, landed_by: str | None = None
) -> Landed:
    """Copy ``path`` to landing/<model>/<name> (atomically: the watcher never sees half a file).

    Bytes already seen for this model are not landed again: the earlier landing is returned
    (when, which verdict, which dataset version). ``landed_by`` (the authenticated principal)
    is recorded as a claim before the copy, so the people behind a version are known.
    """
    sha256 = sha256_file(path)
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            earlier = ledger.get_landing(session=session, model=model, sha256=sha256)
            if earlier is not None:
                return Landed(model, sha256, earlier.uri, duplicate_of=earlier)
            if landed_by:
                insert_once(
                    session,
                    LandingClaim(model=model, sha256=sha256, principal=landed_by,
                                 filename=path.name),
                    lambda: session.exec(
                        select(LandingClaim).where(
                            LandingClaim.model == model, LandingClaim.sha256 == sha256,
                            LandingClaim.principal == landed_by,
                        )
                    ).first(),
                )  # fmt: skip
                audit.append(
                    session=session, actor=landed_by, action="data.submitted",
                    subject=f"{model}/data/{sha256}",
                    payload={"filename": path.name, "size_bytes": path.stat().st_size},
                )  # fmt: skip
    finally:
        engine.dispose()
    uri = lake_from_settings(settings).put_file(landing_key(model, path.name), path)
    return Landed(model, sha256, uri)


def wait_for_check(
    settings: Settings, model: str, sha256: str, *, timeout: float = 300.0, poll: float = 0.5
) -> LandedObject:
    """Block until the contract check has recorded a verdict for (model, sha256).

    Returns the ledger row: accepted, rejected, or failed (the check itself broke; the file
    is still in landing and the flow run can be retried from the Prefect UI).
    """
    engine = make_engine(settings.database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with session_scope(engine) as session:
                row = ledger.get_landing(session=session, model=model, sha256=sha256)
            if row is not None and row.status != "landed":
                return row
            if time.monotonic() > deadline:
                stage = (
                    "the watcher has not seen it (is `riskops up` running? see riskops status)"
                    if row is None
                    else "announced, but no contract check has finished (see the Prefect UI, "
                    "deployment contract-check, and the worker log)"
                    if row.emitted_at
                    else "seen by the watcher, but its landed event was not sent yet"
                )
                raise LandingTimeout(
                    f"no verdict for {model} {sha256[:16]} after {timeout:.0f}s: {stage}"
                )
            time.sleep(poll)
    finally:
        engine.dispose()
