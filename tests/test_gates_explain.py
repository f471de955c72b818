"""Finding 4 (issue 7): explanations must add up to the score, cover every decline, and name each
raw input once ("income", never "log income" or "income bucket" beside it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskops.features.pandas_build import build_features_pandas, learn_vocabulary_pandas
from riskops.features.plan import feature_plan
from riskops.specs import ModelSpec, load_spec
from riskops.synthetic import generate
from riskops.training.models import train_lightgbm
from riskops.training.split import holdout_split, target01
from riskops.validation.explain import (
    lightgbm_contributions,
    perturbation_contributions,
    plan_sources,
    reason_codes,
    reason_groups,
    reference_values,
)
from riskops.validation.explainability import (
    ADDITIVITY_TOLERANCE,
    additivity_gate,
    declined_reasons_gate,
)
from riskops.validation.gates import run_gates
from riskops.validation.policy import apply_waivers

ROOT = Path(__file__).resolve().parents[1]
NUMERIC, CATEGORICAL = ["debt_to_income", "income"], ["employment_type"]


def _toy(seed: int, n: int = 3_000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "debt_to_income": rng.uniform(0, 2, n),
            "income": rng.uniform(10_000, 100_000, n),
            "employment_type": rng.choice(["employed", "unemployed"], n, p=[0.8, 0.2]),
        }
    )
    logit = (
        -2.0
        + 1.5 * frame["debt_to_income"]
        - frame["income"] / 50_000
        + np.where(frame["employment_type"] == "unemployed", 1.0, 0.0)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, y


@pytest.fixture(scope="module")
def toy_models():
    """Two LightGBM models on different data; the rare-event family makes prior_weight != 1."""
    fitted = []
    for seed in (1, 2):
        frame, y = _toy(seed)
        model = train_lightgbm(
            frame, NUMERIC, CATEGORICAL, y, seed=seed, family="fraud_detection",
            num_boost_round=60, early_stopping_rounds=10,
        )  # fmt: skip
        fitted.append(model)
    assert fitted[0].scorer.prior_weight != 1.0  # the offset of the base is exercised
    return fitted


def test_treeshap_contributions_add_up_to_the_score(toy_models):
    model = toy_models[0]
    rows = _toy(3, 40)[0]
    gate = additivity_gate(lightgbm_contributions(model.scorer), model.predict_proba_positive, rows)
    assert gate.status == "pass" and gate.value < 1e-9
    assert gate.evidence["expected_value_spread"] == pytest.approx(0.0, abs=1e-12)


def test_contributions_of_another_model_do_not_add_up_to_this_score(toy_models):
    """Finding 4: the explainability gate could not fail with TreeSHAP; now a mismatch fails."""
    candidate, other = toy_models
    rows = _toy(3, 40)[0]
    gate = additivity_gate(
        lightgbm_contributions(other.scorer), candidate.predict_proba_positive, rows
    )
    assert gate.status == "FAIL" and gate.value > ADDITIVITY_TOLERANCE


def test_a_base_per_row_that_absorbs_the_error_fails(toy_models):
    """A contribution function cannot pass by returning zeros and logit(score) as 'base'."""
    model = toy_models[0]
    rows = _toy(3, 40)[0]

    def empty(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(0.0, index=frame.index, columns=[*NUMERIC, *CATEGORICAL])

    def base_values(frame: pd.DataFrame) -> np.ndarray:
        p = model.predict_proba_positive(frame)
        return np.log(p / (1 - p))

    empty.link, empty.base_values = "logit", base_values  # type: ignore[attr-defined]
    gate = additivity_gate(empty, model.predict_proba_positive, rows)
    assert gate.evidence["largest_score_gap"] < 1e-9  # the scores are reproduced exactly ...
    assert gate.status == "FAIL"  # ... but the expected value is not one number


def test_perturbation_contributions_cannot_be_checked_and_fail_for_high_risk(toy_models):
    model = toy_models[0]
    rows = _toy(3, 40)[0]
    contrib = perturbation_contributions(
        model.predict_proba_positive, reference_values(rows, NUMERIC, CATEGORICAL)
    )
    gate = additivity_gate(contrib, model.predict_proba_positive, rows)
    assert gate.skipped and gate.status == "skipped"
    [high], _ = apply_waivers([gate], risk_class="high", waivers={})
    assert high.status == "FAIL"
    [limited], _ = apply_waivers([gate], risk_class="limited", waivers={})
    assert limited.status == "skipped"


def test_every_declined_row_must_get_a_reason(toy_models):
    """Finding 4 / item 6b: a decline without any risk-increasing reason fails the gate."""
    model = toy_models[0]
    frame = _toy(4, 600)[0]
    p = model.predict_proba_positive(frame)
    cutoff = float(np.quantile(p, 0.8))
    reference = reference_values(frame, NUMERIC, CATEGORICAL)
    kwargs = dict(
        reference=reference, categorical=CATEGORICAL, groups=None, rng=np.random.default_rng(0)
    )
    tree = declined_reasons_gate(
        lightgbm_contributions(model.scorer), frame, p, cutoff, "test", **kwargs
    )
    assert tree.status == "pass" and tree.evidence["checked_rows"] == int((p >= cutoff).sum())
    assert all(example["reasons"] for example in tree.evidence["examples"])

    def only_downward(rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(-1.0, index=rows.index, columns=[*NUMERIC, *CATEGORICAL])

    silent = declined_reasons_gate(only_downward, frame, p, cutoff, "test", **kwargs)
    assert silent.status == "FAIL" and silent.value == 0.0
    assert silent.evidence["rows_without_reasons"]
    nobody = declined_reasons_gate(only_downward, frame, p, 1.01, "test", **kwargs)
    assert nobody.skipped  # nothing declined: not measured (fails for high-risk via the policy)


def test_reason_codes_name_each_raw_input_once():
    """Finding 4: "income low", "log income low", "income bucket low" was one input thrice."""
    sources = {
        "income": ("income",),
        "log_income": ("income",),
        "income_bucket": ("income",),
        "debt_to_income": ("debt_to_income",),
        "dti_bucket": ("debt_to_income",),
        "loan_to_income": ("loan_amount", "income"),
    }
    groups = reason_groups(sources, list(sources))
    assert groups["log_income"] == groups["income_bucket"] == "income"
    assert groups["loan_to_income"] == "loan_to_income"  # a relation keeps its own name
    contributions = {
        "income": 0.05,
        "log_income": 0.30,
        "income_bucket": 0.20,
        "debt_to_income": 0.10,
        "dti_bucket": 0.15,
        "loan_to_income": 0.30,
    }
    values = {
        "income": 12_000.0,
        "log_income": np.log1p(12_000.0),
        "income_bucket": 1.0,
        "debt_to_income": 0.9,
        "dti_bucket": 7.0,
        "loan_to_income": 0.8,
    }
    reference = {"income": 40_000.0, "debt_to_income": 0.3, "loan_to_income": 0.35}
    reasons = reason_codes(contributions, values, k=4, reference=reference, groups=groups)
    # income: 0.05 + 0.30 + 0.20 = 0.55; loan_to_income 0.30; debt_to_income 0.10 + 0.15
    assert reasons == ["income low", "loan to income ratio high", "debt to income ratio high"]
    ungrouped = reason_codes(contributions, values, k=6, reference=reference)
    assert "log income high" in ungrouped or "log income unfavourable" in ungrouped


@pytest.fixture(scope="module")
def built_credit(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelSpec, pd.DataFrame]:
    """Synthetic credit applications through the real feature plan (derived features too)."""
    spec = load_spec(ROOT / "models" / "credit-scoring.yaml")
    path = tmp_path_factory.mktemp("credit") / "credit.parquet"
    generate("credit_scoring", 8_000, 5, path, progress=False)
    raw = pd.read_parquet(path)
    plan = feature_plan(spec, raw.columns)
    vocabulary = learn_vocabulary_pandas(raw, plan)
    return spec, build_features_pandas(raw, plan, vocabulary, pseudonym_key="test-key")


def test_run_gates_groups_reasons_of_a_model_on_derived_features(built_credit, tmp_path):
    spec, features = built_credit
    plan = feature_plan(spec, features.columns)
    assert {"log_income", "income_bucket", "loan_to_income"} <= set(plan.numeric)
    assert plan_sources(spec, features.columns) == plan.sources()  # what evaluate.py passes
    split = holdout_split(features, spec)
    y = target01(split.train[spec.target], spec)
    model = train_lightgbm(
        split.train, plan.numeric, plan.categorical, y, seed=1, family=spec.family,
        time_column=spec.timestamp_column,
    )  # fmt: skip
    sample = split.train.sample(min(2_000, len(split.train)), random_state=0)
    report = run_gates(
        spec=spec, holdout=split.holdout, train_sample=sample,
        score=model.predict_proba_positive, numeric=plan.numeric, categorical=plan.categorical,
        contributions=lightgbm_contributions(model.scorer), plots_dir=tmp_path,
        latency_calls=30, sources=plan.sources(),
    )  # fmt: skip
    assert set(report.context["reason_code_groups"]["income"]) == {
        "income",
        "log_income",
        "income_bucket",
    }
    for name in ("explainability.additivity", "explainability.declined_reasons"):
        assert report.get(name).status == "pass", report.get(name).message
    examples = [
        *report.get("explainability.reason_codes").evidence["examples"],
        *report.get("explainability.declined_reasons").evidence["examples"],
    ]
    phrases = [reason for example in examples for reason in example["reasons"]]
    assert phrases, "no reasons at all to check"
    for derived in ("log income", "income bucket", "log loan amount", "dti bucket"):
        assert not any(p.startswith(derived) for p in phrases), phrases
    for example in examples:
        inputs = [r.split(":")[0].rsplit(" ", 1)[0] for r in example["reasons"]]
        assert len(inputs) == len(set(inputs)), example  # no input named twice in one decision
