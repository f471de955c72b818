"""Sign-off rules, promotion and rollback of the champion alias, on the record."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from riskops import audit
from riskops.db import session_scope
from riskops.governance import promotion
from riskops.governance.people import People, people_behind
from riskops.governance.promotion import (
    PromotionRefused,
    RegistryUnavailable,
    current_champion,
    promote,
    rollback,
)
from riskops.governance.reconcile import reconcile, restore
from riskops.governance.signoff import judge
from riskops.outbox import OutboxEvent
from riskops.records import ValidationRecord
from tests.governance_helpers import (
    legacy_approval,
    pipeline_version,
    principal,
    verified_approval,
)

# The MLflow registry is used through its SQL store directly (no server), whose queries use a
# loader strategy SQLAlchemy 2.1 deprecates; that is mlflow's code, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
MODEL = "credit-scoring"
PASSED = ValidationRecord(model=MODEL, version="1", passed=True, failed_gates=[], report={})


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_registered_model(MODEL)
    for _ in range(3):
        client.create_model_version(MODEL, source=str(tmp_path), run_id=None)
    return client


def approve(engine, version: str, approver: str = "risk.officer@bank") -> None:
    """A validated version with an authenticated approval."""
    with session_scope(engine) as session:
        session.add(ValidationRecord(model=MODEL, version=version, passed=True, failed_gates=[],
                                     report={}))  # fmt: skip
    verified_approval(engine, MODEL, version, approver)


def _judge(spec, approver: str, role: str | None = "risk-officer", **overrides):
    kwargs = dict(
        spec=spec, version="1", approver=approver, approver_role=role, decision="approve",
        justification="looks fine to me overall", validation=PASSED, verified=True,
        people=People(("alice",), (), (("alice", "landed credit-scoring-abc"),)),
    )  # fmt: skip
    return judge(**{**kwargs, **overrides})


def test_four_eyes_by_identity_for_high_risk_models(credit_spec):
    """Finding 1: the people behind a version are principals; a typed name proves nothing."""
    refused = _judge(credit_spec, "alice")
    assert not refused.accepted and "four-eyes" in refused.refusal and "landed" in refused.refusal
    assert _judge(credit_spec, "bob").accepted
    # the approver must be an authenticated risk officer, whatever name is typed
    assert "unverified" in _judge(credit_spec, "bob", verified=False).refusal
    assert "only a risk-officer" in _judge(credit_spec, "bob", role="model-developer").refusal
    # an unknown developer (notebook run user not mapped, file dropped without `riskops land`)
    unknown = People((), ("who registered v1: MLflow run r user 'nb' is not mapped",), ())
    verdict = _judge(credit_spec, "bob", people=unknown)
    assert not verdict.accepted and "cannot be checked" in verdict.refusal
    short = _judge(credit_spec, "bob", justification="ok")
    assert not short.accepted and "justification" in short.refusal


def test_the_family_floor_keeps_four_eyes_on_a_credit_model(credit_spec):
    """Finding 9: `risk_class: limited` no longer switches four-eyes off for credit scoring."""
    limited = credit_spec.model_copy(update={"risk_class": "limited"})
    assert not _judge(limited, "alice").accepted


def test_a_rejected_version_cannot_be_approved(credit_spec):
    """Finding 2: sign-off requires a passed validation of that exact version."""
    failed = ValidationRecord(model=MODEL, version="1", passed=False,
                              failed_gates=["discrimination.auc"], report={})  # fmt: skip
    verdict = _judge(credit_spec, "bob", validation=failed)
    assert not verdict.accepted and "failed validation" in verdict.refusal
    assert "not been validated" in _judge(credit_spec, "bob", validation=None).refusal


def test_people_behind_a_pipeline_version_are_the_principals_who_landed_and_onboarded(
    engine, credit_spec
):
    """Finding 1: the trainer is not the service name; it is who landed the data."""
    principal(engine, "ann@bank", "model-developer")
    principal(engine, "dev@bank", "model-developer")
    pipeline_version(engine, credit_spec, "1", landed_by="ann@bank", onboarded_by="dev@bank")
    pipeline_version(engine, credit_spec, "2", landed_by=None, onboarded_by="dev@bank")
    with session_scope(engine) as session:
        known = people_behind(session=session, client=None, model=MODEL, version="1")
        unknown = people_behind(session=session, client=None, model=MODEL, version="2")
    assert set(known.developers) == {"ann@bank", "dev@bank"} and not known.unknown
    assert "riskops-pipeline" not in known.developers
    assert unknown.unknown and "without an authenticated" in unknown.unknown[0]


def test_a_notebook_versions_author_is_the_mapped_mlflow_user(engine, tmp_path):
    """Finding 1: notebook versions no longer fall back to an 'unknown' trainer that passes."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'nb.db'}")
    experiment = client.create_experiment("nb")
    run = client.create_run(experiment, tags={"mlflow.user": "jdoe"})
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, source=str(tmp_path), run_id=run.info.run_id)
    with session_scope(engine) as session:
        before = people_behind(session=session, client=client, model=MODEL, version="1")
    assert not before.developers and "'jdoe' is not mapped" in before.unknown[0]
    from riskops.identity.principals import add_principal

    with session_scope(engine) as session:
        add_principal(session=session, name="jane.doe@bank", role="model-developer",
                      actor="admin", mlflow_user="jdoe")  # fmt: skip
    with session_scope(engine) as session:
        after = people_behind(session=session, client=client, model=MODEL, version="1")
    assert "jane.doe@bank" in after.developers


def test_unapproved_or_rejected_versions_never_serve(engine, client):
    """Finding 2: promotion checks the validation and an authenticated approval itself."""
    with pytest.raises(PromotionRefused, match="no validation record"):
        promote(engine=engine, client=client, model=MODEL, version="1", actor="x")
    with session_scope(engine) as session:
        session.add(ValidationRecord(model=MODEL, version="1", passed=False,
                                     failed_gates=["discrimination.auc"], report={}))  # fmt: skip
    legacy_approval(engine, MODEL, "1", "anyone")  # e.g. an emitted model.approved
    with pytest.raises(PromotionRefused, match="failed validation"):
        promote(engine=engine, client=client, model=MODEL, version="1", actor="x")
    with session_scope(engine) as session:
        session.add(ValidationRecord(model=MODEL, version="2", passed=True, failed_gates=[],
                                     report={}))  # fmt: skip
    legacy_approval(engine, MODEL, "2", "typed name")
    with pytest.raises(PromotionRefused, match="never approved by an authenticated"):
        promote(engine=engine, client=client, model=MODEL, version="2", actor="x")
    assert current_champion(client, MODEL) is None


def test_promote_then_rollback_is_audited_and_announced_through_the_outbox(engine, client):
    for version in ("1", "2"):
        approve(engine, version)
    first = promote(engine=engine, client=client, model=MODEL, version="1", actor="p")
    second = promote(engine=engine, client=client, model=MODEL, version="2", actor="p")
    assert first.changed and second.record.previous_version == "1"
    assert ("riskops.model.credit-scoring.1", "previous-champion") in second.event.related
    assert not promote(engine=engine, client=client, model=MODEL, version="2", actor="p").changed
    back = rollback(engine=engine, client=client, model=MODEL, to_version=None, actor="oncall")
    assert back.record.version == "1" and back.event.name == "riskops.model.rolled-back"
    assert current_champion(client, MODEL) == "1"
    with pytest.raises(PromotionRefused, match="v3 was never an approved champion"):
        rollback(engine=engine, client=client, model=MODEL, to_version="3", actor="oncall")
    with session_scope(engine) as session:
        actions = [r.action for r in audit.rows_for_subject(session=session, subject_prefix=MODEL)]
        assert actions == ["model.promoted", "model.promoted", "model.rolled-back"]
        assert audit.verify(session=session).ok
        queued = [row.name for row in session.exec(OutboxEvent.__table__.select())]  # type: ignore[attr-defined]
    assert queued.count("riskops.model.promoted") == 2 and "riskops.model.rolled-back" in queued


def test_a_second_rollback_never_brings_back_the_version_rolled_back_from(engine, client):
    """Finding 3: promote v1, v2; rollback -> v1; rollback again is refused (not v2)."""
    for version in ("1", "2", "3"):
        approve(engine, version)
    promote(engine=engine, client=client, model=MODEL, version="1", actor="p")
    promote(engine=engine, client=client, model=MODEL, version="2", actor="p")
    assert rollback(engine=engine, client=client, model=MODEL, to_version=None,
                    actor="oncall").record.version == "1"  # fmt: skip
    with pytest.raises(PromotionRefused, match="no earlier approved champion"):
        rollback(engine=engine, client=client, model=MODEL, to_version=None, actor="oncall")
    with pytest.raises(PromotionRefused, match="v2 was rolled back from"):
        rollback(engine=engine, client=client, model=MODEL, to_version="2", actor="oncall")
    with pytest.raises(PromotionRefused, match="recorded champion already"):
        rollback(engine=engine, client=client, model=MODEL, to_version="1", actor="oncall")
    assert current_champion(client, MODEL) == "1"
    # v2's old approval (a redelivered or replayed model.approved) does not bring it back
    with pytest.raises(PromotionRefused, match="rolled back from on"):
        promote(engine=engine, client=client, model=MODEL, version="2", actor="p")
    # the stack: a new promotion on top, then rollback walks down to v1 again
    promote(engine=engine, client=client, model=MODEL, version="3", actor="p")
    assert rollback(engine=engine, client=client, model=MODEL, to_version=None,
                    actor="oncall").record.version == "1"  # fmt: skip


def test_a_registry_error_is_not_no_champion(client, monkeypatch):
    """Finding 4: a registry error during the champion lookup is not 'first version'."""
    assert current_champion(client, "never-registered") is None

    def down(*_args, **_kwargs):
        raise MlflowException("connection refused", error_code="INTERNAL_ERROR")

    monkeypatch.setattr(client, "get_model_version_by_alias", down)
    with pytest.raises(RegistryUnavailable, match="cannot be skipped on a registry error"):
        current_champion(client, MODEL)


def test_a_champion_moved_by_hand_is_a_recorded_and_announced_mismatch(engine, client, credit_spec):
    """Finding 11: an alias moved in MLflow outside riskops is not accepted as legitimate."""
    from riskops import ledger

    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=credit_spec, actor="dev")
    approve(engine, "1")
    promote(engine=engine, client=client, model=MODEL, version="1", actor="p")
    assert all(f.ok for f in reconcile(engine=engine, client=client))
    client.set_registered_model_alias(MODEL, "champion", "3")  # by hand, in MLflow
    [finding] = reconcile(engine=engine, client=client)
    assert not finding.ok and finding.alias == "3" and finding.recorded == "1"
    reconcile(engine=engine, client=client)  # the same finding is not announced twice
    with session_scope(engine) as session:
        rows = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/champion")
        events = [r.name for r in session.exec(OutboxEvent.__table__.select())]  # type: ignore[attr-defined]
    assert [r.action for r in rows] == ["champion.mismatch"]
    assert events.count("riskops.champion.mismatch") == 1
    restored = restore(engine=engine, client=client, model=MODEL, actor="oscar.oncall@bank")
    assert restored.ok and current_champion(client, MODEL) == "1"
    assert reconcile(engine=engine, client=client)[0].ok
    with session_scope(engine) as session:
        rows = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/champion")
    assert [(r.actor, r.action) for r in rows][-1] == ("oscar.oncall@bank", "champion.restored")


def test_racing_promotions_leave_one_champion_and_a_consistent_record(engine, client):
    for version in ("1", "2", "3"):
        approve(engine, version)
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


def test_a_failed_record_puts_the_alias_back(engine, client, monkeypatch):
    for version in ("1", "2"):
        approve(engine, version)
    promote(engine=engine, client=client, model=MODEL, version="1", actor="p")

    def broken(**_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(promotion.audit, "append", broken)
    with pytest.raises(OSError, match="disk full"):
        promote(engine=engine, client=client, model=MODEL, version="2", actor="p")
    assert current_champion(client, MODEL) == "1"
    with session_scope(engine) as session:
        assert [m.version for m in promotion.history(session=session, model=MODEL)] == ["1"]
        names = [r.name for r in session.exec(OutboxEvent.__table__.select())]  # type: ignore[attr-defined]
    assert names == ["riskops.model.promoted"]
