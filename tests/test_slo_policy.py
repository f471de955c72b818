"""The rollback policy on the records: inside and outside the guard window, off, idempotent."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from sqlmodel import select

from riskops import audit
from riskops.db import session_scope
from riskops.governance.promotion import current_champion, promote
from riskops.outbox import OutboxEvent
from riskops.records import PromotionRecord
from riskops.slo.breach import breach_payload
from riskops.slo.policy import GUARD, REVIEWED, react_to_breach
from riskops.slo.settings import SloSettings
from tests.test_governance import MODEL, approve

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
ON = SloSettings(auto_rollback=True, guard_window_minutes=30)


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model(MODEL)
    for _ in range(3):
        client.create_model_version(MODEL, source=str(tmp_path), run_id=None)
    return client


@pytest.fixture
def promoted(engine, client) -> dt.datetime:
    """v1 then v2 promoted; returns the moment of v2's promotion."""
    for version in ("1", "2", "3"):
        approve(engine, version)
    promote(engine=engine, client=client, model=MODEL, version="1", actor="p")
    move = promote(engine=engine, client=client, model=MODEL, version="2", actor="p")
    return move.record.moved_at.replace(tzinfo=dt.UTC)


def _breach(at: dt.datetime, version: str | None = "2", slo: str = "errors") -> dict:
    return breach_payload(model=MODEL, slo=slo, severity="page", source="service",
                          version=version, detected_at=at, burn_rates={"long": 20, "short": 40},
                          windows={"long": "1h", "short": "5m"})  # fmt: skip


def _reviews(engine) -> list:
    with session_scope(engine) as session:
        return [r for r in audit.rows_for_subject(session=session, subject_prefix=MODEL)
                if r.action == REVIEWED]  # fmt: skip


def _rollbacks(engine) -> list[PromotionRecord]:
    with session_scope(engine) as session:
        return list(session.exec(select(PromotionRecord).where(PromotionRecord.kind == "rollback")))


def test_a_breach_inside_the_guard_window_rolls_back_as_the_guard_with_the_breach_as_reason(
    engine, client, promoted
):
    breach = _breach(promoted + dt.timedelta(minutes=29))
    decision = react_to_breach(engine=engine, client=client, settings=ON, breach=breach,
                               now=promoted + dt.timedelta(minutes=30))  # fmt: skip
    assert decision.outcome == "rolled-back" and decision.champion == "1"
    assert decision.move is not None and decision.move.changed
    assert current_champion(client, MODEL) == "1"
    (back,) = _rollbacks(engine)
    assert back.actor == GUARD and back.version == "1" and back.previous_version == "2"
    assert breach["breach_id"] in back.reason and "errors budget burning 20x over 1h" in back.reason
    with session_scope(engine) as session:
        trail = audit.rows_for_subject(session=session, subject_prefix=MODEL)
        assert audit.verify(session=session).ok
        queued = [row.name for row in session.exec(select(OutboxEvent))]
    rolled = [r for r in trail if r.action == "model.rolled-back"]
    assert len(rolled) == 1 and rolled[0].actor == GUARD
    (review,) = _reviews(engine)
    assert review.payload["outcome"] == "rolled-back" and review.payload["champion"] == "1"
    assert queued.count("riskops.model.rolled-back") == 1


def test_outside_the_guard_window_or_before_the_promotion_nothing_moves(engine, client, promoted):
    late = react_to_breach(engine=engine, client=client, settings=ON,
                           breach=_breach(promoted + dt.timedelta(minutes=31)),
                           now=promoted + dt.timedelta(minutes=31))  # fmt: skip
    assert late.outcome == "announced-only" and "outside the 30 min guard window" in late.why
    early = react_to_breach(engine=engine, client=client, settings=ON,
                            breach=_breach(promoted - dt.timedelta(minutes=1)))  # fmt: skip
    assert early.outcome == "announced-only" and "before v2 was promoted" in early.why
    other = react_to_breach(engine=engine, client=client, settings=ON,
                            breach=_breach(promoted, version="1"))  # fmt: skip
    assert other.outcome == "announced-only" and "the champion is v2" in other.why
    assert current_champion(client, MODEL) == "2" and _rollbacks(engine) == []
    assert [r.payload["outcome"] for r in _reviews(engine)] == ["announced-only"] * 3


def test_with_the_policy_off_the_breach_is_reviewed_and_nothing_moves(engine, client, promoted):
    off = SloSettings()
    assert off.auto_rollback is False  # the default
    decision = react_to_breach(engine=engine, client=client, settings=off,
                               breach=_breach(promoted + dt.timedelta(minutes=1)))  # fmt: skip
    assert decision.outcome == "announced-only" and "policy is off" in decision.why
    assert current_champion(client, MODEL) == "2" and _rollbacks(engine) == []
    (review,) = _reviews(engine)
    assert review.actor == GUARD and review.payload["auto_rollback"] is False


def test_two_breach_events_roll_back_once_and_never_further(engine, client, promoted):
    at = promoted + dt.timedelta(minutes=2)
    first = react_to_breach(engine=engine, client=client, settings=ON, breach=_breach(at), now=at)
    latency = _breach(at, slo="latency")  # the other SLO of the same bad version
    second = react_to_breach(engine=engine, client=client, settings=ON, breach=latency, now=at)
    # an alert rule's breach names no version
    unversioned = react_to_breach(engine=engine, client=client, settings=ON,
                                  breach=_breach(at, version=None), now=at)  # fmt: skip
    assert first.outcome == "rolled-back"
    assert second.outcome == "already-rolled-back" and "rolled back already" in second.why
    assert unversioned.outcome == "announced-only" and "last move was a rollback" in unversioned.why
    assert current_champion(client, MODEL) == "1" and len(_rollbacks(engine)) == 1


def test_two_breaches_at_once_roll_back_once(engine, client, promoted):
    """Both read the records before either rolls back; the explicit target stops the second."""
    at = promoted + dt.timedelta(minutes=2)
    results: list = []
    barrier = threading.Barrier(2)

    def react(slo: str) -> None:
        barrier.wait()
        results.append(react_to_breach(engine=engine, client=client, settings=ON,
                                       breach=_breach(at, slo=slo), now=at))  # fmt: skip

    threads = [threading.Thread(target=react, args=(slo,)) for slo in ("errors", "latency")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.outcome for r in results) == ["already-rolled-back", "rolled-back"]
    assert current_champion(client, MODEL) == "1" and len(_rollbacks(engine)) == 1


def test_a_first_champion_has_nothing_to_return_to(engine, client):
    approve(engine, "1")
    move = promote(engine=engine, client=client, model=MODEL, version="1", actor="p")
    decision = react_to_breach(engine=engine, client=client, settings=ON,
                               breach=_breach(move.record.moved_at.replace(tzinfo=dt.UTC),
                                              version="1"))  # fmt: skip
    assert decision.outcome == "announced-only" and "first champion" in decision.why
    assert current_champion(client, MODEL) == "1"


def test_an_alert_without_a_version_label_counts_only_once_its_short_window_is_the_new_version(
    engine, client, promoted
):
    # Within its 5 minute short window the alert still holds v1's requests: not v2's fault.
    early = _breach(promoted + dt.timedelta(minutes=3), version=None)
    decision = react_to_breach(engine=engine, client=client, settings=ON, breach=early,
                               now=promoted + dt.timedelta(minutes=3))  # fmt: skip
    assert decision.outcome == "announced-only" and "within its short window (5m)" in decision.why
    assert current_champion(client, MODEL) == "2"
    later = _breach(promoted + dt.timedelta(minutes=6), version=None)
    decision = react_to_breach(engine=engine, client=client, settings=ON, breach=later,
                               now=promoted + dt.timedelta(minutes=6))  # fmt: skip
    assert decision.outcome == "rolled-back" and current_champion(client, MODEL) == "1"
    assert [r.subject for r in _reviews(engine)] == [f"{MODEL}/2"] * 2  # judged from the records


def test_a_forged_or_slow_breach_cannot_reach_an_old_promotion(engine, client, promoted):
    # The breach claims a time just after the promotion, but the policy's clock says v2 has
    # been champion for five hours: the guard window is long past.
    forged = _breach(promoted + dt.timedelta(minutes=1))
    decision = react_to_breach(engine=engine, client=client, settings=ON, breach=forged,
                               now=promoted + dt.timedelta(hours=5))  # fmt: skip
    assert decision.outcome == "announced-only" and "beyond the 30 min guard window" in decision.why
    future = _breach(promoted + dt.timedelta(hours=2))
    decision = react_to_breach(engine=engine, client=client, settings=ON, breach=future,
                               now=promoted + dt.timedelta(minutes=2))  # fmt: skip
    assert decision.outcome == "announced-only" and "in the future" in decision.why
    ticket = {**_breach(promoted + dt.timedelta(minutes=2)), "severity": "ticket"}
    decision = react_to_breach(engine=engine, client=client, settings=ON, breach=ticket,
                               now=promoted + dt.timedelta(minutes=2))  # fmt: skip
    assert decision.outcome == "announced-only" and "only a page" in decision.why
    assert current_champion(client, MODEL) == "2" and _rollbacks(engine) == []


def test_a_champion_moved_since_the_decision_is_not_rolled_back(engine, client, promoted):
    from riskops.governance.promotion import PromotionRefused, rollback

    promote(engine=engine, client=client, model=MODEL, version="3", actor="p")
    with pytest.raises(PromotionRefused, match="champion is v3, not v2 as expected"):
        rollback(engine=engine, client=client, model=MODEL, to_version="1", actor=GUARD,
                 reason="stale", expect_champion="2")  # fmt: skip
    assert current_champion(client, MODEL) == "3" and _rollbacks(engine) == []
