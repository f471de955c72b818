"""Finding 4 (issue 7) on fairness: coded attributes were banded into one group (so skipped and
passed), the cut-off was assumed from the bad rate instead of the business one, and equal
opportunity was evidence only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.validation.fairness import (
    Cutoff,
    attribute_gates,
    decision_cutoff,
    fairness_gate,
    group_labels,
    spec_fairness_gates,
)
from riskops.validation.gates import PLATFORM_DEFAULTS, resolved_thresholds
from riskops.validation.policy import apply_waivers

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(ROOT / "models" / "credit-scoring.yaml")


def _with(spec: ModelSpec, **changes) -> ModelSpec:
    data = spec.model_dump(mode="json")
    data.update(changes)
    return parse_spec(data)


def _scored(seed: int, n: int = 6_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    coded = rng.integers(0, 2, n)  # e.g. a 0/1 "foreign national" flag, 50/50
    risk = rng.beta(2, 8, n)
    y = (rng.random(n) < risk).astype(int)
    return coded, risk, y


def test_a_0_1_coded_attribute_is_two_groups_not_one_quantile_band():
    assert set(group_labels(pd.Series([0, 1, 1, 0, 1]), attribute="foreign")) == {"0", "1"}
    skewed = pd.Series([0] * 90 + [1] * 10, dtype="float64")  # quartile edges all at 0 and 1
    assert group_labels(skewed, attribute="foreign").value_counts().to_dict() == {"0": 90, "1": 10}
    flags = group_labels(pd.Series([True, False, None], dtype="object"), attribute="flag")
    assert flags.tolist() == ["True", "False", "missing"]
    ages = group_labels(pd.Series([30, 40] * 5, dtype="int64"), attribute="age")
    assert set(ages) == {"26-35", "36-50"}  # few distinct ages still get age bands
    assert group_labels(pd.Series(np.arange(100.0)), attribute="tenure").nunique() == 4


def test_an_unfair_scorer_fails_on_a_0_1_coded_attribute():
    coded, risk, y = _scored(1)
    unfair = np.clip(risk + np.where(coded == 1, 0.25, 0.0), 0, 1)
    result = fairness_gate("foreign", pd.Series(coded), unfair, y, threshold=0.25)
    assert not result.skipped and result.status == "FAIL" and result.value < 0.8
    assert [g["group"] for g in result.evidence["groups"]] == ["0", "1"]


def test_the_cut_off_comes_from_the_spec(spec):
    coded, risk, y = _scored(2)
    assert decision_cutoff(spec, risk, y) == Cutoff(
        spec.decision.approve_below, "spec decision.approve_below"
    )
    by_rate = _with(spec, decision={"target_approval_rate": 0.6})
    cutoff = decision_cutoff(by_rate, risk, y)
    assert cutoff.threshold == pytest.approx(np.quantile(risk, 0.6)) and not cutoff.assumed
    limited = _with(spec, risk_class="limited", family="other", decision={})
    assumed = decision_cutoff(limited, risk, y)
    assert assumed.assumed and assumed.basis.startswith("assumed")
    assert assumed.threshold == pytest.approx(np.quantile(risk, 1 - y.mean()))
    holdout = pd.DataFrame({"age": 30 + coded * 20, "gender": np.where(coded, "f", "m")})
    gates = spec_fairness_gates(
        spec, holdout, y, risk, cutoff=decision_cutoff(spec, risk, y),
        min_disparate_impact=0.8, max_equal_opportunity_difference=0.1, plots_dir=None,
    )  # fmt: skip
    assert {g.evidence["decision_threshold"] for g in gates} == {spec.decision.approve_below}
    assert {g.evidence["cutoff_basis"] for g in gates} == {"spec decision.approve_below"}
    assert "spec decision.approve_below" in gates[0].message
    limited_gates = spec_fairness_gates(
        limited, holdout, y, risk, cutoff=assumed,
        min_disparate_impact=0.8, max_equal_opportunity_difference=0.1, plots_dir=None,
    )  # fmt: skip
    assert all(g.evidence["cutoff_assumed"] for g in limited_gates)
    assert "assumed" in limited_gates[0].message


def test_a_high_risk_model_without_a_cut_off_fails_fairness_unless_waived(spec):
    coded, risk, y = _scored(3)
    bare = _with(spec, decision={})
    assert decision_cutoff(bare, risk, y) is None
    holdout = pd.DataFrame({"age": 30 + coded * 20, "gender": np.where(coded, "f", "m")})
    gates = spec_fairness_gates(
        bare, holdout, y, risk, cutoff=None,
        min_disparate_impact=0.8, max_equal_opportunity_difference=0.1, plots_dir=None,
    )  # fmt: skip
    assert [g.name for g in gates] == [
        "fairness.age", "fairness.age.equal_opportunity",
        "fairness.gender", "fairness.gender.equal_opportunity",
    ]  # fmt: skip
    out, _ = apply_waivers(gates, risk_class="high", waivers={})
    assert [g.status for g in out] == ["FAIL"] * 4
    assert all("decision.approve_below or decision.target_approval_rate" in g.message for g in out)


def test_equal_opportunity_fails_when_one_groups_defaults_slip_through():
    """Same approval rates (disparate impact passes), but group b's bad outcomes are approved:
    its scores carry no information, so its true-positive rate is far lower."""
    rng = np.random.default_rng(4)
    n = 8_000
    group = pd.Series(rng.choice(["a", "b"], n))
    y = (rng.random(n) < 0.15).astype(int)
    informed = np.clip(0.10 + 0.25 * y + rng.normal(0, 0.08, n), 0, 1)
    blind = rng.permutation(informed)  # same score distribution, unrelated to the outcome
    score = np.where(group == "b", blind, informed)
    cutoff = Cutoff(float(np.quantile(score, 0.8)), "test")
    impact, opportunity = attribute_gates("segment", group, score, y, cutoff)
    assert impact.name == "fairness.segment" and impact.status == "pass"
    assert opportunity.name == "fairness.segment.equal_opportunity"
    assert opportunity.status == "FAIL" and opportunity.value > 0.3
    assert opportunity.comparison == "<=" and opportunity.threshold == 0.10
    fair = attribute_gates("segment", group, informed, y, cutoff)[1]
    assert fair.status == "pass" and fair.value < 0.10


def test_equal_opportunity_leaves_out_groups_with_few_defaults():
    rng = np.random.default_rng(5)
    n = 4_000
    group = pd.Series(np.where(np.arange(n) < 200, "small", rng.choice(["a", "b"], n)))
    y = (rng.random(n) < 0.1).astype(int)  # the small group has about 20 defaults
    score = np.clip(0.05 + 0.3 * y + rng.normal(0, 0.1, n), 0, 1)
    score[:200] = rng.uniform(0, 0.04, 200)  # and a TPR of 0 that would dominate the gap
    opportunity = attribute_gates("segment", group, score, y, Cutoff(0.2, "test"))[1]
    assert "small" in opportunity.evidence["equal_opportunity_excluded_groups"]
    assert opportunity.status == "pass"


def test_the_equal_opportunity_threshold_has_a_platform_default(spec):
    assert PLATFORM_DEFAULTS["max_equal_opportunity_difference"] == 0.10
    assert resolved_thresholds(spec)["max_equal_opportunity_difference"] == 0.10
    strict = _with(
        spec, gates={**spec.gates.model_dump(), "max_equal_opportunity_difference": 0.05}
    )
    assert resolved_thresholds(strict)["max_equal_opportunity_difference"] == 0.05
