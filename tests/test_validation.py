"""Validation gates: each gate on synthetic inputs with a known answer; run_gates end to end."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.synthetic import generate
from riskops.training.lineage import Lineage
from riskops.training.models import train_lightgbm
from riskops.training.split import holdout_split, target01
from riskops.validation.calibration import (
    brier_score,
    calibration_table,
    expected_calibration_error,
    reliability_plot,
)
from riskops.validation.explain import (
    explainability_gate,
    feature_words,
    global_importance,
    lightgbm_contributions,
    perturbation_contributions,
    reason_codes,
    reference_values,
)
from riskops.validation.fairness import fairness_gate, group_labels
from riskops.validation.gates import PLATFORM_DEFAULTS, resolved_thresholds, run_gates
from riskops.validation.latency import latency_gate, measure_latency
from riskops.validation.results import GateReport, GateResult, measured
from riskops.validation.robustness import monotonic_gate, robustness_gates
from riskops.validation.stability import feature_psi, psi, psi_table

ROOT = Path(__file__).resolve().parents[1]
SPEC_FILE = ROOT / "models" / "credit-scoring.yaml"


# --- stability ---------------------------------------------------------------------------------


def test_psi_of_same_distribution_is_near_zero_and_of_a_shift_is_large():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 20_000)
    assert psi(base, base) == pytest.approx(0.0, abs=1e-12)
    assert psi(base, rng.normal(0, 1, 20_000)) < 0.01
    assert psi(base, rng.normal(1, 1, 20_000)) > 0.25
    assert psi(base, rng.normal(0, 1, 20_000) * 2.5) > 0.25


def test_psi_counts_missing_values_as_their_own_bin_and_stays_finite_on_empty_bins():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 10_000)
    holed = base.copy()
    holed[:3_000] = np.nan  # 30 % missing where training had none
    assert psi(base, holed) > 0.25
    assert np.isfinite(psi(base, np.full(100, 50.0)))  # everything in the top bin
    mostly_zero = np.r_[np.zeros(9_000), rng.integers(1, 5, 1_000)]  # repeated edges merge
    assert psi(mostly_zero, mostly_zero[::-1]) == pytest.approx(0.0, abs=1e-12)
    rows = psi_table(base, holed)
    assert rows[-1]["bin"] == "missing" and rows[-1]["actual"] == pytest.approx(0.3)
    assert sum(r["psi"] for r in rows) == pytest.approx(psi(base, holed))


def test_categorical_psi_uses_shares_and_an_other_bucket():
    rng = np.random.default_rng(2)
    expected = rng.choice(["a", "b", "c"], 10_000, p=[0.5, 0.3, 0.2])
    same = rng.choice(["a", "b", "c"], 10_000, p=[0.5, 0.3, 0.2])
    assert psi(expected, same, categorical=True) < 0.01
    new = np.where(rng.random(10_000) < 0.4, "brand-new", same)  # 40 % unseen values
    assert psi(expected, new, categorical=True) > 0.25
    flipped = rng.choice(["a", "b", "c"], 10_000, p=[0.1, 0.3, 0.6])
    assert psi(expected, flipped, categorical=True) > 0.25


def test_feature_psi_reports_every_feature():
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"x": rng.normal(0, 1, 5_000), "c": rng.choice(["u", "v"], 5_000)})
    holdout = pd.DataFrame({"x": rng.normal(2, 1, 5_000), "c": rng.choice(["u", "v"], 5_000)})
    result = feature_psi(train, holdout, ["x"], ["c"])
    assert set(result) == {"x", "c"}
    assert result["x"] > 0.25 > 0.01 > result["c"]


# --- calibration -------------------------------------------------------------------------------


def test_ece_separates_a_calibrated_from_a_miscalibrated_scorer(tmp_path):
    rng = np.random.default_rng(4)
    p = rng.beta(1, 8, 40_000)  # skewed towards 0 like a default probability
    y = (rng.random(len(p)) < p).astype(int)
    calibrated = expected_calibration_error(y, p)
    overconfident = expected_calibration_error(y, np.clip(p * 2.5, 0, 1))
    assert calibrated < 0.01
    assert overconfident > 0.1
    assert expected_calibration_error(y, p, strategy="uniform") < 0.01
    assert brier_score(y, p) < brier_score(y, np.clip(p * 2.5, 0, 1))
    table = calibration_table(y, p)
    assert len(table) == 10 and sum(row["n"] for row in table) == len(p)
    plot = reliability_plot(table, tmp_path / "plots" / "reliability.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- fairness ----------------------------------------------------------------------------------


def _groups(rng: np.random.Generator, n: int) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    group = pd.Series(rng.choice(["a", "b"], n))
    risk = rng.beta(2, 8, n)
    y = (rng.random(n) < risk).astype(int)
    return group, risk, y


def test_disparate_impact_passes_a_fair_scorer_and_fails_an_unfair_one():
    rng = np.random.default_rng(5)
    group, risk, y = _groups(rng, 10_000)
    fair = fairness_gate("segment", group, risk, y, min_disparate_impact=0.8)
    assert fair.passed and fair.value == pytest.approx(1.0, abs=0.05)
    unfair_score = np.clip(risk + np.where(group == "b", 0.25, 0.0), 0, 1)  # b pushed up
    unfair = fairness_gate("segment", group, unfair_score, y, min_disparate_impact=0.8)
    assert not unfair.passed and unfair.value < 0.8
    assert unfair.name == "fairness.segment" and "four-fifths" in unfair.message
    rates = {row["group"]: row for row in unfair.evidence["groups"]}
    assert rates["b"]["approval_rate"] < rates["a"]["approval_rate"]
    assert unfair.evidence["equal_opportunity_tpr_difference"] > 0.1
    at = fairness_gate("segment", group, risk, y, min_disparate_impact=0.8, threshold=0.2)
    assert at.evidence["decision_threshold"] == 0.2


def test_small_groups_are_reported_but_left_out_of_the_ratio(tmp_path):
    rng = np.random.default_rng(6)
    group, risk, y = _groups(rng, 4_000)
    group.iloc[:20] = "tiny"
    score = risk.copy()
    score[:20] = 0.99  # the tiny group would be declined entirely
    result = fairness_gate("segment", group, score, y, min_disparate_impact=0.8, plots_dir=tmp_path)
    assert result.passed
    assert result.evidence["excluded_groups"] == ["tiny"]
    assert [row["group"] for row in result.evidence["groups"]] == ["a", "b", "tiny"]
    assert result.plots and result.plots[0].exists()
    only_one = fairness_gate("segment", pd.Series(["a"] * 500), risk[:500], y[:500])
    assert only_one.skipped and only_one.passed and "Fewer than two" in only_one.message


def test_numeric_protected_attributes_are_banded():
    ages = pd.Series([18, 25, 26, 35, 36, 50, 51, 64, 65, 90, None], dtype="float64")
    assert group_labels(ages, attribute="age").tolist() == [
        "18-25", "18-25", "26-35", "26-35", "36-50", "36-50", "51-64", "51-64", "65+", "65+",
        "missing",
    ]  # fmt: skip
    other = group_labels(pd.Series(np.arange(100.0)), attribute="tenure")
    assert other.nunique() == 4
    words = group_labels(pd.Series(["f", None, "m"]), attribute="gender")
    assert words.tolist() == ["f", "missing", "m"]


# --- explanations ------------------------------------------------------------------------------

NUMERIC, CATEGORICAL = ["debt_to_income", "income"], ["employment_type"]


def test_feature_names_become_words():
    assert feature_words("debt_to_income") == "debt to income ratio"
    assert feature_words("num_delinquencies") == "number of delinquencies"
    assert feature_words("employment_type") == "employment type"
    assert feature_words("account_age_days") == "account age"
    assert feature_words("is_new_counterparty") == "new counterparty"
    assert feature_words("loanAmount") == "loan amount"


def test_reason_codes_name_the_features_pushing_the_score_up():
    contributions = {
        "debt_to_income": 0.9,
        "employment_type": 0.5,
        "income": 0.4,
        "num_delinquencies": 0.3,
        "months_employed": 0.2,
        "region": -0.6,  # pushes the score down: never a reason
    }
    values = {
        "debt_to_income": 0.8,
        "employment_type": "unemployed",
        "income": 12_000.0,
        "num_delinquencies": 3,
        "months_employed": np.nan,
        "region": "north",
    }
    reference = {"debt_to_income": 0.3, "income": 40_000.0, "num_delinquencies": 0}
    reasons = reason_codes(contributions, values, k=4, reference=reference)
    assert reasons == [
        "debt to income ratio high",
        "employment type: unemployed",
        "income low",
        "number of delinquencies high",
    ]
    assert reason_codes(contributions, values, k=2, reference=reference) == reasons[:2]
    assert reason_codes(contributions, values, k=10, reference=reference)[-1] == (
        "months employed not provided"
    )
    tied = {"b_score": 0.5, "a_score": 0.5}
    assert reason_codes(tied, {"a_score": 2.0, "b_score": 2.0}, reference={"a_score": 1.0}) == [
        "a score high",
        "b score unfavourable",  # no reference value: direction unknown
    ]
    flags = reason_codes({"is_new_counterparty": 0.2}, {"is_new_counterparty": 1.0})
    assert flags == ["new counterparty"]


def _toy(rng: np.random.Generator, n: int = 400) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "debt_to_income": rng.uniform(0, 2, n),
            "income": rng.uniform(10_000, 100_000, n),
            "employment_type": rng.choice(["employed", "unemployed"], n, p=[0.8, 0.2]),
        }
    )


def _toy_score(frame: pd.DataFrame) -> np.ndarray:
    logit = (
        -2.0
        + 1.5 * frame["debt_to_income"].fillna(0.5).to_numpy(dtype=float)
        - frame["income"].fillna(50_000).to_numpy(dtype=float) / 50_000
        + np.where(frame["employment_type"] == "unemployed", 1.0, 0.0)
    )
    return 1 / (1 + np.exp(-logit))


def test_perturbation_reasons_are_stable_and_readable(tmp_path):
    rng = np.random.default_rng(7)
    frame = _toy(rng)
    reference = reference_values(frame, ["debt_to_income", "income"], ["employment_type"])
    contrib = perturbation_contributions(_toy_score, reference)
    first = contrib(frame.head(20))
    pd.testing.assert_frame_equal(first, contrib(frame.head(20)))
    importance = global_importance(contrib(frame))
    assert next(iter(importance)) == "debt_to_income"
    risky = pd.DataFrame(
        {"debt_to_income": [1.9], "income": [11_000.0], "employment_type": ["unemployed"]}
    )
    reasons = reason_codes(contrib(risky).iloc[0], risky.iloc[0], reference=reference)
    assert set(reasons) == {
        "debt to income ratio high",
        "income low",
        "employment type: unemployed",
    }
    gate = explainability_gate(
        contrib,
        frame.head(20),
        reference=reference,
        categorical=["employment_type"],
        method="perturbation",
        plots_dir=tmp_path,
    )
    assert gate.passed and gate.value == 1.0 and gate.plots[0].exists()
    assert len(gate.evidence["examples"]) == 5


def test_explainability_gate_fails_when_reasons_change_between_calls():
    rng = np.random.default_rng(8)
    frame = _toy(rng)
    reference = reference_values(frame, ["debt_to_income", "income"], ["employment_type"])
    noise = np.random.default_rng(9)

    def jittery(rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(noise.normal(size=(len(rows), 3)), columns=list(reference))

    gate = explainability_gate(
        jittery, frame.head(20), reference=reference, categorical=CATEGORICAL, method="random"
    )
    assert not gate.passed and gate.evidence["unstable_rows"]


# --- robustness --------------------------------------------------------------------------------


def test_robustness_passes_a_scorer_that_handles_missing_and_unseen_values():
    frame = _toy(np.random.default_rng(10), 50)
    missing, unseen = robustness_gates(_toy_score, frame, NUMERIC, CATEGORICAL)
    assert missing.passed and missing.evidence["cases"] == 4  # 3 columns + all at once
    assert unseen.passed and unseen.evidence["cases"] == 2


def test_robustness_catches_a_scorer_that_raises_on_missing_values():
    frame = _toy(np.random.default_rng(11), 50)

    def strict(rows: pd.DataFrame) -> np.ndarray:
        if rows.isna().any().any():
            raise ValueError("Input contains NaN")
        return _toy_score(rows)

    missing, unseen = robustness_gates(strict, frame, NUMERIC, CATEGORICAL)
    assert not missing.passed and missing.value == 4
    assert "raised ValueError: Input contains NaN" in missing.evidence["failures"][0]["problem"]
    assert unseen.passed


def test_robustness_catches_scores_outside_zero_one_and_unseen_category_failures():
    frame = _toy(np.random.default_rng(12), 50)
    known = {"employed": 0.0, "unemployed": 1.0}

    def raw_logit(rows: pd.DataFrame) -> np.ndarray:
        codes = rows["employment_type"].map(lambda v: known[v])  # KeyError on unseen values
        return 1.0 + rows["debt_to_income"].fillna(0).to_numpy() + codes.to_numpy()

    missing, unseen = robustness_gates(raw_logit, frame, NUMERIC, CATEGORICAL)
    assert not missing.passed
    assert any("outside [0, 1]" in f["problem"] for f in missing.evidence["failures"])
    assert not unseen.passed and unseen.value == 2
    assert "KeyError" in unseen.evidence["failures"][0]["problem"]


def test_monotonic_check_catches_a_scorer_decreasing_in_debt_to_income():
    frame = _toy(np.random.default_rng(13), 60)
    rules = [("debt_to_income", "increasing"), ("income", "decreasing")]
    assert monotonic_gate(_toy_score, frame, rules).passed

    def backwards(rows: pd.DataFrame) -> np.ndarray:
        flipped = rows.assign(debt_to_income=2.0 - rows["debt_to_income"])
        return _toy_score(flipped)

    result = monotonic_gate(backwards, frame, rules)
    assert not result.passed and result.value > 0
    by_feature = {f["feature"]: f for f in result.evidence["features"]}
    assert by_feature["debt_to_income"]["rows_with_violations"] == 60
    assert by_feature["income"]["violations"] == 0
    assert "debt_to_income (increasing)" in result.message
    assert monotonic_gate(_toy_score, frame, []).skipped


# --- latency -----------------------------------------------------------------------------------


def test_latency_of_a_slow_scorer_fails_the_gate():
    frame = _toy(np.random.default_rng(14), 40)

    def slow(rows: pd.DataFrame) -> np.ndarray:
        time.sleep(0.004)
        return _toy_score(rows)

    stats = measure_latency(_toy_score, frame, calls=50, warmup=5)
    assert 0 < stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    failed = latency_gate(slow, frame, max_p99_ms=2.0, calls=40, warmup=2)
    assert not failed.passed and failed.value >= 4.0
    assert latency_gate(_toy_score, frame, max_p99_ms=1_000, calls=40).passed


# --- results -----------------------------------------------------------------------------------


def test_report_renders_markdown_table_rows_and_json():
    results = (
        measured("discrimination.auc", 0.81, 0.7, ">=", "Holdout AUC"),
        measured("latency.p99", np.float64(75.0), 50.0, "<=", "p99 | latency"),
        GateResult("champion.auc_drop", True, None, None, "<=", "no champion yet", skipped=True),
    )
    report = GateReport(results, {"model": "m"})
    assert not report.passed and report.failed == ["latency.p99"]
    assert report.failed_groups == ["latency"]
    markdown = report.to_markdown()
    assert "| gate | value | threshold | result | message |" in markdown
    assert "| latency.p99 | 75 | <= 50 | FAIL |" in markdown and "p99 \\| latency" in markdown
    rows = report.to_table_rows()
    assert [row["status"] for row in rows] == ["pass", "FAIL", "skipped"]
    assert json.loads(json.dumps(report.to_dict()))["failed"] == ["latency.p99"]
    assert report.get("discrimination.auc").value == pytest.approx(0.81)


def test_thresholds_use_the_spec_then_platform_defaults():
    spec = load_spec(SPEC_FILE)
    thresholds = resolved_thresholds(spec)
    assert thresholds["max_p99_latency_ms"] == 20  # from the spec
    assert thresholds["max_ece"] == PLATFORM_DEFAULTS["max_ece"] == 0.05
    bare = parse_spec({**spec.model_dump(mode="json"), "gates": {}})
    assert resolved_thresholds(bare)["max_p99_latency_ms"] == 50


# --- end to end with LightGBM ------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    # The gate tests use a random split of 10,000 rows; the split's 365-day embargo is tested
    # in test_holdout_platform.py.
    data = load_spec(SPEC_FILE).model_dump(mode="json")
    return parse_spec({**data, "outcome_window_days": None})


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory, spec: ModelSpec) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("data") / "credit.parquet"
    generate("credit_scoring", 10_000, 21, path, progress=False)
    frame = pd.read_parquet(path)
    for name in spec.features.numeric:
        frame[name] = frame[name].astype("float64")
    return frame


def _fit(spec: ModelSpec, train: pd.DataFrame, y: np.ndarray):
    monotone = {m.feature: 1 if m.direction == "increasing" else -1 for m in spec.monotonic}
    return train_lightgbm(
        train,
        spec.features.numeric,
        spec.features.categorical,
        y,
        seed=1,
        family=spec.family,
        time_column=spec.timestamp_column,
        monotone=monotone,
    )


def test_run_gates_passes_a_real_model_and_fails_a_shuffled_target(spec, credit, tmp_path):
    split = holdout_split(credit, spec)
    y = target01(split.train[spec.target], spec)
    numeric, categorical = spec.features.numeric, spec.features.categorical
    good = _fit(spec, split.train, y)
    report = run_gates(
        spec=spec, holdout=split.holdout, train_sample=split.train.sample(3_000, random_state=0),
        score=good.predict_proba_positive, numeric=numeric, categorical=categorical,
        champion_score=None, contributions=lightgbm_contributions(good.scorer),
        plots_dir=tmp_path / "good", latency_calls=100,
    )  # fmt: skip
    # finding 4: Gini is no longer a second AUC gate; the AUC's 95% lower bound is.
    for name in ("discrimination.auc", "discrimination.auc_lower_95", "discrimination.ks"):
        assert report.get(name).status == "pass", report.to_markdown()
    assert "discrimination.gini" not in report.names()
    assert "discrimination" not in report.failed_groups
    assert report.get("champion.auc_drop").skipped
    assert report.get("champion.auc_drop").message == "no champion yet"
    # Every gate is measured and passes, except: no champion yet (not applicable). Fairness is
    # measured at the spec's business cut-off (approve_below 0.15), not an assumed one.
    for result in report.results:
        if result.name.startswith("champion."):
            continue
        if result.name in spec.gates.waivers:  # unmeasurable on 10k rows: waived in writing
            assert result.status == "waived" and result.waiver, (result.name, result.message)
            continue
        assert result.status == "pass", (result.name, result.message)
    age = report.get("fairness.age")
    assert age.evidence["decision_threshold"] == spec.decision.approve_below
    assert age.evidence["cutoff_basis"] == "spec decision.approve_below"
    assert report.failed == []
    assert "TreeSHAP" in report.get("explainability.reason_codes").message
    assert (tmp_path / "good" / "calibration_reliability.png").exists()
    json.dumps(report.to_dict())

    shuffled = np.random.default_rng(0).permutation(y)
    bad = _fit(spec, split.train, shuffled)
    failing = run_gates(
        spec=spec, holdout=split.holdout, train_sample=None, score=bad.predict_proba_positive,
        numeric=numeric, categorical=categorical, champion_score=good.predict_proba_positive,
        plots_dir=tmp_path / "bad", latency_calls=50,
    )  # fmt: skip
    assert not failing.passed
    assert "discrimination.auc" in failing.failed and "discrimination" in failing.failed_groups
    assert failing.get("discrimination.auc").value < 0.6
    assert not failing.get("champion.auc_drop").passed  # much worse than the good model
    assert "discrimination.auc" in failing.to_markdown().split("FAILED", 1)[1].splitlines()[0]
    # finding 4: a high-risk model without a training sample fails stability (was: skipped).
    stability = failing.get("stability.feature_psi")
    assert stability.status == "FAIL" and stability.evidence["unmeasured"]
    assert "gates.waivers['stability.feature_psi']" in stability.message
    # ... and perturbation contributions do not add up to the score.
    assert failing.get("explainability.additivity").status == "FAIL"


def test_a_scorer_that_fails_on_the_holdout_fails_the_whole_report(spec, credit, tmp_path):
    holdout = credit.head(500)
    report = run_gates(
        spec=spec, holdout=holdout, train_sample=None, score=lambda f: np.full(len(f), 1.5),
        numeric=spec.features.numeric, categorical=spec.features.categorical,
        plots_dir=tmp_path,
    )  # fmt: skip
    assert report.failed == ["scoring"] and "outside [0, 1]" in report.results[0].message


# MLflow's SQL store (opened straight on SQLite here, no server) uses SQLAlchemy 2.1-deprecated
# options; the warning concerns MLflow's code, not ours.
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
def test_evaluate_version_fetches_holdout_and_models_through_the_client(
    spec, credit, tmp_path, monkeypatch
):
    from riskops.training.track import train_and_register
    from riskops.validation.evaluate import evaluate_version

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    before = mlflow.get_tracking_uri()
    (tmp_path / "store").mkdir()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    lineage = Lineage(
        "ds", "a" * 64, "fs-1", "file:///lake/fs/1", spec.spec_hash(), "b" * 64, "unknown", "ci"
    )
    frame = credit.head(6_000)
    versions = [
        train_and_register(
            client=client, spec=spec, features=frame, numeric=list(spec.features.numeric),
            categorical=list(spec.features.categorical), lineage=lineage, seed=seed,
        ).version
        for seed in (1, 2)
    ]  # fmt: skip
    report = evaluate_version(
        client=client,
        spec=spec,
        model_name=spec.name,
        version=versions[1],
        champion_version=versions[0],
        plots_dir=tmp_path / "plots",
    )
    assert mlflow.get_tracking_uri() == before  # no global URI was set
    assert report.context["version"] == versions[1] and report.context["holdout_rows"] == 1_200
    assert report.get("discrimination.auc").passed
    assert not report.get("champion.auc_drop").skipped
    assert "TreeSHAP" in report.get("explainability.reason_codes").message
    assert report.get("explainability.additivity").status == "pass"
    # finding 4: no training sample for a high-risk model: unmeasured, so failed (was: skipped).
    assert report.get("stability.feature_psi").status == "FAIL"
    assert report.get("stability.feature_psi").evidence["unmeasured"]
