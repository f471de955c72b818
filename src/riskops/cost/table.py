"""One row per metered flow run in the platform DB (``run_cost``), and how rows are added."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index
from sqlmodel import Field, Session, SQLModel, col, select

from riskops.records import utcnow

MIB = 2**20


class RunCost(SQLModel, table=True):
    """What one flow run used and its estimated cost at the prices it was run with."""

    __tablename__ = "run_cost"
    __table_args__ = (Index("ix_run_cost_model_stage", "model", "stage"),)

    id: int | None = Field(default=None, primary_key=True)
    flow_run_id: str | None = Field(default=None, index=True, max_length=64)
    stage: str = Field(max_length=100)  # the flow's name: feature-build, train, batch-score...
    model: str = Field(max_length=63)  # "(all)" for a run over every model
    status: str = Field(max_length=16)  # completed | failed
    started_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ended_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    wall_seconds: float
    cpu_seconds: float
    cpu_self_seconds: float
    cpu_children_seconds: float
    peak_rss_mib: float  # the process tree
    peak_rss_self_mib: float
    peak_source: str = Field(max_length=16)
    rows: int | None = None  # None: the stage reports no row count
    cost: float
    currency: str = Field(max_length=8)
    spot: bool = False
    gpus: int = 0
    estimate: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # hours and prices


def add_run_cost(*, session: Session, record: RunCost) -> RunCost:
    """Store ``record``; the caller's transaction commits it."""
    session.add(record)
    session.flush()
    return record


def run_costs(
    *, session: Session, since: dt.datetime | None = None, model: str | None = None
) -> list[RunCost]:
    """Rows that started at or after ``since`` (all when None), oldest first."""
    query = select(RunCost)
    if since is not None:
        query = query.where(RunCost.started_at >= since)
    if model is not None:
        query = query.where(RunCost.model == model)
    return list(session.exec(query.order_by(col(RunCost.started_at), col(RunCost.id))))
