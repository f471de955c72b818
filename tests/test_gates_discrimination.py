"""Finding 4 (issue 7): "the Gini gate is the AUC gate twice". It is replaced by a gate that adds
evidence: the lower end of the AUC's 95% DeLong interval must clear min_auc."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from riskops.validation.discrimination import auc_interval, delong_auc_variance
from riskops.validation.gates import PLATFORM_DEFAULTS, discrimination_gates


def _scores(seed: int, n: int, positives: float, separation: float):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positives).astype(int)
    logit = -2.0 + separation * y + rng.normal(0, 1, n)
    return y, 1 / (1 + np.exp(-logit))


def test_delong_variance_matches_a_seeded_bootstrap():
    y, p = _scores(1, 3_000, 0.1, 1.0)
    auc, variance = delong_auc_variance(y, p)
    assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    rng = np.random.default_rng(2)
    boots = []
    for _ in range(400):
        pick = rng.integers(0, len(y), len(y))
        boots.append(roc_auc_score(y[pick], p[pick]))
    assert np.sqrt(variance) == pytest.approx(np.std(boots), rel=0.15)
    ties = np.round(p, 1)  # midranks: tied scores count half, as in the AUC itself
    assert delong_auc_variance(y, ties)[0] == pytest.approx(roc_auc_score(y, ties), abs=1e-12)


def test_a_small_holdout_whose_auc_clears_min_auc_only_by_noise_fails():
    y, p = _scores(3, 300, 0.1, 0.8)
    thresholds = dict(PLATFORM_DEFAULTS)
    auc, lower, _ = auc_interval(y, p)
    assert auc > thresholds["min_auc"] > lower  # the point estimate alone would pass
    gates = {g.name: g for g in discrimination_gates(y, p, thresholds)}
    assert gates["discrimination.auc"].status == "pass"
    assert gates["discrimination.auc_lower_95"].status == "FAIL"
    assert gates["discrimination.auc_lower_95"].value == pytest.approx(lower)
    assert "discrimination.gini" not in gates  # no second copy of the AUC gate


def test_a_large_holdout_of_the_same_model_passes_and_gini_is_evidence():
    y, p = _scores(4, 20_000, 0.1, 1.2)
    gates = {g.name: g for g in discrimination_gates(y, p, dict(PLATFORM_DEFAULTS))}
    assert gates["discrimination.auc_lower_95"].status == "pass"
    evidence = gates["discrimination.auc"].evidence
    assert evidence["gini"] == pytest.approx(2 * evidence["auc"] - 1)
    lower, upper = evidence["auc_95_interval"]
    assert lower < evidence["auc"] < upper
    rates = evidence["bad_rate_by_decile"]
    assert len(rates) == 10 and rates[-1] > rates[0]  # rank ordering, as evidence
    assert evidence["decile_inversions"] >= 0


def test_too_few_bad_outcomes_for_an_interval_is_unmeasured_not_a_crash():
    y = np.array([0] * 99 + [1])
    p = np.linspace(0.01, 0.99, 100)
    gates = {g.name: g for g in discrimination_gates(y, p, dict(PLATFORM_DEFAULTS))}
    assert gates["discrimination.auc"].status == "pass"  # one default ranked last: AUC 1
    assert gates["discrimination.auc_lower_95"].skipped  # fails for high-risk via the policy
