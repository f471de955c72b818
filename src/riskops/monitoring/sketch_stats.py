"""Distribution-comparison statistics computed from whylogs sketches alone (no raw rows).

Numbers use the KLL quantile sketch: its CDF gives the mass of any bin and its quantiles the
inverse CDF. Categories use the frequent-items sketch. Every function here is pure: sketches in,
floats out; the bands and thresholds live in :mod:`riskops.monitoring.drift`.

Sketch error: a KLL sketch with whylogs' default k=1024 answers rank queries within ~0.3%
(99th percentile of the worst case), so the mass of a decile bin is known to about a tenth of a
percent and a PSI in the band range (< 0.5) to about +/-0.003 (k=256: +/-0.01). Very large PSIs
(a feature moved out of the reference range) carry a relative error of ~1-2%, from bins whose
target share is tiny. Below ~3k values the sketch holds every value and is exact. The KS
statistic inherits the rank error: on identical distributions expect ~0.005, not 0.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from riskops.monitoring.whylogs_compat import sketching

# Floor on bin shares inside the PSI log-ratio (an empty bin would make it infinite); the same
# value Evidently and most credit-risk tooling use.
PSI_EPSILON = 1e-4
DEFAULT_BINS = 10
_QUANTILE_GRID = 256


@dataclass(frozen=True)
class Bins:
    """Bin masses of the reference and the target over the same bins."""

    labels: tuple[str, ...]
    reference: np.ndarray
    target: np.ndarray
    edges: tuple[float, ...] = ()  # numeric: split points; bin i is [edges[i-1], edges[i])


def psi(reference: np.ndarray, target: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index sum((t - r) * ln(t / r)) with shares floored at ``epsilon``."""
    r = np.maximum(np.asarray(reference, dtype=float), epsilon)
    t = np.maximum(np.asarray(target, dtype=float), epsilon)
    return float(np.sum((t - r) * np.log(t / r)))


def psi_critical(n_reference: int, n_target: int, bins: int, confidence: float) -> float:
    """The PSI that sampling noise alone exceeds with probability ``1 - confidence``.

    Under "same distribution", PSI is asymptotically (1/n + 1/m) * chi2(B - 1) for sample sizes
    n, m and B bins (Yurdakul & Naranjo 2020, "Statistical properties of the population stability
    index", J. Risk Model Validation 14(4)); with quantile bins of the reference this is the
    percentile of that scaled chi-square.
    """
    if n_reference <= 0 or n_target <= 0 or bins < 2:
        return math.inf
    return _chi2_quantile(confidence, bins - 1) * (1 / n_reference + 1 / n_target)


@functools.cache
def _chi2_quantile(confidence: float, dof: int) -> float:
    # scipy's ppf costs ~0.5 ms a call; a report asks for the same few quantiles per feature
    return float(stats.chi2.ppf(confidence, dof))


@functools.cache
def normal_quantile(confidence: float) -> float:
    """Two-sided critical value of the standard normal at ``confidence``."""
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def js_distance(reference: np.ndarray, target: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2: 0 same, 1 disjoint)."""
    value = float(jensenshannon(reference, target, base=2))
    return 0.0 if math.isnan(value) else value


def _masses(sketch: sketching.kll_doubles_sketch, edges: list[float]) -> np.ndarray:
    cdf = np.asarray(sketch.get_cdf(edges), dtype=float)  # m + 1 values, the last is 1.0
    return np.clip(np.diff(np.concatenate([[0.0], cdf])), 0.0, 1.0)


def numeric_bins(
    reference: sketching.kll_doubles_sketch,
    target: sketching.kll_doubles_sketch,
    bins: int = DEFAULT_BINS,
) -> Bins:
    """Quantile bins of the reference (deciles by default) and both masses from the KLL CDFs.

    Repeated quantiles (a point mass, e.g. many zeros) collapse to one edge, so such a feature
    has fewer, unequal bins: the share of the point mass is then compared as one bin.
    """
    qs = [i / bins for i in range(1, bins)]
    edges = sorted({float(q) for q in reference.get_quantiles(qs) if math.isfinite(q)})
    if not edges:
        edges = [float(reference.get_min_value())]
    labels = (
        [f"< {edges[0]:.6g}"]
        + [f"[{a:.6g}, {b:.6g})" for a, b in itertools.pairwise(edges)]
        + [f">= {edges[-1]:.6g}"]
    )
    return Bins(
        labels=tuple(labels),
        reference=_masses(reference, edges),
        target=_masses(target, edges),
        edges=tuple(edges),
    )


def ks_statistic(
    reference: sketching.kll_doubles_sketch, target: sketching.kll_doubles_sketch
) -> float:
    """Largest gap between the two CDFs, evaluated at both sketches' quantiles."""
    grid = np.linspace(0.0, 1.0, _QUANTILE_GRID + 1)
    points = np.unique(
        np.concatenate([reference.get_quantiles(list(grid)), target.get_quantiles(list(grid))])
    )
    points = points[np.isfinite(points)].tolist()
    gap = 0.0
    for inclusive in (False, True):  # P(X < x) and P(X <= x): both matter for discrete data
        a = np.asarray(reference.get_cdf(points, inclusive), dtype=float)[:-1]
        b = np.asarray(target.get_cdf(points, inclusive), dtype=float)[:-1]
        gap = max(gap, float(np.max(np.abs(a - b))) if len(a) else 0.0)
    return gap


def ks_pvalue(statistic: float, n_reference: int, n_target: int) -> float:
    """Asymptotic two-sample KS p-value (Kolmogorov distribution)."""
    if n_reference <= 0 or n_target <= 0:
        return 1.0
    en = n_reference * n_target / (n_reference + n_target)
    return float(stats.kstwobign.sf(statistic * math.sqrt(en)))


def wasserstein(
    reference: sketching.kll_doubles_sketch, target: sketching.kll_doubles_sketch
) -> float:
    """Earth mover's distance W1 = integral over u of |Q_ref(u) - Q_target(u)|, midpoint rule."""
    grid = list((np.arange(_QUANTILE_GRID) + 0.5) / _QUANTILE_GRID)
    a = np.asarray(reference.get_quantiles(grid), dtype=float)
    b = np.asarray(target.get_quantiles(grid), dtype=float)
    return float(np.mean(np.abs(a - b)))


def category_bins(
    reference: sketching.frequent_strings_sketch,
    target: sketching.frequent_strings_sketch,
    n_reference: int,
    n_target: int,
    max_categories: int,
) -> Bins:
    """The reference's most frequent categories plus "other" (everything else), as shares."""
    items = reference.get_frequent_items(sketching.frequent_items_error_type.NO_FALSE_NEGATIVES)
    items = sorted(items, key=lambda item: (-item[1], item[0]))[:max_categories]
    labels = [value for value, *_ in items]
    ref = np.array([est for _, est, *_ in items], dtype=float)
    tgt = np.array([target.get_estimate(v) for v in labels], dtype=float)
    ref_share = ref / n_reference if n_reference else ref * 0
    tgt_share = tgt / n_target if n_target else tgt * 0
    ref_other = max(0.0, 1.0 - float(ref_share.sum()))
    tgt_other = max(0.0, 1.0 - float(tgt_share.sum()))
    if ref_other > 0 or tgt_other > 0:
        labels.append("(other)")
        ref_share = np.append(ref_share, ref_other)
        tgt_share = np.append(tgt_share, tgt_other)
    return Bins(labels=tuple(labels), reference=ref_share, target=tgt_share)


def chi_square(bins: Bins, n_reference: int, n_target: int) -> tuple[float, float]:
    """Two-sample chi-square test of homogeneity on the bins' counts: (statistic, p-value)."""
    counts = np.vstack([bins.reference * n_reference, bins.target * n_target])
    counts = counts[:, counts.sum(axis=0) > 0]
    if counts.shape[1] < 2 or n_reference <= 0 or n_target <= 0:
        return 0.0, 1.0
    expected = counts.sum(axis=1, keepdims=True) * counts.sum(axis=0, keepdims=True) / counts.sum()
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, counts.shape[1] - 1))


def new_categories(
    reference: sketching.frequent_strings_sketch,
    target: sketching.frequent_strings_sketch,
) -> list[tuple[str, int]]:
    """Target categories the reference certainly never saw (its upper bound is 0), by count."""
    items = target.get_frequent_items(sketching.frequent_items_error_type.NO_FALSE_NEGATIVES)
    unseen = [(v, int(est)) for v, est, *_ in items if reference.get_upper_bound(v) == 0]
    return sorted(unseen, key=lambda item: (-item[1], item[0]))


def proportion_z(p_reference: float, n_reference: int, p_target: float, n_target: int) -> float:
    """Two-proportion z statistic (pooled); 0 when the pooled proportion is 0 or 1."""
    if n_reference <= 0 or n_target <= 0:
        return 0.0
    pooled = (p_reference * n_reference + p_target * n_target) / (n_reference + n_target)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_reference + 1 / n_target))
    return 0.0 if se == 0 else (p_target - p_reference) / se
