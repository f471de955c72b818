"""Drift from two profiles alone: PSI as exact as the raw rows, right detections, no cry-wolf."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from riskops.monitoring import (
    Band,
    DriftThresholds,
    FeatureThresholds,
    ProfileSchema,
    compare_profiles,
    profile_frame,
)
from riskops.monitoring.sketch_stats import PSI_EPSILON, psi, psi_critical
from riskops.monitoring.whylogs_compat import whylogs
from riskops.specs import Monitoring

NUMERIC = ("income", "debt_ratio", "age", "balance", "utilisation", "tenure")
CATEGORICAL = ("employment", "region", "channel")
SCHEMA = ProfileSchema(numeric=NUMERIC, categorical=CATEGORICAL)
EMPLOYMENT = (["salaried", "self-employed", "retired", "student", "unemployed"],
              [0.5, 0.2, 0.15, 0.1, 0.05])  # fmt: skip
REGIONS = [f"r{i:02d}" for i in range(12)]


def draw(n: int, rng: np.random.Generator, inject: str | None = None) -> pd.DataFrame:
    """Applicant-like rows from one fixed distribution, with at most one injected drift."""
    balance = rng.lognormal(7, 1.2, n)
    balance[rng.random(n) < 0.3] = 0.0  # a point mass, as real balances have
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10.5, 0.5, n),
            "debt_ratio": rng.beta(2, 5, n),
            "age": rng.integers(18, 80, n),
            "balance": balance,
            "utilisation": rng.normal(0.4, 0.15, n),
            "tenure": rng.exponential(5, n),
            "employment": rng.choice(EMPLOYMENT[0], n, p=EMPLOYMENT[1]).astype(object),
            "region": rng.choice(REGIONS, n).astype(object),
            "channel": rng.choice(["web", "branch", "broker"], n, p=[0.6, 0.3, 0.1]),
        }
    )
    if inject == "mean_shift":  # incomes 25% lower across the board
        frame["income"] *= 0.75
    elif inject == "variance_change":
        frame["utilisation"] = 0.4 + (frame["utilisation"] - 0.4) * 2.0
    elif inject == "new_category":
        hit = rng.random(n) < 0.10
        frame.loc[hit, "region"] = rng.choice(["r90", "r91"], int(hit.sum()))
    elif inject == "mix_shift":
        frame["employment"] = rng.choice(EMPLOYMENT[0], n, p=[0.25, 0.35, 0.1, 0.1, 0.2])
    elif inject == "null_jump":
        frame.loc[rng.random(n) < 0.15, "tenure"] = np.nan
    return frame


@pytest.fixture(scope="module")
def reference():
    return profile_frame(draw(100_000, np.random.default_rng(2026)), SCHEMA)


def _exact_psi(ref: np.ndarray, tgt: np.ndarray, edges: tuple[float, ...]) -> float:
    """PSI on the raw rows over the same bins: [edge_i, edge_i+1), as the sketch CDF counts."""

    def shares(values: np.ndarray) -> np.ndarray:
        below = np.searchsorted(np.sort(values), np.asarray(edges), side="left") / len(values)
        return np.diff(np.concatenate([[0.0], below, [1.0]]))

    return psi(shares(ref), shares(tgt))


CASES = {
    "normal_shift_small": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.2, 1, n)),
    "normal_shift": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.5, 1, n)),
    "scale_change": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 1.4, n)),
    "lognormal_skew": (
        lambda r, n: r.lognormal(0, 1, n),
        lambda r, n: r.lognormal(0.2, 1.3, n),
    ),
    "same": (lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0, 1, n)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_numeric_psi_from_sketches_matches_exact_psi_on_raw_rows(case):
    rng = np.random.default_rng(7)
    make_ref, make_tgt = CASES[case]
    ref, tgt = make_ref(rng, 300_000), make_tgt(rng, 200_000)  # both sketches estimating
    schema = ProfileSchema(numeric=("v",))
    report = compare_profiles(
        profile_frame(pd.DataFrame({"v": ref}), schema),
        profile_frame(pd.DataFrame({"v": tgt}), schema),
    )
    feature = report["v"]
    exact = _exact_psi(ref, tgt, feature.edges)
    print(f"{case}: PSI from sketches {feature.psi:.4f}, exact {exact:.4f}")
    assert len(feature.edges) == 9  # deciles of the reference
    assert abs(feature.psi - exact) <= 0.01


def test_large_psi_from_sketches_is_within_a_few_percent_of_exact():
    rng = np.random.default_rng(8)
    ref, tgt = rng.normal(0, 1, 300_000), rng.normal(1.5, 1, 200_000)
    schema = ProfileSchema(numeric=("v",))
    feature = compare_profiles(
        profile_frame(pd.DataFrame({"v": ref}), schema),
        profile_frame(pd.DataFrame({"v": tgt}), schema),
    )["v"]
    exact = _exact_psi(ref, tgt, feature.edges)
    assert exact > 1.5 and feature.psi == pytest.approx(exact, rel=0.05)
    assert feature.band == Band.ALERT


def test_categorical_psi_from_sketches_matches_exact():
    rng = np.random.default_rng(9)
    cats = [f"k{i}" for i in range(12)]
    p = np.linspace(1, 3, 12) / np.linspace(1, 3, 12).sum()
    ref = pd.Series(rng.choice(cats, 200_000, p=p))
    tgt = pd.Series(rng.choice([*cats, "new"], 150_000, p=np.append(p[::-1] * 0.97, 0.03)))
    schema = ProfileSchema(categorical=("k",))
    feature = compare_profiles(
        profile_frame(pd.DataFrame({"k": ref}), schema),
        profile_frame(pd.DataFrame({"k": tgt}), schema),
    )["k"]
    labels = [b for b in feature.bins if b != "(other)"]
    r = ref.value_counts(normalize=True).reindex(labels, fill_value=0).to_numpy()
    t = tgt.value_counts(normalize=True).reindex(labels, fill_value=0).to_numpy()
    exact = psi(np.append(r, 1 - r.sum()), np.append(t, 1 - t.sum()))
    assert feature.psi == pytest.approx(exact, abs=1e-9)  # a dozen categories: sketch is exact
    assert feature.new_categories == ("new",)
    assert feature.new_category_share == pytest.approx((tgt == "new").mean())
    assert feature.chi2_pvalue < 1e-6


INJECTED = {
    "mean_shift": "income",
    "variance_change": "utilisation",
    "new_category": "region",
    "mix_shift": "employment",
    "null_jump": "tenure",
}


@pytest.mark.parametrize("inject", sorted(INJECTED))
def test_each_injected_drift_is_detected_on_its_feature_and_only_there(reference, inject):
    target = profile_frame(draw(20_000, np.random.default_rng(11), inject), SCHEMA)
    report = compare_profiles(reference, target)
    expected = INJECTED[inject]
    assert report.alerts() == (expected,), [(f.name, f.band, f.reasons) for f in report.features]
    assert report.drifted() == (expected,)  # nothing else even on watch
    assert report.worst_band == Band.ALERT
    feature = report[expected]
    assert feature.reasons
    if inject == "null_jump":
        assert feature.null_rate_change == pytest.approx(0.15, abs=0.01)
        assert feature.psi < 0.01  # the values that are there did not move
    if inject == "new_category":
        assert set(feature.new_categories) == {"r90", "r91"}
    if inject == "variance_change":  # the mean did not move; the spread did
        assert feature.ks > 0.1 and feature.wasserstein_norm > 0.5


def test_batches_from_the_reference_distribution_raise_no_alert_over_20_seeds(reference):
    alerts = watches = 0
    for seed in range(20):
        target = profile_frame(draw(5_000, np.random.default_rng(seed)), SCHEMA)
        report = compare_profiles(reference, target)
        alerts += len(report.alerts())
        watches += len(report.drifted())
    print(f"false alarms over 20 seeds x {len(SCHEMA.columns)} features: {alerts} alert(s), "
          f"{watches} watch-or-worse")  # fmt: skip
    assert alerts == 0
    assert watches == 0


def test_small_windows_do_not_alert_on_noise(reference):
    # min_rows lowered so that the sample-size critical value, not min_rows, does the work
    thresholds = DriftThresholds(min_rows=100)
    alerts = watches = 0
    for seed in range(20):
        target = profile_frame(draw(200, np.random.default_rng(100 + seed)), SCHEMA)
        report = compare_profiles(reference, target, thresholds=thresholds)
        alerts += len(report.alerts())
        watches += len(report.drifted())
        for feature in report.features:
            if feature.band == Band.WATCH and feature.psi is not None and feature.psi > 0.1:
                assert feature.psi > feature.psi_critical_99  # raised only past both limits
    print(f"200-row windows, 20 seeds: {alerts} alert(s), {watches} watch")
    assert alerts == 0
    # at 200 rows the 99% critical PSI is above the 0.10 band: noise cannot reach "watch"
    assert psi_critical(100_000, 200, 10, 0.99) > 0.10
    # and with the spec's default min_rows (500) nothing is judged at all
    report = compare_profiles(reference, profile_frame(draw(200, np.random.default_rng(1)), SCHEMA))
    assert report.worst_band is None
    assert all(f.band is None for f in report.features)
    assert "min_rows" in report.features[0].reasons[0]
    # while a real drift on a small window still shows
    shifted = profile_frame(draw(200, np.random.default_rng(2), "mean_shift"), SCHEMA)
    assert compare_profiles(reference, shifted, thresholds=thresholds).alerts() == ("income",)


def test_psi_critical_value_matches_its_false_positive_rate():
    """Yurdakul & Naranjo: PSI ~ (1/n + 1/m) chi2(B-1) under no drift; check by simulation."""
    rng = np.random.default_rng(3)
    n, m, runs = 2_000, 400, 600
    critical = psi_critical(n, m, 10, 0.95)
    exceed = 0
    for _ in range(runs):
        ref, tgt = rng.normal(size=n), rng.normal(size=m)
        edges = tuple(np.quantile(ref, np.arange(1, 10) / 10))
        exceed += _exact_psi(ref, tgt, edges) > critical
    assert 0.02 < exceed / runs < 0.09


def test_thresholds_per_model_and_per_feature(reference, credit_spec):
    frame = draw(20_000, np.random.default_rng(12))
    frame["debt_ratio"] = frame["debt_ratio"] * 1.25  # a moderate move: PSI between the bands
    target = profile_frame(frame, SCHEMA)
    default = compare_profiles(reference, target)
    psi_value = default["debt_ratio"].psi
    assert 0.10 < psi_value < 0.25 and default["debt_ratio"].band == Band.WATCH
    strict = DriftThresholds(features={"debt_ratio": FeatureThresholds(psi_alert=psi_value - 0.01)})
    assert compare_profiles(reference, target, thresholds=strict)["debt_ratio"].band == Band.ALERT
    assert compare_profiles(reference, target, thresholds=strict)["income"].band == Band.STABLE
    lax = DriftThresholds(psi_warn=0.3, psi_alert=0.5)
    assert compare_profiles(reference, target, thresholds=lax).worst_band == Band.STABLE
    from_spec = DriftThresholds.from_monitoring(credit_spec.monitoring)
    assert (from_spec.psi_warn, from_spec.psi_alert, from_spec.min_rows) == (
        credit_spec.monitoring.psi_warn,
        credit_spec.monitoring.psi_alert,
        credit_spec.monitoring.min_rows,
    )
    with pytest.raises(ValidationError, match="psi_warn"):
        DriftThresholds(features={"x": FeatureThresholds(psi_warn=0.4)})


def test_a_per_feature_override_in_the_spec_decides_that_features_band(reference, credit_spec):
    frame = draw(20_000, np.random.default_rng(12))
    frame["debt_ratio"] = frame["debt_ratio"] * 1.25  # PSI in the watch band by default
    target = profile_frame(frame, SCHEMA)
    psi_value = compare_profiles(reference, target)["debt_ratio"].psi
    monitoring = credit_spec.monitoring.model_dump()
    monitoring["features"] = {"debt_ratio": {"psi_alert": round(psi_value - 0.01, 4)}}
    section = Monitoring.model_validate(monitoring)  # the spec checks the name (test_specs)
    thresholds = DriftThresholds.from_monitoring(section)
    assert thresholds.for_feature("debt_ratio").psi_alert == round(psi_value - 0.01, 4)
    assert thresholds.for_feature("income").psi_alert == credit_spec.monitoring.psi_alert
    report = compare_profiles(reference, target, thresholds=thresholds)
    assert report["debt_ratio"].band == Band.ALERT
    assert compare_profiles(reference, target)["debt_ratio"].band == Band.WATCH
    # Every threshold of the spec's section reaches the comparison, not only the PSI bands.
    carried = {k: getattr(thresholds, k) for k in Monitoring.model_fields
               if k in DriftThresholds.model_fields}  # fmt: skip
    assert carried == {k: getattr(section, k) for k in carried} and len(carried) >= 10


def test_prediction_drift_and_skew_are_the_same_comparison():
    rng = np.random.default_rng(13)
    scores = ProfileSchema(numeric=("score",))
    champion = profile_frame(pd.DataFrame({"score": rng.beta(2, 8, 50_000)}), scores)
    riskier = profile_frame(pd.DataFrame({"score": rng.beta(3, 7, 5_000)}), scores)
    report = compare_profiles(champion, riskier, kind="prediction")
    assert report.kind == "prediction" and report.alerts() == ("score",)
    # a reference logged by whylogs itself (no riskops metadata): roles come from its metrics
    training = draw(20_000, np.random.default_rng(14))
    logged = whylogs.log(training[list(SCHEMA.columns)]).view()
    serving = profile_frame(draw(5_000, np.random.default_rng(15), "mix_shift"), SCHEMA)
    skew = compare_profiles(logged, serving, kind="skew", columns=["income", "employment"])
    assert skew["employment"].role == "categorical" and skew["income"].role == "numeric"
    assert skew.alerts() == ("employment",)


def test_report_is_json_and_names_what_is_missing(reference):
    narrower = ProfileSchema(numeric=NUMERIC[:-1], categorical=CATEGORICAL)
    target = profile_frame(draw(2_000, np.random.default_rng(16)), narrower)
    report = compare_profiles(reference, target)
    assert report["tenure"].band == Band.ALERT
    assert "absent from the target" in report["tenure"].reasons[0]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["worst_band"] == "alert" and data["alerts"] == ["tenure"]
    income = next(f for f in data["features"] if f["name"] == "income")
    assert income["band"] == "stable" and len(income["reference_shares"]) == 10
    with pytest.raises(KeyError, match="nope"):
        compare_profiles(reference, target, columns=["nope"])
    with pytest.raises(KeyError, match="was not compared"):
        report["nope"]
    assert PSI_EPSILON == 1e-4
