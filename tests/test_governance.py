"""Sign-off rules, promotion and rollback of the champion alias, on the record."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from riskops import audit
from riskops.db import session_scope
from riskops.governance import promotion
from riskops.governance.promotion import PromotionRefused, current_champion, promote, rollback
from riskops.governance.signoff import judge, record_submission

# The MLflow registry is used through its SQL store directly (no server), whose queries use a
# loader strategy SQLAlchemy 2.1 deprecates; that is mlflow's code, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
MODEL = "credit-scoring"


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model(MODEL)
    for _ in range(3):
        client.create_model_version(MODEL, source=str(tmp_path), run_id=None)
    return client


def approve(engine, credit_spec, version: str, approver: str = "risk.officer@bank") -> None:
    verdict = judge(
        spec=credit_spec, version=version, approver=approver, decision="approve",
        justification="gates passed, benchmark comparable", trainer="riskops-pipeline",
        validator="riskops-validation",
    )  # fmt: skip
    with session_scope(engine) as session:
        record_submission(
            session=session, model=MODEL, version=version, approver=approver, decision="approve",
            justification="gates passed, benchmark comparable", verdict=verdict,
        )  # fmt: skip


def test_four_eyes_for_high_risk_models(credit_spec):
    kwargs = dict(version="1", decision="approve", justification="looks fine to me overall",
                  trainer="alice", validator="riskops-validation")  # fmt: skip
    refused = judge(spec=credit_spec, approver="Alice", **kwargs)
    assert not refused.accepted and "four-eyes" in refused.refusal
    assert judge(spec=credit_spec, approver="bob", **kwargs).accepted
    limited = credit_spec.model_copy(update={"risk_class": "limited"})
    assert judge(spec=limited, approver="alice", **kwargs).accepted
    short = judge(spec=credit_spec, approver="bob", **{**kwargs, "justification": "ok"})
    assert not short.accepted and "justification" in short.refusal


def test_unapproved_versions_never_serve(engine, client):
    with pytest.raises(PromotionRefused, match="never approved"):
        promote(engine=engine, client=client, model=MODEL, version="1", actor="x")
    assert current_champion(client, MODEL) is None


def test_promote_then_rollback_is_audited(engine, client, credit_spec):
    for version in ("1", "2"):
        approve(engine, credit_spec, version)
    first = promote(engine=engine, client=client, model=MODEL, version="1", actor="p")
    second = promote(engine=engine, client=client, model=MODEL, version="2", actor="p")
    assert first.changed and second.record.previous_version == "1"
    assert ("riskops.model.credit-scoring.1", "previous-champion") in second.event.related
    assert not promote(engine=engine, client=client, model=MODEL, version="2", actor="p").changed
    back = rollback(engine=engine, client=client, model=MODEL, to_version=None, actor="oncall")
    assert back.record.version == "1" and back.event.name == "riskops.model.rolled-back"
    assert current_champion(client, MODEL) == "1"
    with pytest.raises(PromotionRefused, match="v3 was never approved"):
        rollback(engine=engine, client=client, model=MODEL, to_version="3", actor="oncall")
    with session_scope(engine) as session:
        actions = [r.action for r in audit.rows_for_subject(session=session, subject_prefix=MODEL)]
        assert actions == [
            "signoff.approve", "signoff.approve", "model.promoted", "model.promoted",
            "model.rolled-back",
        ]  # fmt: skip
        assert audit.verify(session=session).ok


def test_racing_promotions_leave_one_champion_and_a_consistent_record(engine, client, credit_spec):
    for version in ("1", "2", "3"):
        approve(engine, credit_spec, version)
    barrier = threading.Barrier(3)

    def go(version: str) -> None:
        barrier.wait()
        promote(engine=engine, client=client, model=MODEL, version=version, actor=f"t{version}")

    threads = [threading.Thread(target=go, args=(v,)) for v in ("1", "2", "3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope(engine) as session:
        moves = promotion.history(session=session, model=MODEL)
    assert len(moves) == 3
    assert moves[0].previous_version is None
    for before, after in itertools.pairwise(moves):
        assert after.previous_version == before.version  # each move saw the one before it
    assert current_champion(client, MODEL) == moves[-1].version


def test_a_failed_record_puts_the_alias_back(engine, client, credit_spec, monkeypatch):
    for version in ("1", "2"):
        approve(engine, credit_spec, version)
    promote(engine=engine, client=client, model=MODEL, version="1", actor="p")

    def broken(**_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(promotion.audit, "append", broken)
    with pytest.raises(OSError, match="disk full"):
        promote(engine=engine, client=client, model=MODEL, version="2", actor="p")
    assert current_champion(client, MODEL) == "1"
    with session_scope(engine) as session:
        assert [m.version for m in promotion.history(session=session, model=MODEL)] == ["1"]
