"""The retraining cooldown: one retraining run per model per window, however many events ask.

Prefect automations have no cooldown, and drift arrives in bursts (50 events in a minute, the
same again after a worker restarts). Whatever reacts to `riskops.drift.detected` therefore
claims the right to retrain here, in the platform DB, before it starts a run:

    claim = claim_retraining(engine, model, cooldown_hours=spec.monitoring.retrain_cooldown_hours,
                             reason="psi 0.31 on income", event_id=str(event.id))
    if claim is None or claim.status != "claimed":
        return                                  # refused, or this event already started its run
    try:
        run = run_deployment("retrain/...", parameters=..., timeout=0,
                             idempotency_key=idempotency_key(claim))
    except Exception as error:
        release(engine, claim.id, error=str(error))   # a failed start must not block for 24 h
        raise
    mark_started(engine, claim.id, flow_run_id=str(run.id))

Why a claim row that *holds the window* (a partial unique index on ``model`` where
``holds_window``), taken over with a compare-and-set UPDATE, and not a unique ``(model, slot)``
key: slots are fixed buckets (``floor(now / cooldown)``), so events at 23:59 and 00:01 fall in
two slots and both retrain, and changing ``retrain_cooldown_hours`` reshuffles every slot. A
claim carries its own ``until``: the window starts at the retraining it stands for. Of racing
claimants every one may clear an expired holder (the UPDATE is idempotent), but the index lets
exactly one insert succeed; the others get a unique violation and are refused. That holds on
PostgreSQL under READ COMMITTED (the second insert waits for the first to commit, then fails)
and on SQLite (writers are serialised by BEGIN IMMEDIATE; the index is the backstop). Each claim
stays as a row, so the history of retraining decisions is kept.

Failed starts: :func:`release` gives the window back at once (or after ``retry_after``). The
next drift event comes from the next monitoring run, so an outage of the Prefect API costs one
monitoring interval, not a day of a degraded model. A claim whose process died before it could
start or release anything (a worker restart) is taken over once ``start_grace`` has passed
without :func:`mark_started`. A run that *started* and then failed keeps its window: a
retraining that crashes needs a person (run the retraining deployment by hand), not a retry
from every drift event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from riskops.db import session_scope
from riskops.records import RetrainClaim, utcnow

DEFAULT_START_GRACE = dt.timedelta(minutes=15)

CLAIMED = "claimed"  # holds the right to start a run
STARTED = "started"  # the run was created (flow_run_id)
FAILED = "failed"  # the start failed and the claim was released
ABANDONED = "abandoned"  # never started; a later claim took the window over


def _utc(value: dt.datetime) -> dt.datetime:
    """The same instant in UTC; a naive value (SQLite hands those back) is taken as UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _now(now: dt.datetime | None) -> dt.datetime:
    return _utc(now) if now is not None else utcnow()


def _detached(claim: RetrainClaim) -> RetrainClaim:
    # Called after the session closed: normalising the times must not become an UPDATE.
    claim.claimed_at = _utc(claim.claimed_at)
    claim.until = _utc(claim.until)
    return claim


def blocks(claim: RetrainClaim, now: dt.datetime, start_grace: dt.timedelta) -> bool:
    """True when ``claim`` still forbids a new retraining at ``now``."""
    if not claim.holds_window or _utc(claim.until) <= now:
        return False
    # Claimed but never started nor released: its process died (a worker restart).
    return not (claim.status == CLAIMED and _utc(claim.claimed_at) + start_grace <= now)


def idempotency_key(claim: RetrainClaim) -> str:
    """The Prefect ``idempotency_key`` for the run of ``claim``: a retried start makes no twin."""
    return f"riskops-retrain-{claim.model}-{claim.id}"


def _by_event(session: Session, event_id: str) -> RetrainClaim | None:
    return session.exec(select(RetrainClaim).where(RetrainClaim.event_id == event_id)).first()


def _holder(session: Session, model: str) -> RetrainClaim | None:
    return session.exec(
        select(RetrainClaim).where(RetrainClaim.model == model, col(RetrainClaim.holds_window))
    ).first()


def _clear_passed_window(
    session: Session, model: str, now: dt.datetime, start_grace: dt.timedelta
) -> None:
    # Compare-and-set: only a holder whose window has passed (or whose start never came) loses
    # the flag. Racing claimants may all run this; none of them can clear a live window.
    stale = (col(RetrainClaim.status) == CLAIMED) & (
        col(RetrainClaim.claimed_at) <= now - start_grace
    )
    session.execute(
        update(RetrainClaim)
        .where(
            col(RetrainClaim.model) == model,
            col(RetrainClaim.holds_window),
            (col(RetrainClaim.until) <= now) | stale,
        )
        .values(
            holds_window=False,
            status=case(
                (col(RetrainClaim.status) == CLAIMED, ABANDONED), else_=col(RetrainClaim.status)
            ),
        )
    )


def claim_retraining(
    engine: Engine,
    model: str,
    *,
    cooldown_hours: float,
    reason: str,
    event_id: str,
    now: dt.datetime | None = None,
    start_grace: dt.timedelta = DEFAULT_START_GRACE,
) -> RetrainClaim | None:
    """Claim the right to start one retraining run of ``model``; None when the cooldown refuses.

    Args:
        cooldown_hours: the spec's ``monitoring.retrain_cooldown_hours``; 0 means no cooldown
            (every claim wins and none holds a window).
        reason: why retraining is wanted (shown in messages and kept with the claim).
        event_id: the triggering event's id. Claiming the same id again returns the claim it
            already made (whatever its status), so a re-delivered event never retrains twice.
        now: the current time (tests); default the clock, in UTC.
        start_grace: how long a claim may stay unstarted before another may take it over.

    Returns:
        The new claim (status ``claimed``: start the run), the earlier claim of the same event,
        or None when another claim holds the window; :func:`cooldown_state` says which.
    """
    if cooldown_hours < 0:
        raise ValueError(
            f"retrain_cooldown_hours of {model!r} is {cooldown_hours}: it must be >= 0 "
            "(0 disables the cooldown); fix monitoring.retrain_cooldown_hours in its spec"
        )
    if not event_id or len(event_id) > 64:
        raise ValueError(f"event_id {event_id!r} of a retraining claim must be 1-64 characters")
    now = _now(now)
    windowed = cooldown_hours > 0
    claim = RetrainClaim(
        model=model,
        event_id=event_id,
        reason=reason,
        cooldown_hours=cooldown_hours,
        claimed_at=now,
        until=now + dt.timedelta(hours=cooldown_hours),
        holds_window=windowed,
    )
    with session_scope(engine) as session:
        earlier = _by_event(session, event_id)
        if earlier is not None:
            return _detached_after(session, earlier)
        if windowed:
            holder = _holder(session, model)
            if holder is not None and blocks(holder, now, start_grace):
                return _refused(session, event_id)
            _clear_passed_window(session, model, now, start_grace)
        try:
            with session.begin_nested():
                session.add(claim)
        except IntegrityError:
            return _refused(session, event_id)
    return _detached(claim)


def _detached_after(session: Session, claim: RetrainClaim) -> RetrainClaim:
    session.expunge(claim)
    return _detached(claim)


def _refused(session: Session, event_id: str) -> RetrainClaim | None:
    # The winner may be this same event, delivered twice at once and committed since our first
    # look (each statement sees fresh commits under READ COMMITTED): then it is our claim.
    earlier = _by_event(session, event_id)
    return _detached_after(session, earlier) if earlier is not None else None


def _change(engine: Engine, claim_id: int, **values: object) -> RetrainClaim:
    with session_scope(engine) as session:
        claim = session.get(RetrainClaim, claim_id, with_for_update=True)
        if claim is None:
            raise LookupError(f"retraining claim {claim_id} does not exist")
        for key, value in values.items():
            setattr(claim, key, value)
        session.add(claim)
    return _detached(claim)


def mark_started(engine: Engine, claim_id: int, *, flow_run_id: str) -> RetrainClaim:
    """Record that the run of ``claim_id`` was created; its window now lasts the full cooldown.

    Recorded even on a claim taken over meanwhile (a start slower than ``start_grace``): the
    run exists, and the history must say so.
    """
    return _change(engine, claim_id, status=STARTED, flow_run_id=flow_run_id, error=None)


def release(
    engine: Engine,
    claim_id: int,
    *,
    error: str,
    retry_after: dt.timedelta = dt.timedelta(0),
    now: dt.datetime | None = None,
) -> RetrainClaim:
    """Give back the window of a claim whose run could not be started.

    Args:
        error: why the start failed (kept with the claim, shown in the cooldown message).
        retry_after: keep the window this much longer (a back-off); default: free it now.

    Raises:
        ValueError: the claim's run was started; its window stands (see the module doc).
    """
    now = _now(now)
    with session_scope(engine) as session:
        claim = session.get(RetrainClaim, claim_id, with_for_update=True)
        if claim is None:
            raise LookupError(f"retraining claim {claim_id} does not exist")
        if claim.status == STARTED:
            raise ValueError(
                f"retraining claim {claim_id} of {claim.model} started flow run "
                f"{claim.flow_run_id}; its cooldown stands. To retrain again now, run the "
                "retraining deployment by hand"
            )
        claim.status = FAILED
        claim.error = error[:2000]
        if retry_after > dt.timedelta(0) and claim.holds_window:
            claim.until = min(_utc(claim.until), now + retry_after)
        else:
            claim.holds_window = False
        session.add(claim)
    return _detached(claim)


@dataclass(frozen=True)
class CooldownState:
    """Where the retraining cooldown of one model stands at ``now``."""

    model: str
    now: dt.datetime
    holder: RetrainClaim | None  # the claim holding the window, if one does
    last: RetrainClaim | None  # the newest claim, whatever its status
    blocked: bool  # a claim now would be refused

    @property
    def next_allowed_at(self) -> dt.datetime:
        if not self.blocked or self.holder is None:
            return self.now
        return _utc(self.holder.until)

    def message(self) -> str:
        """One sentence for Slack, logs and the CLI."""
        if not self.blocked or self.holder is None:
            return f"retraining of {self.model} is not in a cooldown: a claim now would win"
        h = self.holder
        run = f"flow run {h.flow_run_id}" if h.flow_run_id else f"status {h.status}"
        return (
            f"retraining of {self.model} is in its {h.cooldown_hours:g} h cooldown: claimed "
            f"{_utc(h.claimed_at):%Y-%m-%d %H:%M}Z by event {h.event_id} ({h.reason or 'no reason'}"
            f"; {run}); the next retraining may start after {self.next_allowed_at:%Y-%m-%d %H:%M}Z"
        )


def cooldown_state(
    engine: Engine,
    model: str,
    *,
    now: dt.datetime | None = None,
    start_grace: dt.timedelta = DEFAULT_START_GRACE,
) -> CooldownState:
    """The claim holding ``model``'s window (if any), its newest claim, and whether it blocks."""
    now = _now(now)
    with session_scope(engine) as session:
        holder = _holder(session, model)
        last = session.exec(
            select(RetrainClaim)
            .where(RetrainClaim.model == model)
            .order_by(col(RetrainClaim.id).desc())
        ).first()
    holder = _detached(holder) if holder is not None else None
    last = _detached(last) if last is not None else None
    blocked = holder is not None and blocks(holder, now, start_grace)
    return CooldownState(model=model, now=now, holder=holder, last=last, blocked=blocked)
