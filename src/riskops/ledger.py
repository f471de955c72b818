"""Read and write the platform records (keyword-only functions taking a session)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from riskops.db import insert_once
from riskops.records import DatasetVersion, LandedObject, ModelSpecRecord, utcnow
from riskops.specs import ModelSpec, parse_spec


class UnknownModelError(LookupError):
    """No spec is onboarded under this name."""


# --- specs -------------------------------------------------------------------------------


def register_spec(
    *, session: Session, spec: ModelSpec, source: str = "", actor: str = ""
) -> tuple[ModelSpecRecord, bool]:
    """Store a spec version; returns (record, created). An unchanged spec is not stored twice."""
    spec_hash = spec.spec_hash()
    existing = session.exec(
        select(ModelSpecRecord).where(
            ModelSpecRecord.name == spec.name, ModelSpecRecord.spec_hash == spec_hash
        )
    ).first()
    if existing is not None:
        return existing, False
    record = ModelSpecRecord(
        name=spec.name,
        spec_hash=spec_hash,
        family=spec.family,
        risk_class=spec.risk_class,
        owner=spec.owner,
        spec=spec.model_dump(mode="json"),
        source=source,
        onboarded_by=actor,
    )
    session.add(record)
    session.flush()
    return record, True


def current_spec(*, session: Session, name: str) -> ModelSpec:
    """The most recently onboarded spec of ``name``."""
    record = session.exec(
        select(ModelSpecRecord)
        .where(ModelSpecRecord.name == name)
        .order_by(col(ModelSpecRecord.onboarded_at).desc(), col(ModelSpecRecord.id).desc())
    ).first()
    if record is None:
        raise UnknownModelError(
            f"no model named {name!r} is onboarded; run `riskops onboard models/{name}.yaml`"
        )
    return parse_spec(record.spec, f"platform DB spec {name}@{record.spec_hash[:12]}")


def spec_version(*, session: Session, name: str, spec_hash: str) -> ModelSpec:
    """The exact spec version a dataset was checked against (lineage never uses "latest")."""
    record = session.exec(
        select(ModelSpecRecord).where(
            ModelSpecRecord.name == name, ModelSpecRecord.spec_hash == spec_hash
        )
    ).first()
    if record is None:
        raise UnknownModelError(f"spec {name}@{spec_hash[:12]} is not in the platform DB")
    return parse_spec(record.spec, f"platform DB spec {name}@{spec_hash[:12]}")


def list_specs(*, session: Session) -> list[ModelSpecRecord]:
    """The latest spec record of every onboarded model."""
    latest: dict[str, ModelSpecRecord] = {}
    for record in session.exec(select(ModelSpecRecord).order_by(col(ModelSpecRecord.id))):
        latest[record.name] = record
    return [latest[name] for name in sorted(latest)]


# --- landing ledger ------------------------------------------------------------------------


def record_landing(
    *, session: Session, model: str, sha256: str, uri: str, filename: str, size_bytes: int
) -> tuple[LandedObject, bool]:
    """Insert the ledger row for (model, sha256), or count one more sighting of it.

    Returns (row, first_time). The unique constraint makes this safe between watchers.
    """
    existing = get_landing(session=session, model=model, sha256=sha256)
    if existing is not None:
        existing.times_seen += 1
        existing.last_seen_at = utcnow()
        session.add(existing)
        return existing, False
    row = LandedObject(
        model=model, sha256=sha256, uri=uri, filename=filename, size_bytes=size_bytes
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another watcher inserted it between our read and our write.
        again = get_landing(session=session, model=model, sha256=sha256)
        assert again is not None
        return again, False
    return row, True


def get_landing(*, session: Session, model: str, sha256: str) -> LandedObject | None:
    return session.exec(
        select(LandedObject).where(LandedObject.model == model, LandedObject.sha256 == sha256)
    ).first()


def mark_emitted(*, session: Session, landing: LandedObject, event_id: str) -> None:
    landing.event_id = event_id
    landing.emitted_at = utcnow()
    session.add(landing)


def pending_emissions(*, session: Session) -> Sequence[LandedObject]:
    """Ledger rows whose landed event was never sent (a crash between insert and emit)."""
    return session.exec(
        select(LandedObject).where(col(LandedObject.emitted_at).is_(None)).order_by(LandedObject.id)
    ).all()


def mark_checked(
    *,
    session: Session,
    model: str,
    sha256: str,
    accepted: bool,
    reasons: list[dict[str, Any]] | None = None,
    quarantine_uri: str | None = None,
    dataset_version_id: str | None = None,
) -> LandedObject | None:
    """Record the contract check's outcome on the ledger row (if the file came via the ledger)."""
    row = get_landing(session=session, model=model, sha256=sha256)
    if row is None:
        return None
    row.status = "accepted" if accepted else "rejected"  # "failed" rows are retried into these
    row.checked_at = utcnow()
    row.reasons = reasons
    row.quarantine_uri = quarantine_uri
    row.dataset_version_id = dataset_version_id
    session.add(row)
    return row


def mark_check_failed(*, session: Session, model: str, sha256: str, error: str) -> None:
    """The check itself broke (not the data): the file stays in landing for a retry."""
    row = get_landing(session=session, model=model, sha256=sha256)
    if row is not None and row.status in {"landed", "failed"}:
        row.status = "failed"
        row.checked_at = utcnow()
        row.reasons = [{"code": "check_failed", "message": error, "column": None, "rows": []}]
        session.add(row)


def list_landings(*, session: Session, model: str | None = None) -> Sequence[LandedObject]:
    query = select(LandedObject).order_by(col(LandedObject.id))
    if model:
        query = query.where(LandedObject.model == model)
    return session.exec(query).all()


# --- dataset versions ----------------------------------------------------------------------


def dataset_version_id(model: str, sha256: str) -> str:
    return f"{model}-{sha256[:16]}"


def add_dataset_version(*, session: Session, version: DatasetVersion) -> DatasetVersion:
    """Store a dataset version once; a second call for the same content returns the first."""
    return insert_once(session, version, lambda: session.get(DatasetVersion, version.id))


def list_dataset_versions(
    *, session: Session, model: str | None = None
) -> Sequence[DatasetVersion]:
    query = select(DatasetVersion).order_by(col(DatasetVersion.created_at))
    if model:
        query = query.where(DatasetVersion.model == model)
    return session.exec(query).all()
