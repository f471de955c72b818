"""Confidence-based performance estimation (CBPE): the AUC of a window of scores with no labels.

Idea (NannyML's CBPE): if a score is a calibrated probability, each decision's outcome is a
Bernoulli draw with that probability, so the performance the labels *will* show can be expected
from the scores alone.

Method. Let q_i be the calibrated probability of row i and s_i its served score (the ranking the
model uses; q is a monotone function of s). The AUC is U / (n1 * n0), with U the number of
(bad, good) pairs the score orders correctly (ties count half). Under independent Bernoulli(q_i)
outcomes, exactly:

    E[U]       = sum over pairs i != j with s_i > s_j of q_i (1 - q_j)  (+ half for ties)
    E[n1 * n0] = P * N - sum_i q_i (1 - q_i),   P = sum q_i, N = sum (1 - q_i)

and the estimate is E[U] / E[n1 * n0], computed in O(n log n) over the sorted scores. NannyML's
expected-ROC integration (expected TP/FP per threshold) is the same ratio with the i = j terms
left in both sums; the difference is O(1/n). Expected KS is max |E[TPR] - E[FPR]| over the
thresholds; expected bad rate is mean(q).

Interval. The realised AUC of the window varies around its expectation because outcomes are
random: ``simulations`` label vectors are drawn from Bernoulli(q) (seeded), and the AUC, KS and
bad rate of each give a standard error and a central interval (where the realised value should
land if the assumption holds). It leaves out the error of the calibrator fitted on a finite
reference.

Assumption: **no concept drift**. P(y | score) must be the one measured on the reference.
Covariate shift (a different mix of applicants, hence a different bad rate) is fine, because
each row's probability still holds. Not fine: a changed relationship (the economy turns: the same
score now means more risk), and pure label shift (P(x | y) fixed while the prior moves), which
also changes P(y | x). Then the estimate is wrong and only realised outcomes show it.

Calibration first: :func:`fit_reference` measures ECE and Hosmer-Lemeshow on the labelled
reference (the validation holdout); when the scores are miscalibrated (both significant and
material) it fits a calibrator (isotonic, or Platt on the logit of the score) and the estimate
uses it. Which was done is reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import expit, logit
from scipy.stats import rankdata

from riskops.monitoring.performance import deciles_of, hosmer_lemeshow
from riskops.validation.calibration import expected_calibration_error
from riskops.validation.results import jsonable

Calibration = Literal["auto", "none", "isotonic", "platt"]
_EPS = 1e-6


@dataclass(frozen=True)
class CalibrationCheck:
    """The reference's calibration, and whether a calibrator was fitted because of it."""

    n: int
    bads: int
    ece: float
    hl_statistic: float | None
    hl_p_value: float | None
    miscalibrated: bool
    calibrator: Literal["none", "isotonic", "platt"]
    reason: str
    ece_after: float | None = None  # in-sample ECE of the calibrated reference scores


@dataclass(frozen=True)
class CBPEReference:
    """A fitted reference: the calibration map from score to probability (immutable arrays)."""

    check: CalibrationCheck
    knots_x: tuple[float, ...] = ()  # isotonic: q = interp(s, knots_x, knots_y)
    knots_y: tuple[float, ...] = ()
    platt: tuple[float, float] | None = None  # q = expit(a * logit(s) + b)

    def probabilities(self, score: np.ndarray) -> np.ndarray:
        """The calibrated probability of each score."""
        s = np.asarray(score, dtype=np.float64)
        if self.check.calibrator == "isotonic":
            return np.interp(s, self.knots_x, self.knots_y)
        if self.check.calibrator == "platt" and self.platt is not None:
            a, b = self.platt
            return expit(a * logit(np.clip(s, _EPS, 1 - _EPS)) + b)
        return s


@dataclass(frozen=True)
class Estimate:
    """One estimated metric with its simulated standard error and central interval."""

    value: float
    se: float
    lower: float
    upper: float


@dataclass(frozen=True)
class CBPEEstimate:
    """Estimated performance of an unlabelled window of scores."""

    n: int
    auc: Estimate
    ks: Estimate
    bad_rate: Estimate
    calibration: CalibrationCheck
    simulations: int
    interval: float
    method: str = (
        "expected AUC = E[U] / E[n1*n0] under independent Bernoulli(calibrated score) outcomes; "
        "interval from simulated outcomes; assumes no concept drift (P(y|score) unchanged)"
    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return jsonable(asdict(self))

    def to_markdown(self) -> str:
        """A one-table markdown summary."""
        lines = [
            f"| estimate (n={self.n}) | value | se | {self.interval:.0%} interval |",
            "|---|---|---|---|",
        ]
        for name in ("auc", "ks", "bad_rate"):
            e: Estimate = getattr(self, name)
            lines.append(f"| {name} | {e.value:.4f} | {e.se:.4f} | {e.lower:.4f}-{e.upper:.4f} |")
        c = self.calibration
        lines.append("")
        lines.append(f"Calibrator: {c.calibrator} ({c.reason}).")
        return "\n".join(lines) + "\n"


def _scores(score: Any, name: str) -> np.ndarray:
    s = np.asarray(score, dtype=np.float64).ravel()
    if not len(s) or not np.isfinite(s).all() or s.min() < 0 or s.max() > 1:
        raise ValueError(f"{name}: scores must be a non-empty array of probabilities in [0, 1]")
    return s


def _fit_platt(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Logistic regression of y on logit(s) by Newton's method (two parameters, no penalty)."""
    x = logit(np.clip(s, _EPS, 1 - _EPS))
    design = np.column_stack([x, np.ones_like(x)])
    beta = np.array([1.0, 0.0])
    for _ in range(50):
        p = expit(design @ beta)
        gradient = design.T @ (y - p)
        hessian = (design * (p * (1 - p))[:, None]).T @ design
        step = np.linalg.solve(hessian + 1e-9 * np.eye(2), gradient)
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def fit_reference(
    score: Any,
    y: Any,
    *,
    calibration: Calibration = "auto",
    max_ece: float = 0.01,
    alpha: float = 0.01,
) -> CBPEReference:
    """Check the reference's calibration and fit a calibrator when it is needed.

    Args:
        score: served scores of a labelled reference (the validation holdout).
        y: its 0/1 outcomes (1 = bad).
        calibration: "auto" fits isotonic when the scores are miscalibrated, i.e. when the
            Hosmer-Lemeshow p-value is below ``alpha`` (beyond noise) **and** ECE exceeds
            ``max_ece`` (material); "none", "isotonic" and "platt" force a choice.
    """
    s = _scores(score, "reference")
    labels = np.asarray(y, dtype=np.float64).ravel()
    if len(labels) != len(s) or not np.isin(labels, (0.0, 1.0)).all():
        raise ValueError("reference: y must hold one 0/1 outcome per score")
    bads = int(labels.sum())
    if bads in (0, len(labels)):
        raise ValueError(f"reference: needs both outcomes, has {bads} bads of {len(labels)}")
    ece = expected_calibration_error(labels, s)
    hl = hosmer_lemeshow(deciles_of(labels, s))
    significant = hl.p_value is not None and hl.p_value < alpha
    miscalibrated = significant and ece > max_ece
    summary = f"reference ECE {ece:.4f} (max {max_ece}), HL p {hl.p_value}"
    chosen: Literal["none", "isotonic", "platt"]
    if calibration == "auto":
        chosen = "isotonic" if miscalibrated else "none"
        reason = f"{summary}: {'miscalibrated' if miscalibrated else 'calibrated'}"
    elif calibration in ("none", "isotonic", "platt"):
        chosen, reason = calibration, f"{summary}: {calibration} requested"
    else:
        raise ValueError(f"calibration must be auto, none, isotonic or platt, got {calibration!r}")
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()
    platt = None
    if chosen == "isotonic":
        from sklearn.isotonic import IsotonicRegression  # only when a calibrator is needed

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, labels)
        knots_x, knots_y = tuple(iso.X_thresholds_), tuple(iso.y_thresholds_)
    elif chosen == "platt":
        platt = _fit_platt(s, labels)
    check = CalibrationCheck(
        n=len(s),
        bads=bads,
        ece=ece,
        hl_statistic=hl.statistic,
        hl_p_value=hl.p_value,
        miscalibrated=miscalibrated,
        calibrator=chosen,
        reason=reason,
    )
    ref = CBPEReference(check, knots_x, knots_y, platt)
    if chosen != "none":
        after = expected_calibration_error(labels, np.clip(ref.probabilities(s), 0.0, 1.0))
        ref = CBPEReference(
            CalibrationCheck(**{**asdict(check), "ece_after": after}), knots_x, knots_y, platt
        )
    return ref


def _tie_groups(score: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct score, highest first: sum of q, sum of 1 - q, sum of q (1 - q)."""
    order = np.argsort(-score, kind="stable")
    s_sorted, q_sorted = score[order], q[order]
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])
    pos = np.add.reduceat(q_sorted, starts)
    neg = np.add.reduceat(1.0 - q_sorted, starts)
    var = np.add.reduceat(q_sorted * (1.0 - q_sorted), starts)
    return pos, neg, var


def expected_auc(score: Any, probability: Any | None = None) -> float:
    """E[U] / E[n1 * n0]: the AUC of ``score``'s ranking expected under Bernoulli outcomes.

    Args:
        score: the ranking (the served score).
        probability: each row's probability of the bad outcome; default the score itself.
    """
    s = _scores(score, "window")
    q = s if probability is None else np.asarray(probability, dtype=np.float64).ravel()
    pos, neg, var = _tie_groups(s, q)
    negatives_below = neg.sum() - np.cumsum(neg)  # goods strictly lower than each score
    pairs = np.sum(pos * negatives_below) + 0.5 * np.sum(pos * neg - var)
    total = pos.sum() * neg.sum() - var.sum()
    if total <= 0:
        raise ValueError("window: the scores leave no expected bad-good pair (all 0 or all 1)")
    return float(pairs / total)


def expected_ks(score: Any, probability: Any | None = None) -> float:
    """max over thresholds of |E[TPR] - E[FPR]| (NannyML's expected ROC curve)."""
    s = _scores(score, "window")
    q = s if probability is None else np.asarray(probability, dtype=np.float64).ravel()
    pos, neg, _ = _tie_groups(s, q)
    return float(np.max(np.abs(np.cumsum(pos) / pos.sum() - np.cumsum(neg) / neg.sum())))


def _simulate(
    score: np.ndarray, q: np.ndarray, simulations: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUC, KS and bad rate of ``simulations`` outcome vectors drawn from Bernoulli(q)."""
    rng = np.random.default_rng(seed)
    n = len(score)
    ranks = rankdata(score)  # midranks: ties count half, as in the AUC
    order = np.argsort(-score, kind="stable")
    s_sorted = score[order]
    ends = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), n - 1]  # last row of each tie
    q_sorted, ranks_sorted = q[order], ranks[order]
    aucs, kss, rates = [], [], []
    chunk = max(1, 2_000_000 // n)
    for start in range(0, simulations, chunk):
        draws = rng.random((min(chunk, simulations - start), n)) < q_sorted
        n1 = draws.sum(axis=1)
        keep = (n1 > 0) & (n1 < n)
        draws, n1 = draws[keep], n1[keep]
        n0 = n - n1
        aucs.append((draws @ ranks_sorted - n1 * (n1 + 1) / 2.0) / (n1 * n0))
        tp = np.cumsum(draws, axis=1)[:, ends]
        fp = (ends + 1)[None, :] - tp
        kss.append(np.max(np.abs(tp / n1[:, None] - fp / n0[:, None]), axis=1))
        rates.append(n1 / n)
    return np.concatenate(aucs), np.concatenate(kss), np.concatenate(rates)


def _estimate(value: float, draws: np.ndarray, interval: float) -> Estimate:
    tail = (1.0 - interval) / 2.0
    lower, upper = np.quantile(draws, [tail, 1.0 - tail]) if len(draws) else (math.nan,) * 2
    se = float(np.std(draws, ddof=1)) if len(draws) > 1 else math.nan
    return Estimate(float(value), se, float(lower), float(upper))


def estimate_performance(
    reference: CBPEReference,
    score: Any,
    *,
    simulations: int = 200,
    interval: float = 0.95,
    seed: int = 0,
) -> CBPEEstimate:
    """Estimated AUC, KS and bad rate of an unlabelled window of served scores.

    Args:
        reference: from :func:`fit_reference` (its calibrator turns scores into probabilities).
        score: the window's served scores.
        simulations: outcome vectors drawn for the standard error and interval.
        seed: of those draws (the estimate itself is deterministic).
    """
    s = _scores(score, "window")
    q = np.clip(reference.probabilities(s), 0.0, 1.0)
    auc_draws, ks_draws, rate_draws = _simulate(s, q, simulations, seed)
    return CBPEEstimate(
        n=len(s),
        auc=_estimate(expected_auc(s, q), auc_draws, interval),
        ks=_estimate(expected_ks(s, q), ks_draws, interval),
        bad_rate=_estimate(float(q.mean()), rate_draws, interval),
        calibration=reference.check,
        simulations=simulations,
        interval=interval,
    )
