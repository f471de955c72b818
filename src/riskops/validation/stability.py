"""Population stability index (PSI) of a feature or a score between two samples.

PSI = sum over bins of (actual% - expected%) * ln(actual% / expected%). Numeric bins are the
deciles (``bins`` quantiles) of ``expected``, right-closed like ``pandas.qcut``, with repeated
edges merged (so a feature that is mostly 0 gets fewer, wider bins); missing values are a bin of
their own. Categorical bins are ``expected``'s categories, plus one "other" bucket for values
``expected`` never had, plus a missing bucket. An empty bin's share is replaced by
:data:`EPSILON` so the logarithm stays finite. Usual reading: < 0.10 stable, 0.10-0.25 moderate
shift, > 0.25 significant shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskops.validation.results import GateResult, ScoreFn, measured, skipped

EPSILON = 1e-4
OTHER = "__other__"
MISSING = "__missing__"


def _numeric(values: Any) -> np.ndarray:
    series = pd.Series(np.asarray(values).ravel() if not isinstance(values, pd.Series) else values)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)


def quantile_edges(expected: Any, bins: int = 10) -> np.ndarray:
    """Inner bin edges: the distinct ``1/bins … (bins-1)/bins`` quantiles of finite values."""
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    x = _numeric(expected)
    x = x[~np.isnan(x)]
    if not len(x):
        return np.empty(0)
    return np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1)[1:-1]))


def numeric_shares(values: Any, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` per right-closed bin of ``edges``, then the missing share (last)."""
    x = _numeric(values)
    if not len(x):
        raise ValueError("cannot compute shares of an empty sample")
    missing = np.isnan(x)
    codes = np.searchsorted(edges, x[~missing], side="left")
    counts = np.bincount(codes, minlength=len(edges) + 1).astype(np.float64)
    return np.append(counts, missing.sum()) / len(x)


def _labels(values: Any) -> pd.Series:
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    series = series.astype("object")
    return series.where(series.notna(), MISSING).map(str)


def categorical_shares(
    expected: Any, actual: Any, *, max_categories: int = 50
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Categories (``expected``'s most frequent, then other, then missing) and both share vectors.

    Categories beyond ``max_categories`` and values unseen in ``expected`` fall into "other".
    """
    exp, act = _labels(expected), _labels(actual)
    if not len(exp) or not len(act):
        raise ValueError("cannot compute shares of an empty sample")
    counts = exp[exp != MISSING].value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = [name for name, _ in ordered[:max_categories]]
    buckets = [*kept, OTHER, MISSING]

    def shares(labels: pd.Series) -> np.ndarray:
        mapped = labels.where(labels.isin(kept) | (labels == MISSING), OTHER)
        return mapped.value_counts().reindex(buckets, fill_value=0).to_numpy(np.float64) / len(
            labels
        )

    return buckets, shares(exp), shares(act)


def psi_from_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two share vectors over the same bins; empty bins count as :data:`EPSILON`."""
    e = np.where(expected > 0, expected, EPSILON)
    a = np.where(actual > 0, actual, EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected: Any, actual: Any, *, bins: int = 10, categorical: bool = False) -> float:
    """PSI of ``actual`` against the reference sample ``expected`` (see the module docstring)."""
    if categorical:
        _, e, a = categorical_shares(expected, actual)
        return psi_from_shares(e, a)
    edges = quantile_edges(expected, bins)
    return psi_from_shares(numeric_shares(expected, edges), numeric_shares(actual, edges))


def psi_table(expected: Any, actual: Any, *, bins: int = 10) -> list[dict[str, Any]]:
    """Per-bin shares and PSI terms of a numeric comparison, as rows for evidence."""
    edges = quantile_edges(expected, bins)
    e, a = numeric_shares(expected, edges), numeric_shares(actual, edges)
    bounds = [-np.inf, *edges, np.inf]
    rows = []
    for i, (ei, ai) in enumerate(zip(e, a, strict=True)):
        label = "missing" if i == len(e) - 1 else f"({bounds[i]:.4g}, {bounds[i + 1]:.4g}]"
        term = psi_from_shares(np.array([ei]), np.array([ai]))
        rows.append({"bin": label, "expected": float(ei), "actual": float(ai), "psi": term})
    return rows


def feature_psi(
    expected: pd.DataFrame,
    actual: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    bins: int = 10,
) -> dict[str, float]:
    """PSI per feature of ``actual`` (e.g. holdout) against ``expected`` (e.g. train)."""
    out = {name: psi(expected[name], actual[name], bins=bins) for name in numeric}
    for name in categorical:
        out[name] = psi(expected[name], actual[name], categorical=True)
    return out


def stability_gates(
    train: pd.DataFrame | None,
    holdout: pd.DataFrame,
    p: np.ndarray,
    score: ScoreFn,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    max_feature_psi: float,
    max_score_psi: float,
) -> list[GateResult]:
    """Largest feature PSI and the score PSI, holdout against the training sample."""
    if train is None:
        reason = (
            "No training sample was given (a version registered outside riskops has no "
            "catalogued feature set), so train-vs-holdout stability cannot be measured."
        )
        return [
            skipped("stability.feature_psi", reason, threshold=max_feature_psi, comparison="<="),
            skipped("stability.score_psi", reason, threshold=max_score_psi, comparison="<="),
        ]
    inputs = train[[*numeric, *categorical]].reset_index(drop=True)
    per_feature = feature_psi(inputs, holdout, numeric, categorical)
    ranked = sorted(per_feature.items(), key=lambda item: (-item[1], item[0]))
    worst, worst_value = ranked[0]
    over = [name for name, value in ranked if value > max_feature_psi]
    p_train = np.asarray(score(inputs), dtype=np.float64)
    return [
        measured(
            "stability.feature_psi",
            worst_value,
            max_feature_psi,
            "<=",
            f"The largest feature PSI, holdout against train, ({worst})",
            why=f"shifted: {', '.join(over)}" if over else "",
            evidence={"psi": [{"feature": k, "psi": v} for k, v in ranked]},
        ),
        measured(
            "stability.score_psi",
            psi(p_train, p),
            max_score_psi,
            "<=",
            "The PSI of holdout scores against training-sample scores",
        ),
    ]
