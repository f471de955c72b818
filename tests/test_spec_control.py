"""Finding 9: the model owner does not control governance settings; spec changes are audited."""

from __future__ import annotations

import pytest

from riskops import audit, ledger
from riskops.db import session_scope
from riskops.records import PromotionRecord
from riskops.specs import parse_spec


def _variant(spec, **changes):
    return parse_spec({**spec.model_dump(mode="json"), **changes})


def test_a_credit_model_cannot_be_declared_limited_risk_nor_thresholds_zeroed(engine, credit_spec):
    for changes, field in (
        ({"risk_class": "limited"}, "risk_class"),
        ({"gates": {**credit_spec.gates.model_dump(mode="json"), "min_auc": 0.0}}, "min_auc"),
        ({"gates": {**credit_spec.gates.model_dump(mode="json"), "min_disparate_impact": 0.5}},
         "min_disparate_impact"),
    ):  # fmt: skip
        with session_scope(engine) as session, pytest.raises(ledger.SpecPolicyError, match=field):
            ledger.register_spec(session=session, spec=_variant(credit_spec, **changes),
                                 actor="dev")  # fmt: skip
    with session_scope(engine) as session:
        assert ledger.list_specs(session=session) == []


def test_a_changed_spec_of_a_model_with_a_champion_waits_for_a_risk_officer(engine, credit_spec):
    changed = _variant(credit_spec, owner="someone-else")
    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=credit_spec, actor="dev")
        session.add(PromotionRecord(model=credit_spec.name, version="1", kind="promote",
                                    actor="riskops-promotion"))  # fmt: skip
    with session_scope(engine) as session:
        pending, created = ledger.register_spec(session=session, spec=changed, actor="dev")
        assert created and pending.status == "pending"
        assert (
            ledger.current_spec(session=session, name=credit_spec.name).owner == credit_spec.owner
        )
    with session_scope(engine) as session, pytest.raises(PermissionError, match="four-eyes"):
        ledger.decide_spec(session=session, name=credit_spec.name, spec_hash=pending.spec_hash,
                           actor="dev", approve=True, comment="my own change is fine")  # fmt: skip
    with session_scope(engine) as session:
        ledger.decide_spec(
            session=session, name=credit_spec.name, spec_hash=pending.spec_hash[:12],
            actor="risk@bank", approve=True, comment="owner moved teams; ok",
        )  # fmt: skip
    with session_scope(engine) as session:
        assert ledger.current_spec(session=session, name=credit_spec.name).owner == "someone-else"
        rows = audit.rows_for_subject(session=session, subject_prefix=f"{credit_spec.name}/spec/")
    assert [r.action for r in rows] == ["spec.onboarded", "spec.proposed", "spec.approved"]
    assert rows[1].payload["diff"] == {"owner": [credit_spec.owner, "someone-else"]}
    assert rows[2].actor == "risk@bank"


def test_without_a_champion_a_change_applies_at_once_and_is_audited_with_its_diff(
    engine, credit_spec
):
    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=credit_spec, actor="dev")
        ledger.register_spec(session=session, spec=_variant(credit_spec, owner="x"), actor="dev")
        rows = audit.rows_for_subject(session=session, subject_prefix=f"{credit_spec.name}/spec/")
        assert ledger.current_spec(session=session, name=credit_spec.name).owner == "x"
    assert [r.action for r in rows] == ["spec.onboarded", "spec.changed"]
    assert rows[1].payload["diff"] == {"owner": [credit_spec.owner, "x"]}
