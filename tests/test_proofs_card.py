"""Finding 7: the card claims only controls the records show, and cites current guidance."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from riskops import audit
from riskops.audit.anchor import anchor_head
from riskops.compliance import build_card, gather_card_inputs
from riskops.compliance.regulation import materiality
from riskops.db import session_scope
from tests.test_compliance import REPORT, _gate, _inputs

AUDIT_ROWS = [
    {"seq": 11, "occurred_at": "2025-03-01T09:00:00", "actor": "val", "action": "validation"},
    {"seq": 14, "occurred_at": "2025-03-01T09:06:00", "actor": "risk", "action": "promoted"},
]
ANCHOR = {"seq": 20, "row_hash": "ab" * 32, "at": "2025-03-01T09:06:01.000000Z"}
WAIVER = "fewer than 50 applicants under 25 in the holdout; accepted by model risk"


def _controls(card) -> dict[str, tuple[str, str]]:
    return {c["control"]: (c["status"], c["evidence"]) for c in card.to_dict()["controls"]}


def _card(spec, **changes):
    fields = {"audit_rows": AUDIT_ROWS, "anchor": ANCHOR, **changes}
    return build_card(_inputs(spec, {}, **fields))


def test_controls_list_what_ran_for_this_version(credit_spec):
    """finding 7: each control states what ran, from the records; monitoring is not claimed."""
    card = _card(credit_spec)
    controls = _controls(card)
    assert controls["Validation gates"][0] == "ran"
    assert "skipped (not measured): champion.auc_drop" in controls["Validation gates"][1]
    assert "refused: tom (four-eyes rule" in controls["Sign-off (four-eyes rule)"][1]
    assert "promote to v3" in controls["Champion alias moves after approval"][1]
    assert controls["Hash-chained audit trail"] == (
        "ran", "2 rows about this version (seq 11 to 14): promoted, validation"
    )  # fmt: skip
    assert "head row 20" in controls["Chain head anchored outside the database"][1]
    assert controls["Drift monitoring"][0] == "not run"  # no window of this version judged
    assert controls["Outcomes analysis on late labels"][0] == "not run"
    md = card.to_markdown()
    assert "Drift monitoring with warn/alert bands" not in md
    assert "Every step is written to the hash-chained audit trail" not in md
    assert "No window of this version's decisions has been judged yet." in md
    assert "No outcome of this version's decisions has been landed yet." in md


DRIFT = [
    {"kind": "skew", "baseline": "training rows", "rows": 3000, "worst_band": "alert",
     "window_start": "2026-12-01T09:00:00", "window_end": "2026-12-01T12:00:00",
     "drifted": ["income", "bureau_score"], "windows": 5},
    {"kind": "prediction", "baseline": "scores", "rows": 3000, "worst_band": "stable",
     "window_start": "2026-12-01T09:00:00", "window_end": "2026-12-01T12:00:00",
     "drifted": [], "windows": 5},
]  # fmt: skip
OUTCOMES = [
    {"labelled_rows": 6000, "degraded": True, "breaching_vintages": ["2026-07"],
     "overall_auc": 0.71, "benchmark_auc": 0.84, "estimated_vintage": "2026-11",
     "estimated_auc": 0.82, "at": "2026-12-01T12:30:00"},
]  # fmt: skip


def test_the_card_shows_the_monitoring_that_ran_and_its_latest_results(credit_spec):
    card = _card(credit_spec, drift_results=DRIFT, performance_results=OUTCOMES)
    controls = _controls(card)
    assert controls["Drift monitoring"] == (
        "ran", "skew: alert (5 window(s), latest to 2026-12-01T12:00); "
        "prediction: stable (5 window(s), latest to 2026-12-01T12:00)",
    )  # fmt: skip
    assert controls["Outcomes analysis on late labels"] == (
        "ran", "6000 labelled decisions, AUC 0.710: DEGRADED in 2026-07 (at 2026-12-01T12:30)"
    )  # fmt: skip
    md = card.to_markdown()
    assert (
        "| skew | 2026-12-01T09:00 to 2026-12-01T12:00 | 3,000 | alert | income, bureau_score |"
        in md
    )
    assert "No window of this version" not in md and "2026-07" in md
    assert f"retraining at most once per {credit_spec.monitoring.retrain_cooldown_hours:g} h" in md


def test_the_card_changes_when_the_facts_change(credit_spec):
    """finding 7: remove records, waive a gate, measure a skipped one: the card follows."""
    base = _controls(_card(credit_spec))
    bare = _controls(_card(credit_spec, sign_offs=[], audit_rows=[], anchor=None, promotions=[]))
    sign_off = "Sign-off (four-eyes rule)"
    assert bare[sign_off][0] == "not run" and base[sign_off][0] == "ran"
    assert bare["Hash-chained audit trail"][0] == "not run"
    assert bare["Chain head anchored outside the database"][0] == "not run"
    assert bare["Champion alias moves after approval"][0] == "not run"
    unvalidated = _controls(_card(credit_spec, validation=None))
    assert unvalidated["Validation gates"] == ("not run", "this version has not been validated")
    no_lineage = _controls(_card(credit_spec, lineage=None))
    assert no_lineage["Data contract check"][0] == "not run"

    report = copy.deepcopy(REPORT)
    waived = {**_gate("fairness.age", False, None, 0.8), "status": "waived", "reason": WAIVER}
    report["results"].append(waived)
    report["results"][2] = _gate("champion.auc_drop", True, 0.002, 0.01, "<=")
    card = _card(credit_spec, validation=report)
    evidence = _controls(card)["Validation gates"][1]
    assert f"waived: fairness.age ({WAIVER})" in evidence
    assert "skipped" not in evidence and "5 of 6 gates measured" in evidence
    md = card.to_markdown()
    assert f"| fairness.age | — | >= 0.8 | waived | fairness.age says so (waived: {WAIVER}) |" in md
    assert f"Gate fairness.age was waived ({WAIVER})" in " ".join(card.to_dict()["limitations"])


def test_a_waiver_reason_comes_from_the_spec_when_the_result_has_none(credit_spec):
    """finding 7: a gate marked waived renders the written reason of spec.gates.waivers."""
    spec = credit_spec.model_copy(
        update={"gates": credit_spec.gates.model_copy(update={"waivers": {"fairness.age": WAIVER}})}
    )
    report = copy.deepcopy(REPORT)
    report["results"].append({**_gate("fairness.age", False, None, 0.8), "status": "waived"})
    gates = {g["name"]: g for g in _card(spec, validation=report).to_dict()["validation"]["gates"]}
    assert gates["fairness.age"]["status"] == "waived"
    assert gates["fairness.age"]["waiver"] == WAIVER


@pytest.mark.parametrize(
    ("family", "risk_class", "tier"),
    [
        ("credit_scoring", "high", 1),
        ("credit_scoring", "minimal", 1),  # the family alone makes it material
        ("other", "high", 1),  # the risk class alone makes it material
        ("fraud_detection", "limited", 2),
        ("transaction_risk", "minimal", 2),
        ("other", "minimal", 3),
    ],
)
def test_materiality_tier_is_derived_from_risk_class_and_family(
    credit_spec, family, risk_class, tier
):
    """finding 7: SR 26-2 / OCC 2026-13 are tiered; the card says which tier and why."""
    spec = credit_spec.model_copy(update={"family": family, "risk_class": risk_class})
    found = materiality(spec)
    assert found["tier"] == tier
    assert f"risk_class {risk_class}" in found["basis"] and f"family {family}" in found["basis"]
    assert found["name"] in build_card(_inputs(spec, {})).to_markdown()


def test_model_risk_sections_follow_sr_26_2_with_an_sr_11_7_map_and_ai_act_dates(credit_spec):
    """finding 7: SR 11-7 is superseded (17 April 2026); Annex III applies from 2 Dec 2027."""
    md = build_card(_inputs(credit_spec, {})).to_markdown()
    assert "### Conceptual soundness (SR 26-2 / OCC 2026-13)" in md
    assert "(SR 11-7)" not in md
    assert "superseded SR 11-7 on 17 April 2026" in md
    assert "Mapping to SR 11-7 (superseded)" in md
    assert "| Benchmark comparison (section 4) | Model validation: benchmarking |" in md
    assert "$30 billion" in md
    assert "Annex III (point 5(b): creditworthiness and credit scoring)" in md
    assert "apply from 2 December 2027" in md
    minimal = credit_spec.model_copy(update={"risk_class": "minimal", "family": "other"})
    assert "2 December 2027" not in build_card(_inputs(minimal, {})).to_markdown()


@pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)
def test_gather_reads_audit_rows_and_the_anchor_from_the_records(
    engine, credit_spec, tmp_path: Path, monkeypatch
):
    """finding 7: the controls come from the audit table and the MLflow anchor, not from text."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("credit-scoring")
    version = str(client.create_model_version("credit-scoring", source=str(tmp_path)).version)
    with session_scope(engine) as session:
        for action in ("model.validated", "model.promoted"):
            audit.append(session=session, actor="t", action=action,
                         subject=f"credit-scoring/{version}", payload={})  # fmt: skip
        audit.append(session=session, actor="t", action="x", subject="credit-scoring/10",
                     payload={})  # fmt: skip
    with session_scope(engine) as session:
        anchored = anchor_head(session=session, client=client, model="credit-scoring",
                               version=version)  # fmt: skip
        inputs = gather_card_inputs(
            session=session, client=client, spec=credit_spec, model="credit-scoring",
            version=version, workdir=tmp_path / "w",
        )  # fmt: skip
    controls = _controls(build_card(inputs))
    assert controls["Hash-chained audit trail"] == (
        "ran", "2 rows about this version (seq 1 to 2): model.promoted, model.validated"
    )  # fmt: skip
    assert (
        f"head row 3 ({anchored.row_hash[:16]}…)"
        in (controls["Chain head anchored outside the database"][1])
    )
