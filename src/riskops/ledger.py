"""Read and write the platform records (keyword-only functions taking a session)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from riskops import audit
from riskops.db import insert_once
from riskops.records import (
    DatasetVersion,
    LandedObject,
    ModelSpecRecord,
    PromotionRecord,
    utcnow,
)
from riskops.specs import ModelSpec, parse_spec


class UnknownModelError(LookupError):
    """No spec is onboarded under this name."""


# --- specs -------------------------------------------------------------------------------


class SpecPolicyError(ValueError):
    """A spec lowers a governance setting below the platform's floor."""


def spec_diff(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, list[Any]]:
    """``{dotted.path: [old, new]}`` for every leaf that differs (the audit keeps it)."""
    out: dict[str, list[Any]] = {}

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        elif a != b:
            out[path or "(spec)"] = [a, b]

    walk(old or {}, new, "")
    return out


def _has_champion(session: Session, name: str) -> bool:
    return (
        session.exec(select(PromotionRecord).where(PromotionRecord.model == name)).first()
        is not None
    )


def _active_record(session: Session, name: str) -> ModelSpecRecord | None:
    return session.exec(
        select(ModelSpecRecord)
        .where(ModelSpecRecord.name == name, ModelSpecRecord.status == "active")
        .order_by(col(ModelSpecRecord.id).desc())
    ).first()


def register_spec(
    *, session: Session, spec: ModelSpec, source: str = "", actor: str = ""
) -> tuple[ModelSpecRecord, bool]:
    """Store a spec version; returns (record, created). An unchanged spec is not stored twice.

    Refuses a spec below the platform's governance floors. A change to a model that has a
    champion becomes a *pending* version that a risk officer must approve before it applies;
    every new version is audited with its diff against the one in force.
    """
    from riskops.governance.policy import policy_problems

    problems = policy_problems(spec)
    if problems:
        lines = "\n".join(f"  - {path}: {message}" for path, message in problems)
        raise SpecPolicyError(f"spec {source or spec.name} refused by platform policy:\n{lines}")
    spec_hash = spec.spec_hash()
    existing = session.exec(
        select(ModelSpecRecord).where(
            ModelSpecRecord.name == spec.name, ModelSpecRecord.spec_hash == spec_hash
        )
    ).first()
    if existing is not None:
        return existing, False
    current = _active_record(session, spec.name)
    pending = current is not None and _has_champion(session, spec.name)
    if current is not None and not pending:
        current.status = "superseded"
        session.add(current)
    record = ModelSpecRecord(
        name=spec.name,
        spec_hash=spec_hash,
        family=spec.family,
        risk_class=spec.risk_class,
        owner=spec.owner,
        spec=spec.model_dump(mode="json"),
        source=source,
        onboarded_by=actor,
        status="pending" if pending else "active",
    )
    session.add(record)
    action = "spec.onboarded" if current is None else "spec.proposed" if pending else "spec.changed"
    audit.append(
        session=session, actor=actor or "(unknown)", action=action,
        subject=f"{spec.name}/spec/{spec_hash[:12]}",
        payload={"status": record.status, "source": source,
                 "previous": current.spec_hash if current else None,
                 "diff": spec_diff(current.spec if current else None, record.spec)},
    )  # fmt: skip
    session.flush()
    return record, True


def decide_spec(
    *, session: Session, name: str, spec_hash: str, actor: str, approve: bool, comment: str
) -> ModelSpecRecord:
    """A risk officer approves (it applies now) or declines a pending spec version."""
    if len(spec_hash) < 12:
        raise ValueError(f"give at least 12 characters of the spec hash, not {spec_hash!r}")
    matches = session.exec(
        select(ModelSpecRecord).where(
            ModelSpecRecord.name == name, col(ModelSpecRecord.spec_hash).startswith(spec_hash)
        )
    ).all()
    if len(matches) != 1:
        found = "no spec version" if not matches else f"{len(matches)} spec versions"
        raise UnknownModelError(f"{found} of {name} match {spec_hash} (see `riskops specs list`)")
    record = matches[0]
    if record.status != "pending":
        raise ValueError(f"spec {name}@{record.spec_hash[:12]} is {record.status}, not pending")
    if record.onboarded_by == actor:
        raise PermissionError(
            f"four-eyes rule: {actor} proposed spec {name}@{record.spec_hash[:12]} and cannot "
            "approve it; another risk officer must decide"
        )
    if len(comment.strip()) < 10:
        raise ValueError("a comment of at least 10 characters is required")
    if approve:
        current = _active_record(session, name)
        if current is not None:
            current.status = "superseded"
            session.add(current)
    record.status = "active" if approve else "declined"
    record.decided_by, record.decided_at = actor, utcnow()
    session.add(record)
    audit.append(
        session=session, actor=actor, action="spec.approved" if approve else "spec.declined",
        subject=f"{name}/spec/{record.spec_hash[:12]}", payload={"comment": comment},
    )  # fmt: skip
    return record


def current_spec(*, session: Session, name: str) -> ModelSpec:
    """The spec version in force for ``name`` (pending changes do not apply yet)."""
    record = _active_record(session, name)
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
    query = select(ModelSpecRecord).where(ModelSpecRecord.status == "active")
    for record in session.exec(query.order_by(col(ModelSpecRecord.id))):
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
