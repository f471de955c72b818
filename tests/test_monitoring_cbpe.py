"""CBPE: estimated AUC of unlabelled scores, against the realised AUC once outcomes are known.

Tolerance: +-0.02 on the AUC of a 10,000-row window (reference: 20,000 labelled rows). Measured
over 20 seeds of these generators: the largest |estimate - realised| was 0.011 on the
covariate-shifted batch, 0.015 on the label-resampled batch and 0.014 after isotonic
recalibration of p**0.6 scores; the simulated standard error of the realised AUC is about 0.005,
so 0.02 is about four of them. Concept drift misses by 0.12 or more.
"""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from riskops.monitoring.cbpe import (
    estimate_performance,
    expected_auc,
    expected_ks,
    fit_reference,
)

TOLERANCE = 0.02


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _population(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Risk factor x, the calibrated model's probability p = P(bad | x), and outcomes y."""
    x = rng.normal(size=n)
    p = _sigmoid(-2.6 + 1.3 * x)
    return x, p, (rng.random(n) < p).astype(int)


@pytest.fixture(scope="module")
def world() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261201)
    _, p_ref, y_ref = _population(rng, 20_000)
    x, p, y = _population(rng, 200_000)
    return {"p_ref": p_ref, "y_ref": y_ref, "x": x, "p": p, "y": y}


def _covariate_shifted(world: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Rows resampled by the risk factor (P(y | x) kept): the bad rate about doubles."""
    weight = np.exp(0.9 * world["x"])
    return rng.choice(len(weight), 10_000, p=weight / weight.sum())


def test_expected_auc_is_the_exact_pair_sum_with_ties() -> None:
    rng = np.random.default_rng(1)
    s = np.round(rng.random(60), 1)  # many ties
    q = np.clip(s * 0.9 + 0.05, 0, 1)
    numerator = sum(
        q[i] * (1 - q[j]) * (1.0 if s[i] > s[j] else 0.5)
        for i, j in product(range(60), repeat=2)
        if i != j and s[i] >= s[j]
    )
    denominator = sum(q[i] * (1 - q[j]) for i, j in product(range(60), repeat=2) if i != j)
    assert expected_auc(s, q) == pytest.approx(numerator / denominator, rel=1e-12)
    # NannyML's expected ROC (cumulative expected TP/FP, trapezoids) keeps the i == j terms
    order = np.argsort(-s, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(s[order]) != 0])
    tpr = np.r_[0, np.cumsum(np.add.reduceat(q[order], starts))] / q.sum()
    fpr = np.r_[0, np.cumsum(np.add.reduceat(1 - q[order], starts))] / (1 - q).sum()
    nannyml = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert abs(expected_auc(s, q) - nannyml) < 0.02  # O(1/n): 60 rows here
    assert 0 < expected_ks(s, q) <= 1


def test_expected_auc_and_its_se_match_simulated_realised_aucs(world: dict) -> None:
    """Outcomes drawn here, scored by scikit-learn: their mean AUC is the estimate."""
    score = world["p"][:3000]
    rng = np.random.default_rng(3)
    draws = [roc_auc_score(rng.random(len(score)) < score, score) for _ in range(300)]
    reference = fit_reference(world["p_ref"], world["y_ref"])
    estimate = estimate_performance(reference, score, simulations=300, seed=4)
    assert abs(estimate.auc.value - np.mean(draws)) < 4 * np.std(draws) / np.sqrt(300)
    assert estimate.auc.se == pytest.approx(np.std(draws, ddof=1), rel=0.2)
    assert estimate.bad_rate.value == pytest.approx(score.mean())


def test_calibrated_reference_is_left_uncalibrated(world: dict) -> None:
    reference = fit_reference(world["p_ref"], world["y_ref"])
    check = reference.check
    assert (check.calibrator, check.miscalibrated) == ("none", False)
    assert check.ece < 0.01 and check.hl_p_value > 0.01
    assert "calibrated" in check.reason


def test_cbpe_tracks_auc_on_a_prior_shifted_batch(world: dict) -> None:
    reference = fit_reference(world["p_ref"], world["y_ref"])
    rows = _covariate_shifted(world, np.random.default_rng(11))
    score, y = world["p"][rows], world["y"][rows]
    assert y.mean() > 2 * world["y_ref"].mean()  # the bad rate has doubled
    estimate = estimate_performance(reference, score)
    realised = roc_auc_score(y, score)
    print(f"covariate shift: estimated {estimate.auc.value:.4f}, realised {realised:.4f}")
    assert abs(estimate.auc.value - realised) <= TOLERANCE
    assert abs(estimate.bad_rate.value - y.mean()) < 0.015
    assert estimate.auc.lower - 0.005 < realised < estimate.auc.upper + 0.005


def test_cbpe_auc_under_label_resampling_but_not_its_bad_rate(world: dict) -> None:
    """Bads drawn twice as often: the ROC is unchanged, P(y | x) is not (documented)."""
    reference = fit_reference(world["p_ref"], world["y_ref"])
    rng = np.random.default_rng(12)
    bad, good = np.flatnonzero(world["y"] == 1), np.flatnonzero(world["y"] == 0)
    rate = world["y"].mean()
    n_bad = int(10_000 * 2 * rate / (1 + rate))
    rows = np.r_[rng.choice(bad, n_bad), rng.choice(good, 10_000 - n_bad)]
    score, y = world["p"][rows], world["y"][rows]
    estimate = estimate_performance(reference, score)
    realised = roc_auc_score(y, score)
    print(f"label shift: estimated {estimate.auc.value:.4f}, realised {realised:.4f}")
    assert abs(estimate.auc.value - realised) <= TOLERANCE
    assert y.mean() - estimate.bad_rate.value > 0.05  # the bad rate is underestimated


def test_cbpe_recalibrates_miscalibrated_scores(world: dict) -> None:
    rows = _covariate_shifted(world, np.random.default_rng(13))
    served = world["p"][rows] ** 0.6  # ranks the same, overstates every probability
    realised = roc_auc_score(world["y"][rows], served)
    raw = estimate_performance(
        fit_reference(world["p_ref"] ** 0.6, world["y_ref"], calibration="none"), served
    )
    auto_ref = fit_reference(world["p_ref"] ** 0.6, world["y_ref"])
    auto = estimate_performance(auto_ref, served)
    platt = estimate_performance(
        fit_reference(world["p_ref"] ** 0.6, world["y_ref"], calibration="platt"), served
    )
    print(
        f"p**0.6: realised {realised:.4f}; raw {raw.auc.value:.4f}, isotonic "
        f"{auto.auc.value:.4f}, platt {platt.auc.value:.4f}"
    )
    assert abs(raw.auc.value - realised) > 0.05
    assert auto_ref.check.miscalibrated and auto_ref.check.calibrator == "isotonic"
    assert auto.calibration.calibrator == "isotonic"
    assert abs(auto.auc.value - realised) <= TOLERANCE
    assert abs(platt.auc.value - realised) <= TOLERANCE
    assert abs(auto.bad_rate.value - world["y"][rows].mean()) < 0.015


def test_cbpe_does_not_track_concept_drift(world: dict) -> None:
    """The documented limitation: the same scores now mean something else."""
    reference = fit_reference(world["p_ref"], world["y_ref"])
    rng = np.random.default_rng(14)
    rows = _covariate_shifted(world, rng)
    score = world["p"][rows]
    drifted = (rng.random(len(rows)) < _sigmoid(-2.0 + 0.6 * world["x"][rows])).astype(int)
    estimate = estimate_performance(reference, score)
    realised = roc_auc_score(drifted, score)
    print(f"concept drift: estimated {estimate.auc.value:.4f}, realised {realised:.4f}")
    assert estimate.auc.value - realised > 0.08
    assert realised < estimate.auc.lower


def test_estimate_is_json_and_markdown_and_refuses_bad_scores(world: dict) -> None:
    reference = fit_reference(world["p_ref"] ** 0.6, world["y_ref"])
    estimate = estimate_performance(reference, world["p"][:2000] ** 0.6, simulations=50)
    data = json.loads(json.dumps(estimate.to_dict(), allow_nan=False))
    assert data["calibration"]["calibrator"] == "isotonic"
    assert data["auc"]["lower"] <= data["auc"]["value"] <= data["auc"]["upper"]
    assert "no concept drift" in data["method"]
    assert "| auc |" in estimate.to_markdown()
    with pytest.raises(ValueError, match="probabilities in"):
        estimate_performance(reference, np.array([0.2, 1.5]))
    with pytest.raises(ValueError, match="needs both outcomes"):
        fit_reference(np.array([0.1, 0.2]), np.array([0, 0]))
