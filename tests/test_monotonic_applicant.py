"""Finding 6: monotonic constraints reach derived copies of a constrained input, and the gate
moves the applicant's RAW input with everything derived from it recomputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskops.features.definitions import Bucket, HourOfDay, Log1p, Ratio
from riskops.features.families import derived_features
from riskops.features.pandas_build import rederive
from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.training import track
from riskops.training.models import train_binned_logistic, train_lightgbm
from riskops.training.monotone import carried_constraints
from riskops.validation.robustness import applicant_monotonic_gate, monotonic_gate

MODELS = Path(__file__).resolve().parents[1] / "models"

INCOME_RULE = [("income", "decreasing")]
DEFINITIONS = (Log1p("log_income", "income"), Bucket("income_bucket", "income", (30_000, 60_000)))
NUMERIC = ["income", "log_income", "income_bucket", "debt_to_income"]


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(MODELS / "credit-scoring.yaml")  # income decreasing, debt increasing


@pytest.fixture(scope="module")
def applicants() -> tuple[pd.DataFrame, np.ndarray]:
    """Data where default risk RISES with income: against the declared direction."""
    rng = np.random.default_rng(0)
    n = 8_000
    income = np.exp(rng.normal(10.6, 0.5, n))
    dti = rng.uniform(0, 1.5, n)
    logit = -2.5 + 1.6 * (np.log(income) - 10.6) / 0.5 + 1.0 * dti
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    frame = rederive(pd.DataFrame({"income": income, "debt_to_income": dti}).assign(
        log_income=np.nan, income_bucket=np.nan
    ), DEFINITIONS, ["income"])  # fmt: skip
    return frame, y


def _fit(frame: pd.DataFrame, y: np.ndarray, monotone: dict[str, int]):
    return train_lightgbm(frame, NUMERIC, [], y, seed=1, monotone=monotone, num_boost_round=300)


def test_column_level_gate_passes_a_model_the_applicant_level_gate_fails(spec, applicants):
    """Today's training constrains only raw income; log_income carries the score upwards."""
    frame, y = applicants
    raw_only = {"income": -1, "debt_to_income": 1}
    model = _fit(frame, y, raw_only)
    rows = frame.sample(100, random_state=0)
    column_level = monotonic_gate(model.predict_proba_positive, rows, INCOME_RULE, reference=frame)
    assert column_level.passed  # the constrained raw column alone never raises the score
    applicant = applicant_monotonic_gate(
        model.predict_proba_positive, rows, INCOME_RULE, NUMERIC, DEFINITIONS, reference=frame
    )
    assert not applicant.passed and applicant.value > 0
    assert applicant.evidence["level"] == "raw applicant input"
    assert "income (decreasing)" in applicant.message


def test_constraints_carried_to_derived_inputs_make_the_applicant_gate_pass(spec, applicants):
    frame, y = applicants
    carried = carried_constraints(spec, NUMERIC, DEFINITIONS)
    assert carried.directions["log_income"] == carried.directions["income_bucket"] == -1
    model = _fit(frame, y, {k: v for k, v in carried.directions.items() if v})
    rows = frame.sample(100, random_state=0)
    applicant = applicant_monotonic_gate(
        model.predict_proba_positive, rows, INCOME_RULE, NUMERIC, DEFINITIONS, reference=frame
    )
    assert applicant.passed, applicant.message


def test_credit_family_directions_and_ratio_rule(spec):
    numeric = [*spec.features.numeric, *(d.name for d in derived_features(spec.family))]
    carried = carried_constraints(spec, numeric, derived_features(spec.family))
    d = carried.directions
    assert d["income"] == d["log_income"] == d["income_bucket"] == -1
    assert d["debt_to_income"] == d["dti_bucket"] == 1
    assert d["loan_to_income"] == 1  # loan / income: the opposite of income's direction
    assert d["loan_per_term_month"] == 0 and d["log_loan_amount"] == 0 and not carried.dropped
    # without a plan, training still finds the derived copies through the family definitions
    assert track._constraints(spec, numeric, None).directions == d


def test_conflicting_sources_drop_the_feature_with_a_reason(spec):
    data = spec.model_dump(mode="json")
    rules = [{"feature": "loan_amount", "direction": "increasing"},
             {"feature": "income", "direction": "increasing"}]  # fmt: skip
    both = parse_spec({**data, "monotonic": rules})
    numeric = ["loan_amount", "income", "loan_to_income", "log_income"]
    carried = carried_constraints(both, numeric, [Ratio("loan_to_income", "loan_amount", "income")])
    assert "loan_to_income" in carried.dropped and "loan_to_income" not in carried.directions
    reason = carried.dropped["loan_to_income"]
    assert "opposite directions" in reason and "income" in reason and "loan_amount" in reason
    # a transform that is not monotonic (contrived: an hour of day read from income)
    hour = carried_constraints(spec, ["income_hour"], [HourOfDay("income_hour", "income")])
    assert "not a monotonic transform" in hour.dropped["income_hour"]


def test_benchmark_reports_violations_on_derived_inputs(spec, applicants):
    frame, y = applicants
    carried = carried_constraints(spec, NUMERIC, DEFINITIONS)
    fitted = train_binned_logistic(frame, NUMERIC, [], y, monotone=carried.directions)
    # unconstrained logistic bins follow the data (risk up with income): every income copy breaks
    assert {"income", "log_income", "income_bucket"} <= set(fitted.metadata["monotonic_violations"])


def test_a_rule_on_a_raw_input_the_rows_lack_fails_the_gate(applicants):
    frame, y = applicants
    rows = frame.drop(columns=["income"]).head(20)
    inputs = ["log_income", "income_bucket", "debt_to_income"]
    only_derived = train_lightgbm(frame, inputs, [], y, seed=1, num_boost_round=20)
    gate = applicant_monotonic_gate(
        only_derived.predict_proba_positive, rows, INCOME_RULE, inputs, DEFINITIONS
    )
    assert not gate.passed and "lack the raw inputs ['income']" in gate.message
