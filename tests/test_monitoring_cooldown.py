"""The retraining cooldown on SQLite and PostgreSQL: bursts, races, restarts, expiry."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from riskops.db import make_engine, session_scope
from riskops.monitoring import cooldown
from riskops.monitoring.cooldown import (
    claim_retraining,
    cooldown_state,
    idempotency_key,
    mark_started,
    release,
)
from riskops.records import RetrainClaim

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
MODEL = "credit-scoring"


def _claim(engine, event_id: str, *, now=T0, hours: float = 24) -> RetrainClaim | None:
    return claim_retraining(
        engine, MODEL, cooldown_hours=hours, reason="psi 0.31 on income", event_id=event_id,
        now=now,
    )  # fmt: skip


def _burst(engine, prefix: str, n: int, *, now=T0, hours: float = 24) -> list[Any]:
    """``n`` claims released at once from ``n`` threads."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = _claim(engine, f"{prefix}-{i}", now=now, hours=hours)
        except BaseException as error:  # surfaced below: a crash is not a refusal
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def _rows(engine) -> list[RetrainClaim]:
    with session_scope(engine) as session:
        return list(session.exec(select(RetrainClaim).order_by(RetrainClaim.id)))


def test_fifty_concurrent_claims_from_threads_make_one_winner(engine):
    results = _burst(engine, "evt", 50)
    winners = [c for c in results if c is not None]
    assert len(winners) == 1
    assert winners[0].status == "claimed" and winners[0].until == T0 + dt.timedelta(hours=24)
    rows = _rows(engine)
    assert [(r.event_id, r.holds_window) for r in rows] == [(winners[0].event_id, True)]
    state = cooldown_state(engine, MODEL, now=T0 + dt.timedelta(minutes=1))
    assert state.blocked and state.holder is not None and state.holder.id == winners[0].id
    assert winners[0].event_id in state.message() and "24 h cooldown" in state.message()


def _process_round(url: str, round_: str, claims: int, now_iso: str, barrier, out) -> None:
    """One worker process: a fresh engine (as after a restart), ``claims`` threads at once."""
    engine = make_engine(url)
    now = dt.datetime.fromisoformat(now_iso)
    barrier.wait()  # every process has its engine: start together
    results = _burst(engine, round_, claims, now=now)
    for claim in results:
        if claim is not None and claim.status == "claimed":
            mark_started(engine, claim.id, flow_run_id=f"run-{claim.event_id}")
    out.put([(c.event_id, c.status) if c is not None else None for c in results])
    engine.dispose()


def _in_processes(url: str, round_: str, now: dt.datetime, processes: int = 5) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")  # no state inherited: like a restarted worker
    barrier = ctx.Barrier(processes)
    out = ctx.Queue()
    procs = [
        ctx.Process(
            target=_process_round,
            args=(url, f"{round_}-p{p}", 10, now.isoformat(), barrier, out),
        )
        for p in range(processes)
    ]
    for proc in procs:
        proc.start()
    results = [item for _ in procs for item in out.get(timeout=120)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0, f"claim process exited with {proc.exitcode}"
    return results


def test_claims_from_separate_processes_make_one_winner_and_restarts_do_not_reset(
    database_url, engine
):
    first = _in_processes(database_url, "burst", T0)
    won = [r for r in first if r is not None]
    assert len(first) == 50 and len(won) == 1 and won[0][1] == "claimed"
    # The workers restart an hour later and the monitor fires again: nobody wins.
    again = _in_processes(database_url, "after-restart", T0 + dt.timedelta(hours=1), processes=2)
    assert again == [None] * 20
    rows = _rows(engine)
    assert len(rows) == 1 and rows[0].status == "started"
    assert rows[0].flow_run_id == f"run-{rows[0].event_id}"


def test_after_the_cooldown_one_more_claim_wins(engine):
    (first,) = [c for c in _burst(engine, "day1", 10) if c is not None]
    mark_started(engine, first.id, flow_run_id="run-1")
    assert _burst(engine, "late", 10, now=T0 + dt.timedelta(hours=23, minutes=59)) == [None] * 10
    later = T0 + dt.timedelta(hours=24)
    winners = [c for c in _burst(engine, "day2", 10, now=later) if c is not None]
    assert len(winners) == 1 and winners[0].until == later + dt.timedelta(hours=24)
    by_event = {r.event_id: r for r in _rows(engine)}
    assert by_event[first.event_id].holds_window is False
    assert by_event[first.event_id].status == "started"  # history is kept as it was
    assert [r.event_id for r in by_event.values() if r.holds_window] == [winners[0].event_id]


def test_cooldown_zero_lets_every_claim_win(engine):
    results = _burst(engine, "nocool", 20, hours=0)
    assert all(c is not None and c.status == "claimed" for c in results)
    assert len({c.id for c in results}) == 20
    assert not cooldown_state(engine, MODEL, now=T0).blocked


def test_an_event_claimed_twice_is_idempotent(engine):
    claim = _claim(engine, "evt-1")
    assert claim is not None
    again = _claim(engine, "evt-1", now=T0 + dt.timedelta(minutes=5))
    assert again is not None and again.id == claim.id and again.status == "claimed"
    assert idempotency_key(again) == idempotency_key(claim)  # the same Prefect run
    mark_started(engine, claim.id, flow_run_id="run-1")
    # Re-delivered after the run started, even after the window: the same claim, not a new one.
    replay = _claim(engine, "evt-1", now=T0 + dt.timedelta(days=3))
    assert replay is not None and replay.id == claim.id and replay.status == "started"
    assert len(_rows(engine)) == 1


def test_the_same_event_delivered_concurrently_makes_one_claim(engine):
    results: list[Any] = []
    barrier = threading.Barrier(10)

    def worker() -> None:
        barrier.wait()
        results.append(_claim(engine, "dup"))

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 10 and len({c.id for c in results}) == 1
    assert len(_rows(engine)) == 1


def test_a_failed_start_gives_the_window_back(engine):
    claim = _claim(engine, "evt-1")
    assert claim is not None
    released = release(engine, claim.id, error="PrefectHTTPStatusError: 503")
    assert released.status == "failed" and not released.holds_window
    assert not cooldown_state(engine, MODEL, now=T0).blocked
    retry = _claim(engine, "evt-2", now=T0 + dt.timedelta(minutes=1))
    assert retry is not None and retry.status == "claimed"


def test_a_release_with_back_off_holds_the_window_until_then(engine):
    claim = _claim(engine, "evt-1")
    assert claim is not None
    release(engine, claim.id, error="timeout", retry_after=dt.timedelta(minutes=30), now=T0)
    assert _claim(engine, "evt-2", now=T0 + dt.timedelta(minutes=29)) is None
    assert _claim(engine, "evt-3", now=T0 + dt.timedelta(minutes=30)) is not None


def test_a_started_run_cannot_be_released(engine):
    claim = _claim(engine, "evt-1")
    assert claim is not None
    mark_started(engine, claim.id, flow_run_id="run-1")
    with pytest.raises(ValueError, match=r"run-1.*cooldown stands"):
        release(engine, claim.id, error="training crashed")
    assert cooldown_state(engine, MODEL, now=T0 + dt.timedelta(hours=1)).blocked


def test_a_claim_whose_process_died_before_starting_is_taken_over_after_the_grace(engine):
    dead = _claim(engine, "evt-1")
    assert dead is not None
    grace = cooldown.DEFAULT_START_GRACE
    assert _claim(engine, "evt-2", now=T0 + grace - dt.timedelta(seconds=1)) is None
    takeover = _claim(engine, "evt-3", now=T0 + grace)
    assert takeover is not None and takeover.status == "claimed"
    statuses = {r.event_id: (r.status, r.holds_window) for r in _rows(engine)}
    assert statuses == {"evt-1": ("abandoned", False), "evt-3": ("claimed", True)}


def test_models_have_separate_windows(engine):
    assert _claim(engine, "evt-1") is not None
    other = claim_retraining(
        engine, "fraud-detection", cooldown_hours=24, reason="r", event_id="evt-2", now=T0
    )
    assert other is not None


def test_the_database_itself_refuses_a_second_window_holder(engine):
    assert _claim(engine, "evt-1") is not None
    rogue = RetrainClaim(
        model=MODEL, event_id="rogue", cooldown_hours=24, claimed_at=T0,
        until=T0 + dt.timedelta(hours=24), holds_window=True,
    )  # fmt: skip
    with Session(engine) as session, pytest.raises(IntegrityError):
        session.add(rogue)
        session.commit()


def test_bad_arguments_are_refused_with_the_field_named(engine):
    with pytest.raises(ValueError, match="retrain_cooldown_hours"):
        claim_retraining(engine, MODEL, cooldown_hours=-1, reason="r", event_id="e")
    with pytest.raises(ValueError, match="event_id"):
        claim_retraining(engine, MODEL, cooldown_hours=1, reason="r", event_id="")
