"""Finding 11: loop events commit with their records, are delivered with retries and stable ids."""

from __future__ import annotations

import pytest
from sqlmodel import select

from riskops import catalog, events, outbox
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.outbox import OutboxEvent
from riskops.records import ModelVersionRecord
from tests.helpers import CollectingSender

EVENT = RiskopsEvent(
    name=events.MODEL_APPROVED, resource_id=events.model_resource("credit-scoring", "1"),
    payload={"model": "credit-scoring", "version": "1"},
    related=((events.model_resource("credit-scoring", "0"), "champion"),),
)  # fmt: skip


def test_an_event_never_outlives_a_rolled_back_record(engine):
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        outbox.enqueue(session=session, event=EVENT)
        raise RuntimeError("the record failed")
    with session_scope(engine) as session:
        assert session.exec(select(OutboxEvent)).all() == []


def test_delivery_retries_with_the_same_id_until_the_server_confirms(engine):
    with session_scope(engine) as session:
        event_id = outbox.enqueue(session=session, event=EVENT)
    sender = CollectingSender()
    sender.fail = True
    assert outbox.deliver(engine, send=sender) == 0  # the sweep logs and keeps it pending
    with pytest.raises(ConnectionError):
        outbox.deliver(engine, ids=[event_id], send=sender)  # a stage is told
    with session_scope(engine) as session:
        row = session.get(OutboxEvent, event_id)
        assert row.delivered_at is None and row.attempts == 2 and "unreachable" in row.last_error
    sender.fail = False
    assert outbox.deliver(engine, send=sender) == 1
    assert outbox.deliver(engine, send=sender) == 0  # delivered once, not again
    [(sent, sent_id)] = sender.sent
    assert sent_id == event_id and sent == EVENT


def test_a_feature_set_trains_one_version(engine):
    """A redelivered features.built (or data.accepted) finds the version and trains nothing."""
    with session_scope(engine) as session:
        assert catalog.version_for_feature_set(session=session, feature_set_id="fs-1") is None
        session.add(ModelVersionRecord(model="m", version="1", feature_set_id="fs-1",
                                       source="pipeline"))  # fmt: skip
    with session_scope(engine) as session:
        found = catalog.version_for_feature_set(session=session, feature_set_id="fs-1")
    assert found is not None and found.version == "1"
