"""The audit_log table: one row per recorded action, each linked to the previous by hash."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel


class AuditRecord(SQLModel, table=True):
    """One link of the hash chain: who did what to which subject, and when."""

    __tablename__ = "audit_log"
    # Never reuse the id of a deleted row on SQLite (an append-only log has monotonic ids).
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)  # chain position, 1, 2, 3, ... without gaps
    # timestamptz on PostgreSQL, so the session TimeZone cannot shift the stored instant.
    occurred_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    actor: str = Field(max_length=200)
    action: str = Field(index=True, max_length=100)
    subject: str = Field(index=True, max_length=500)
    # JSON (not JSONB): PostgreSQL keeps the text as written; the hash never depends on it anyway.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64)
