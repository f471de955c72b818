"""Discrimination gates: holdout AUC, the lower end of its 95% confidence interval, and KS.

The interval is DeLong's (DeLong, DeLong & Clarke-Pearson 1988; the fast midrank form of Sun &
Xu 2014): the AUC's variance from the per-row structural components, no resampling, so it is
deterministic. Gini (2 * AUC - 1) is evidence on the AUC gate, not a gate of its own: it is the
same number rescaled. The bad rate per score decile (and how often it falls from one decile to
the next) is evidence too: at holdout sizes the lower deciles hold too few defaults to gate it.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
from scipy.stats import rankdata

from riskops.training.metrics import binary_metrics
from riskops.validation.results import GateResult, measured, skipped

Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def delong_auc_variance(y_true: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """The AUC and its DeLong variance for 0/1 labels ``y_true`` (1 = bad) and ``score``."""
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(score, dtype=np.float64)
    positives, negatives = p[y], p[~y]
    m, n = len(positives), len(negatives)
    if m < 2 or n < 2:
        raise ValueError(f"need two rows of each class for the AUC interval, got {m} and {n}")
    rank_all = rankdata(np.concatenate([positives, negatives]))  # midranks: ties count half
    v10 = (rank_all[:m] - rankdata(positives)) / n  # per positive: share of negatives below
    v01 = 1.0 - (rank_all[m:] - rankdata(negatives)) / m  # per negative: share of positives above
    auc = float(v10.mean())
    return auc, float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)


def auc_interval(y_true: np.ndarray, score: np.ndarray) -> tuple[float, float, float]:
    """(AUC, lower, upper) of the two-sided 95% DeLong confidence interval, clipped to [0, 1]."""
    auc, variance = delong_auc_variance(y_true, score)
    half = Z_95 * math.sqrt(max(variance, 0.0))
    return auc, max(0.0, auc - half), min(1.0, auc + half)


def decile_bad_rates(y_true: np.ndarray, score: np.ndarray, bins: int = 10) -> dict[str, object]:
    """Bad rate per score decile (lowest scores first) and the number of falls between them."""
    y = np.asarray(y_true).astype(np.float64)
    order = np.argsort(np.asarray(score, dtype=np.float64), kind="stable")
    rates = [float(part.mean()) for part in np.array_split(y[order], bins) if len(part)]
    falls = sum(1 for low, high in pairwise(rates) if high < low)
    return {"bad_rate_by_decile": rates, "decile_inversions": falls}


def auc_lower_bound_gate(y: np.ndarray, p: np.ndarray, min_auc: float) -> GateResult:
    """The lower end of the holdout AUC's 95% DeLong interval against ``min_auc``."""
    name = "discrimination.auc_lower_95"
    try:
        auc, lower, upper = auc_interval(y, p)
    except ValueError as error:
        return skipped(name, f"The AUC interval cannot be computed: {error}.", threshold=min_auc)
    return measured(
        name,
        lower,
        min_auc,
        ">=",
        f"The lower end of the 95% DeLong interval [{lower:.4f}, {upper:.4f}] of the holdout "
        f"AUC {auc:.4f} ({int(np.sum(y))} bad of {len(y)} rows)",
        why="the AUC must clear min_auc beyond sampling noise",
        evidence={"auc": auc, "lower": lower, "upper": upper, "method": "DeLong"},
    )


def discrimination_gates(y: np.ndarray, p: np.ndarray, t: dict[str, float]) -> list[GateResult]:
    """AUC (Gini and decile bad rates as evidence), the AUC's 95% lower bound, and KS."""
    m = binary_metrics(y, p)
    evidence = {k: m[k] for k in ("auc", "gini", "ks", "pr_auc", "positive_rate", "n")}
    evidence.update(decile_bad_rates(y, p))
    lower_bound = auc_lower_bound_gate(y, p, t["min_auc"])
    if not lower_bound.skipped:
        evidence["auc_95_interval"] = [lower_bound.evidence["lower"], lower_bound.evidence["upper"]]
    return [
        measured(
            "discrimination.auc",
            m["auc"],
            t["min_auc"],
            ">=",
            f"Holdout AUC (Gini {m['gini']:.4f})",
            evidence=evidence,
        ),
        lower_bound,
        measured("discrimination.ks", m["ks"], t["min_ks"], ">=", "Holdout KS statistic"),
    ]
