"""The platform's own tables (SQLModel). Only classes with ``table=True`` are tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ModelSpecRecord(SQLModel, table=True):
    """One version of a model spec, as onboarded (re-onboarding an unchanged spec is a no-op)."""

    __tablename__ = "model_spec"
    __table_args__ = (UniqueConstraint("name", "spec_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=63)
    spec_hash: str = Field(max_length=64)
    family: str = Field(max_length=32)
    risk_class: str = Field(max_length=16)
    owner: str = Field(max_length=200)
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    source: str = Field(default="", max_length=500)
    onboarded_by: str = Field(default="", max_length=200)
    onboarded_at: dt.datetime = Field(default_factory=utcnow)
    # active: in force. pending: a change to a model with a champion, waiting for a risk
    # officer (spec change control). superseded/declined: kept for lineage.
    status: str = Field(default="active", max_length=16, index=True)
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: dt.datetime | None = None


class LandedObject(SQLModel, table=True):
    """The landing ledger: one row per (model, content hash), whatever the file was called."""

    __tablename__ = "landed_object"
    __table_args__ = (UniqueConstraint("model", "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    sha256: str = Field(index=True, max_length=64)
    uri: str = Field(max_length=1000)
    filename: str = Field(max_length=500)
    size_bytes: int
    times_seen: int = 1
    first_seen_at: dt.datetime = Field(default_factory=utcnow)
    last_seen_at: dt.datetime = Field(default_factory=utcnow)
    event_id: str | None = Field(default=None, max_length=64)
    emitted_at: dt.datetime | None = None
    status: str = Field(default="landed", max_length=16)  # landed|accepted|rejected|failed
    checked_at: dt.datetime | None = None
    reasons: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    quarantine_uri: str | None = Field(default=None, max_length=1000)
    dataset_version_id: str | None = Field(default=None, max_length=100)
    rechecks: int = 0  # times a quarantined file was sent back through the contract check


class LandingClaim(SQLModel, table=True):
    """Who landed which content: written by an authenticated `riskops land` before the copy."""

    __tablename__ = "landing_claim"
    __table_args__ = (UniqueConstraint("model", "sha256", "principal"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    sha256: str = Field(index=True, max_length=64)
    principal: str = Field(max_length=200)
    filename: str = Field(default="", max_length=500)
    claimed_at: dt.datetime = Field(default_factory=utcnow)


class DatasetVersion(SQLModel, table=True):
    """An accepted, immutable, content-addressed dataset."""

    __tablename__ = "dataset_version"

    id: str = Field(primary_key=True, max_length=100)  # <model>-<sha256[:16]>
    model: str = Field(index=True, max_length=63)
    sha256: str = Field(index=True, max_length=64)
    uri: str = Field(max_length=1000)
    source_uri: str = Field(max_length=1000)
    row_count: int
    columns: list[str] = Field(sa_column=Column(JSON, nullable=False))
    spec_hash: str = Field(max_length=64)
    landed_event_id: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow)


class FeatureSetRecord(SQLModel, table=True):
    """A versioned feature set built from one dataset version with one set of definitions."""

    __tablename__ = "feature_set"

    id: str = Field(primary_key=True, max_length=100)  # <model>-<version>
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=64)
    dataset_version_id: str = Field(index=True, max_length=100)
    uri: str = Field(max_length=1000)
    row_count: int
    definitions_hash: str = Field(max_length=64)
    code_version: str = Field(max_length=64)
    manifest: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)


class ModelVersionRecord(SQLModel, table=True):
    """A registered MLflow model version and what it was trained on (the lineage index)."""

    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=32)
    run_id: str | None = Field(default=None, max_length=64)
    feature_set_id: str | None = Field(default=None, index=True, max_length=100)
    dataset_version_id: str | None = Field(default=None, index=True, max_length=100)
    source: str = Field(default="pipeline", max_length=32)  # pipeline | mlflow-webhook
    trainer: str = Field(default="", max_length=200)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    registered_at: dt.datetime = Field(default_factory=utcnow)


class ValidationRecord(SQLModel, table=True):
    """The gate report of one model version (the full report is an MLflow artifact)."""

    __tablename__ = "validation"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=32)
    passed: bool
    failed_gates: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    validator: str = Field(default="riskops-validation", max_length=200)
    validated_at: dt.datetime = Field(default_factory=utcnow)


class SignOffRecord(SQLModel, table=True):
    """Every sign-off submission, including refused ones (four-eyes violations)."""

    __tablename__ = "sign_off"

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=32)
    approver: str = Field(max_length=200)  # the authenticated principal, or what was typed
    approver_role: str | None = Field(default=None, max_length=32)
    decision: str = Field(max_length=16)  # approve | decline | timeout
    justification: str = Field(default="")
    accepted: bool  # False: refused (e.g. approver trained the model); the run keeps waiting
    refusal: str | None = None
    verified: bool = False  # True: the identity was authenticated (signed by the governance API)
    channel: str = Field(default="", max_length=32)  # governance-api | prefect-ui | signoff-page
    decision_id: str | None = Field(default=None, max_length=64, unique=True)
    flow_run_id: str | None = Field(default=None, max_length=64)
    demo: bool = False
    decided_at: dt.datetime = Field(default_factory=utcnow)


class SignOffRequest(SQLModel, table=True):
    """The open (or closed) request for a risk officer's decision on one version."""

    __tablename__ = "sign_off_request"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=32)
    flow_run_id: str = Field(max_length=64)
    status: str = Field(default="waiting", max_length=16)  # waiting | approved | declined | timeout
    requested_at: dt.datetime = Field(default_factory=utcnow)
    closed_at: dt.datetime | None = None


class PromotionRecord(SQLModel, table=True):
    """Every move of the champion alias (promotion or rollback), in order."""

    __tablename__ = "promotion"

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=32)
    previous_version: str | None = Field(default=None, max_length=32)
    kind: str = Field(max_length=16)  # promote | rollback
    actor: str = Field(max_length=200)
    reason: str = Field(default="")
    moved_at: dt.datetime = Field(default_factory=utcnow)


class ModelLock(SQLModel, table=True):
    """One row per model; updating it serialises alias moves (row lock / SQLite write lock)."""

    __tablename__ = "model_lock"

    model: str = Field(primary_key=True, max_length=63)
    generation: int = 0


class HoldoutRecord(SQLModel, table=True):
    """The holdout the platform chose for a pipeline-trained version: rule, rows and digests.

    Validation rebuilds the rows from the catalogued feature set with this rule and refuses the
    version when their digest differs; nothing the version's run logged is trusted for it.
    """

    __tablename__ = "holdout"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=32)
    feature_set_id: str = Field(index=True, max_length=100)
    method: str = Field(max_length=16)  # time | stratified
    rule: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # SplitRule.to_dict()
    holdout_digest: str = Field(max_length=64)  # riskops.training.split.rows_digest
    train_digest: str = Field(max_length=64)
    holdout_rows: int
    train_rows: int
    embargo_rows: int = 0
    recorded_at: dt.datetime = Field(default_factory=utcnow)


class DecisionLogFile(SQLModel, table=True):
    """One parquet file of the decision log: which decisions it holds and the digest of its bytes.

    Readers find decisions through this index, never by listing the lake; a file that is not
    indexed was never acknowledged as written. Times are UTC (timestamptz on PostgreSQL).
    """

    __tablename__ = "decision_log_file"
    __table_args__ = (Index("ix_decision_log_file_model_hour", "model", "hour"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=63)
    version: str = Field(max_length=32)
    role: str = Field(max_length=16)  # champion | shadow
    hour: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    key: str = Field(max_length=1000, unique=True)
    uri: str = Field(max_length=1000)
    rows: int
    size_bytes: int
    sha256: str = Field(max_length=64)
    first_decided_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    last_decided_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class RetrainClaim(SQLModel, table=True):
    """One claim of the right to start a retraining run of a model (the retraining cooldown).

    The database refuses a second claim inside a window: at most one row per model has
    ``holds_window`` set (a partial unique index, below). A claimant first clears the flag on a
    claim whose window has passed (a compare-and-set UPDATE), then inserts its own; of racing
    claimants exactly one insert succeeds. Rows are kept as history; ``event_id`` is unique,
    so a re-delivered event finds its own claim instead of making a second one.
    """

    __tablename__ = "retrain_claim"

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    event_id: str = Field(max_length=64, unique=True)  # the triggering event (idempotency)
    reason: str = Field(default="")
    cooldown_hours: float
    claimed_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    until: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    holds_window: bool = True  # False once the window passed, the start failed, or cooldown 0
    # claimed: may start a run | started: run created | failed: start failed (released) |
    # abandoned: never started, and the window was taken over by a later claim
    status: str = Field(default="claimed", max_length=16)
    flow_run_id: str | None = Field(default=None, max_length=64)
    error: str | None = None


Index(
    "uq_retrain_claim_window",
    RetrainClaim.__table__.c.model,  # type: ignore[attr-defined]
    unique=True,
    sqlite_where=RetrainClaim.__table__.c.holds_window,  # type: ignore[attr-defined]
    postgresql_where=RetrainClaim.__table__.c.holds_window,  # type: ignore[attr-defined]
)


class LabelsFile(SQLModel, table=True):
    """One landed file of outcomes (defaults, chargebacks), pseudonymised, in the lake."""

    __tablename__ = "labels_file"
    __table_args__ = (UniqueConstraint("model", "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    sha256: str = Field(max_length=64)  # of the file as it was landed
    filename: str = Field(max_length=500)
    key: str = Field(max_length=1000)  # the pseudonymised copy in the lake
    uri: str = Field(max_length=1000)
    rows: int
    with_decision_id: int  # rows that name the decision they are the outcome of
    bads: int  # rows whose label is the spec's positive label
    landed_by: str = Field(max_length=200)
    landed_at: dt.datetime = Field(default_factory=utcnow)
    event_id: str | None = Field(default=None, max_length=64)


class DriftResult(SQLModel, table=True):
    """One comparison of the monitor: a window of one model version against a baseline."""

    __tablename__ = "drift_result"

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # data | prediction | skew | quality
    baseline: str = Field(max_length=200)  # what the window was compared with
    window_start: dt.datetime
    window_end: dt.datetime
    rows: int
    worst_band: str | None = Field(default=None, max_length=16)  # stable | watch | alert
    features: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    event_id: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, index=True)


class ProfileRecord(SQLModel, table=True):
    """One whylogs profile in the lake: whose rows, which window, at which granularity.

    ``kind``: dataset | features | reference | decisions-inputs | decisions-features | scores.
    ``granularity``: hour | day | week | once (a reference). Several hourly profiles of the same
    window add up (merge); a day or week roll-up is kept once per window (re-rolling replaces it).
    """

    __tablename__ = "profile"
    __table_args__ = (
        Index("ix_profile_model_kind_window", "model", "kind", "granularity", "window_start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(max_length=63)
    kind: str = Field(max_length=32)
    version: str = Field(default="", max_length=64)  # model version, feature-set version, or ""
    window_start: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    window_end: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    granularity: str = Field(max_length=8)
    rows: int
    key: str = Field(max_length=1000, unique=True)
    uri: str = Field(max_length=1000)
    sha256: str = Field(max_length=64)
    size_bytes: int = 0
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class PerformanceResult(SQLModel, table=True):
    """One measurement of a version on its landed outcomes (the performance deployment)."""

    __tablename__ = "performance_result"

    id: int | None = Field(default=None, primary_key=True)
    model: str = Field(index=True, max_length=63)
    version: str = Field(max_length=32)
    labelled_rows: int
    degraded: bool
    breaching_vintages: list[str] = Field(sa_column=Column(JSON, nullable=False))
    overall_auc: float | None = None
    benchmark_auc: float | None = None
    estimated_vintage: str | None = Field(default=None, max_length=7)
    estimated_auc: float | None = None  # CBPE, from the newest vintage's scores alone
    report: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    event_id: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(default_factory=utcnow, index=True)
