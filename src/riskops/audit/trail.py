"""Append to the audit trail inside the caller's transaction, and verify the whole chain.

Deleting the newest rows cannot be seen from the chain alone (what is left is still a valid
chain), so the head is anchored outside the database (``riskops.audit.anchor`` writes it as
tags on MLflow model versions) and passed back as ``verify(expected_head=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import func, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from riskops.audit.chain import GENESIS_HASH, canonical_content, normalize_payload, row_hash
from riskops.audit.table import AuditRecord
from riskops.records import utcnow

# pg_advisory_xact_lock key that serialises appenders on PostgreSQL ("riskaudt").
AUDIT_LOCK_KEY = 0x7269736B61756474
_ATTEMPTS = 5


class ChainHead(NamedTuple):
    """The newest row of the chain: (0, 64 zeros) for an empty chain; ``at`` when anchored."""

    seq: int
    row_hash: str
    at: str | None = None  # ISO time the head was anchored outside the database


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify`` found: ``rows_checked`` counts the rows found good before any problem."""

    ok: bool
    rows_checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def _lock_tail(session: Session) -> None:
    """Hold the lock that serialises appenders until the caller's transaction ends."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # A write statement (even one that matches no row) takes SQLite's write lock at its
        # start and keeps it until commit; sqlite3 also opens the transaction right before it,
        # so the tail read that follows sees the newest committed row (BEGIN IMMEDIATE
        # semantics without replacing the caller's transaction). It also opens a real
        # transaction before our SAVEPOINT: a SAVEPOINT that starts one commits on RELEASE.
        connection.execute(text("UPDATE audit_log SET seq = seq WHERE 0 = 1"))


def _read_tail(session: Session) -> ChainHead:
    row = session.exec(
        select(AuditRecord.seq, AuditRecord.row_hash).order_by(col(AuditRecord.seq).desc()).limit(1)
    ).first()
    return ChainHead(0, GENESIS_HASH) if row is None else ChainHead(row[0], row[1])


def append(
    *, session: Session, actor: str, action: str, subject: str, payload: Mapping[str, Any]
) -> AuditRecord:
    """Add one row at the end of the chain, in the caller's transaction (commit is theirs).

    Appenders are serialised by a lock held until the caller commits or rolls back, so keep
    that transaction short. On PostgreSQL the caller's transaction must be READ COMMITTED
    (the default); the unique ``seq`` is the last line of defence (retried a few times).
    """
    clean = normalize_payload(payload)
    for attempt in range(_ATTEMPTS):
        _lock_tail(session)
        tail = _read_tail(session)
        seq = tail.seq + 1
        occurred_at = utcnow()
        canonical = canonical_content(
            seq=seq, occurred_at=occurred_at, actor=actor, action=action, subject=subject,
            payload=clean,
        )  # fmt: skip
        record = AuditRecord(
            seq=seq, occurred_at=occurred_at, actor=actor, action=action, subject=subject,
            payload=clean, prev_hash=tail.row_hash, row_hash=row_hash(tail.row_hash, canonical),
        )  # fmt: skip
        try:
            with session.begin_nested():
                session.add(record)
        except IntegrityError:
            # Another writer took this seq without the lock: read the tail again.
            if attempt == _ATTEMPTS - 1:
                raise
            continue
        return record
    raise AssertionError("unreachable")


def head(*, session: Session) -> ChainHead:
    """The newest row's (seq, row_hash), to anchor outside the database."""
    return _read_tail(session)


def record_canonical(record: AuditRecord) -> str:
    """The canonical content of a stored row."""
    return canonical_content(
        seq=record.seq, occurred_at=record.occurred_at, actor=record.actor,
        action=record.action, subject=record.subject, payload=record.payload,
    )  # fmt: skip


def _problem_with(record: AuditRecord, expected_seq: int, prev_hash: str) -> str | None:
    """Why this row breaks the chain, or None when it is a good next link."""
    if record.seq != expected_seq:
        if expected_seq == 1:
            return f"row 1 missing: chain starts at {record.seq} (deleted)"
        return (
            f"row {expected_seq} missing: chain jumps from {expected_seq - 1} "
            f"to {record.seq} (deleted)"
        )
    if record.prev_hash != prev_hash:
        if expected_seq == 1:
            return "row 1: prev_hash is not the genesis hash (inserted or reordered)"
        return (
            f"row {expected_seq}: prev_hash does not match row {expected_seq - 1} "
            "(inserted or reordered)"
        )
    try:
        canonical = record_canonical(record)
    except (TypeError, ValueError):
        return f"row {expected_seq}: content cannot be made canonical (edited)"
    if row_hash(prev_hash, canonical) != record.row_hash:
        return f"row {expected_seq}: content does not match its hash (edited)"
    return None


def _rows_in_order(session: Session) -> Any:
    """Every row in seq order, streamed; plain rows, so the session does not keep them."""
    columns = [
        AuditRecord.seq, AuditRecord.occurred_at, AuditRecord.actor, AuditRecord.action,
        AuditRecord.subject, AuditRecord.payload, AuditRecord.prev_hash, AuditRecord.row_hash,
    ]  # fmt: skip
    statement = select(*columns).order_by(col(AuditRecord.seq)).execution_options(yield_per=1000)
    return session.connection().execute(statement)


def verify(
    *, session: Session, expected_head: ChainHead | tuple[int, str] | None = None
) -> VerifyResult:
    """Walk the chain in seq order and name the first edited, deleted, inserted or moved row.

    ``expected_head`` is a (seq, row_hash) anchored earlier: the chain must still contain it,
    which catches rows deleted from the tail and a chain rewritten with fresh hashes.
    """
    expected_seq, prev_hash = 1, GENESIS_HASH
    anchored_hash = GENESIS_HASH if expected_head is not None and expected_head[0] == 0 else None
    for row in _rows_in_order(session):
        record = AuditRecord.model_construct(**row._mapping)
        problem = _problem_with(record, expected_seq, prev_hash)
        if problem is not None:
            return VerifyResult(False, expected_seq - 1, expected_seq, problem)
        if expected_head is not None and record.seq == expected_head[0]:
            anchored_hash = record.row_hash
        expected_seq, prev_hash = expected_seq + 1, record.row_hash
    checked = expected_seq - 1
    if expected_head is not None:
        anchor_seq, anchor_hash = expected_head[0], expected_head[1]
        if anchored_hash is None:
            problem = (
                f"row {expected_seq} missing: chain ends at {checked} but the anchored head "
                f"is row {anchor_seq} (deleted from the tail)"
            )
            return VerifyResult(False, checked, expected_seq, problem)
        if anchored_hash != anchor_hash:
            problem = (
                f"row {anchor_seq}: hash differs from the anchored head "
                f"(chain rewritten at or before row {anchor_seq})"
            )
            return VerifyResult(False, checked, anchor_seq, problem)
    return VerifyResult(True, checked)


def rows_for_subject(*, session: Session, subject_prefix: str) -> list[AuditRecord]:
    """Rows whose subject starts with ``subject_prefix`` (case-sensitive, no wildcards)."""
    prefix_of_subject = func.substr(AuditRecord.subject, 1, len(subject_prefix))
    statement = (
        select(AuditRecord)
        .where(prefix_of_subject == subject_prefix)
        .order_by(col(AuditRecord.seq))
    )
    return list(session.exec(statement).all())
