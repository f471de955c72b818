"""The scoring service's SLO tracker, on a fake clock: exact counts that breach and that do not."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from riskops.serving.slo import SloTracker
from riskops.slo.settings import SloSettings
from riskops.specs import Slo

# buckets of 2 s; short window 10 s (5 buckets), long window 60 s (30 buckets)
SETTINGS = SloSettings(
    short_window_seconds=10, long_window_seconds=60, burn_rate=14.4, min_requests=20,
    cooldown_seconds=100,
)  # fmt: skip
# objectives 0.99: both windows breach above 14.4 x 1% = 14.4% bad requests
SLO = Slo(latency_threshold_ms=20, latency_objective=0.99, availability_objective=0.99)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _tracker(**overrides: object) -> tuple[SloTracker, Clock]:
    clock = Clock()
    settings = SETTINGS.model_copy(update=overrides)
    tracker = SloTracker(settings, announce=lambda payload: None, clock=clock)
    tracker.track("m", SLO, "2")
    return tracker, clock


def _send(tracker: SloTracker, n: int, *, errors: int = 0, slow: int = 0) -> None:
    for i in range(n):
        if i < errors:
            tracker.observe("m", 500, 0.001)
        elif i < errors + slow:
            tracker.observe("m", 200, 0.021)
        else:
            tracker.observe("m", 200, 0.020)  # on the threshold is within it (Prometheus' le)


def test_fifteen_errors_in_a_hundred_breach_and_fourteen_do_not():
    tracker, _ = _tracker()
    _send(tracker, 100, errors=14)  # 14% bad: burn 14.0x < 14.4x
    assert tracker.evaluate() == []
    tracker, _ = _tracker()
    _send(tracker, 100, errors=15)  # 15% bad: burn 15.0x in both windows
    (breach,) = tracker.evaluate()
    assert breach["model"] == "m" and breach["version"] == "2" and breach["slo"] == "errors"
    assert breach["severity"] == "page" and breach["source"] == "service"
    assert breach["burn_rates"] == {"long": 15.0, "short": 15.0}
    assert breach["counts"] == {"long": {"bad": 15, "total": 100},
                                "short": {"bad": 15, "total": 100}}  # fmt: skip
    assert breach["windows"] == {"long": "1m", "short": "10s"}
    assert "15 of 100 requests were 5xx answers" in breach["summary"]


def test_slow_answers_breach_the_latency_slo_and_errors_are_not_counted_as_slow():
    tracker, _ = _tracker()
    _send(tracker, 100, slow=14)
    assert tracker.evaluate() == []
    tracker, _ = _tracker()
    _send(tracker, 110, errors=10, slow=15)  # 15 slow of 100 answered; errors 9% (no breach)
    (breach,) = tracker.evaluate()
    assert breach["slo"] == "latency" and breach["threshold_ms"] == 20
    assert breach["counts"]["short"] == {"bad": 15, "total": 100}


def test_a_burst_that_has_left_the_short_window_does_not_breach():
    tracker, clock = _tracker()
    _send(tracker, 100, errors=50)
    clock.now += 12  # six buckets later: out of the 10 s window, still inside the 60 s one
    _send(tracker, 100)
    (errors, _latency) = tracker.burns("m")
    assert (errors.long_bad, errors.long_total) == (50, 200)
    assert (errors.short_bad, errors.short_total) == (0, 100)
    assert tracker.evaluate() == []
    clock.now += 60  # and out of the long window too
    (errors, _latency) = tracker.burns("m")
    assert (errors.long_bad, errors.long_total) == (0, 0)


def test_too_few_requests_never_breach():
    tracker, _ = _tracker()
    _send(tracker, 19, errors=19)
    assert tracker.evaluate() == []
    _send(tracker, 1, errors=1)
    assert len(tracker.evaluate()) == 1


def test_once_per_model_and_slo_per_cooldown():
    tracker, clock = _tracker()
    _send(tracker, 100, errors=50)
    assert len(tracker.evaluate()) == 1
    clock.now += 4
    _send(tracker, 100, errors=50)
    assert tracker.evaluate() == []  # still burning, inside the 100 s cooldown
    clock.now += 100
    _send(tracker, 100, errors=50)
    assert len(tracker.evaluate()) == 1


def test_a_new_champion_starts_its_counts_again_and_unknown_models_are_skipped():
    tracker, _ = _tracker()
    _send(tracker, 100, errors=50)
    tracker.track("m", SLO, "2")  # same version: counts kept
    assert tracker.burns("m")[0].short_bad == 50
    tracker.track("m", SLO, "1")  # rolled back to v1: v2's errors are not v1's
    assert tracker.burns("m")[0].short_total == 0
    tracker.observe("(unknown)", 500, 0.0)
    assert set(tracker.models) == {"m"}


def test_short_window_must_be_shorter_than_the_long_one():
    with pytest.raises(ValueError, match="SHORT_WINDOW_SECONDS"):
        SloSettings(short_window_seconds=3600, long_window_seconds=3600)


def test_the_watch_task_follows_champions_and_announces_off_the_loop():
    announced: list[dict] = []
    clock = Clock()
    tracker = SloTracker(SETTINGS.model_copy(update={"evaluate_seconds": 0.01}),
                         announce=announced.append, clock=clock)  # fmt: skip
    champion = SimpleNamespace(version="2", spec=SimpleNamespace(slo=SLO))
    states = {"m": SimpleNamespace(champion=champion), "idle": SimpleNamespace(champion=None)}
    service = SimpleNamespace(models=SimpleNamespace(states=states))

    async def scenario() -> None:
        task = asyncio.create_task(tracker.watch(service))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert set(tracker.models) == {"m"}
        _send(tracker, 40, errors=40)
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert [(p["model"], p["slo"]) for p in announced] == [("m", "errors")]


def test_the_services_announcer_commits_the_breach_and_never_starts_a_prefect_server(
    engine, monkeypatch
):
    from sqlmodel import select

    from riskops.db import session_scope
    from riskops.outbox import OutboxEvent
    from riskops.serving.server import _breach_announcer

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    tracker, _ = _tracker()
    _send(tracker, 100, errors=15)
    (payload,) = tracker.evaluate()
    announce = _breach_announcer(SimpleNamespace(engine=engine))
    announce(payload)
    announce(payload)  # the same breach again: one row
    with session_scope(engine) as session:
        (row,) = session.exec(select(OutboxEvent)).all()
    assert row.id == payload["breach_id"] and row.name == "riskops.sla.breached"
    assert row.resource_id == "riskops.service.m" and row.delivered_at is None
    assert row.related == [["riskops.model.m.2", "served"]]
