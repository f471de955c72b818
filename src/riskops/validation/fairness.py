"""Fairness across protected groups: approval rates, disparate impact, equal opportunity.

A row is *approved* when its score (probability of the bad outcome) is below the decision
threshold. Unless a threshold is given, it is the score quantile that approves the base approval
rate, by default ``1 - observed positive rate`` (approve as many as are expected to be good).
Disparate impact = lowest group approval rate / highest (four-fifths rule: >= 0.80). Equal
opportunity is reported as evidence: per group the true-positive rate (share of actual bad
outcomes that were declined) and the approval rate of actual good outcomes, and the largest
difference of each across groups. Groups smaller than ``min_group_size`` are listed but left
out of the ratio and the differences.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from riskops.specs import ModelSpec
from riskops.validation.results import GateResult, measured, skipped

# (lowest age in the band, label); a band runs up to the next band's lowest age.
AGE_BANDS: tuple[tuple[float, str], ...] = (
    (18, "18-25"),
    (26, "26-35"),
    (36, "36-50"),
    (51, "51-64"),
    (65, "65+"),
)
MISSING_GROUP = "missing"


def _is_age(attribute: str) -> bool:
    words = attribute.lower().split("_")
    return "age" in words and not {"account", "days", "months"} & set(words)


def group_labels(values: pd.Series, *, attribute: str, quantiles: int = 4) -> pd.Series:
    """Group label per row: age bands for an age, quantile bands for other numbers, else text."""
    series = pd.Series(values).reset_index(drop=True)
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        text = series.astype("object")
        return text.where(text.notna(), MISSING_GROUP).map(str)
    x = series.to_numpy(dtype=np.float64)
    out = np.full(len(x), MISSING_GROUP, dtype=object)
    known = ~np.isnan(x)
    if _is_age(attribute):
        lows = np.array([lo for lo, _ in AGE_BANDS])
        names = np.array(["under 18", *(label for _, label in AGE_BANDS)], dtype=object)
        out[known] = names[np.searchsorted(lows, x[known], side="right")]
    elif known.any():
        edges = np.unique(np.quantile(x[known], np.linspace(0, 1, quantiles + 1)))
        codes = np.clip(np.searchsorted(edges, x[known], side="right") - 1, 0, len(edges) - 2)
        bounds = np.append(edges, edges[-1])
        out[known] = [f"[{bounds[c]:.4g}, {bounds[c + 1]:.4g}]" for c in codes]
    return pd.Series(out, dtype=object)


def decision_threshold(score: Any, approval_rate: float) -> float:
    """Score below which ``approval_rate`` of the rows fall (their quantile)."""
    if not 0 < approval_rate <= 1:
        raise ValueError(f"approval_rate must be in (0, 1], got {approval_rate}")
    if approval_rate == 1:
        return float(np.nextafter(1.0, 2.0))  # every score in [0, 1] is below it
    return float(np.quantile(np.asarray(score, dtype=np.float64), approval_rate))


def _rate(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if len(mask) else None


def group_rates(
    groups: pd.Series, score: Any, y_true: Any, threshold: float, *, min_group_size: int = 50
) -> list[dict[str, Any]]:
    """Per group: rows, approval rate, positive rate, TPR, approval rate of the good rows."""
    labels = pd.Series(groups).reset_index(drop=True).map(str).to_numpy()
    p = np.asarray(score, dtype=np.float64)
    y = np.asarray(y_true).astype(bool)
    approved = p < threshold
    rows = []
    for name in sorted(set(labels)):
        inside = labels == name
        rows.append(
            {
                "group": name,
                "n": int(inside.sum()),
                "approval_rate": _rate(approved[inside]),
                "positive_rate": _rate(y[inside]),
                "true_positive_rate": _rate(~approved[inside & y]),
                "good_approval_rate": _rate(approved[inside & ~y]),
                "included": bool(inside.sum() >= min_group_size),
            }
        )
    return rows


def _spread(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row["included"] and row[key] is not None]
    return float(max(values) - min(values)) if len(values) >= 2 else None


def _plot(rows: list[dict[str, Any]], attribute: str, floor: float, path: Path) -> Path:
    figure = Figure(figsize=(6.0, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    colours = ["tab:blue" if row["included"] else "lightgrey" for row in rows]
    ax.bar([row["group"] for row in rows], [row["approval_rate"] for row in rows], color=colours)
    ax.axhline(floor, linestyle="--", color="tab:red", linewidth=1, label="four-fifths floor")
    ax.set(ylabel="approval rate", title=f"Approval rate by {attribute}", ylim=(0, 1.05))
    ax.legend(loc="lower right")
    ax.tick_params(axis="x", labelrotation=30)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    figure.clear()
    return path


def fairness_gate(
    attribute: str,
    values: pd.Series,
    score: Any,
    y_true: Any,
    *,
    min_disparate_impact: float = 0.80,
    threshold: float | None = None,
    approval_rate: float | None = None,
    min_group_size: int = 50,
    plots_dir: Path | None = None,
) -> GateResult:
    """Disparate impact of the approve/decline decision across the groups of ``attribute``."""
    name = f"fairness.{attribute}"
    y = np.asarray(y_true).astype(bool)
    if approval_rate is None:
        approval_rate = float(1.0 - y.mean())
    if threshold is None:
        threshold = decision_threshold(score, approval_rate)
    groups = group_labels(values, attribute=attribute)
    rows = group_rates(groups, score, y, threshold, min_group_size=min_group_size)
    included = [row for row in rows if row["included"] and row["approval_rate"] is not None]
    evidence = {
        "attribute": attribute,
        "decision_threshold": threshold,
        "approval_rate_target": approval_rate,
        "overall_approval_rate": float((np.asarray(score, dtype=float) < threshold).mean()),
        "min_group_size": min_group_size,
        "groups": rows,
        "excluded_groups": [row["group"] for row in rows if not row["included"]],
        "equal_opportunity_tpr_difference": _spread(rows, "true_positive_rate"),
        "good_approval_rate_difference": _spread(rows, "good_approval_rate"),
    }
    if len(included) < 2:
        result = skipped(
            name,
            f"Fewer than two groups of {attribute} have at least {min_group_size} rows, so "
            "disparate impact cannot be measured.",
            threshold=min_disparate_impact,
        )
        return replace(result, evidence=evidence)
    low = min(included, key=lambda row: (row["approval_rate"], row["group"]))
    high = max(included, key=lambda row: (row["approval_rate"], row["group"]))
    ratio = low["approval_rate"] / high["approval_rate"] if high["approval_rate"] else 0.0
    evidence["disparate_impact"] = ratio
    plots = []
    if plots_dir is not None:
        floor = min_disparate_impact * high["approval_rate"]
        plots.append(_plot(rows, attribute, floor, Path(plots_dir) / f"fairness_{attribute}.png"))
    return measured(
        name,
        ratio,
        min_disparate_impact,
        ">=",
        f"Disparate impact across {attribute} groups (lowest approval rate "
        f"{low['approval_rate']:.1%} for {low['group']} / highest {high['approval_rate']:.1%} "
        f"for {high['group']}, score threshold {threshold:.4g})",
        why="four-fifths rule",
        evidence=evidence,
        plots=plots,
    )


def spec_fairness_gates(
    spec: ModelSpec,
    holdout: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    *,
    min_disparate_impact: float,
    plots_dir: Path | None,
) -> list[GateResult]:
    """One disparate-impact gate per protected attribute of the spec."""
    if not spec.protected_attributes:
        return [skipped("fairness", "The spec declares no protected attributes.")]
    out = []
    for attribute in spec.protected_attributes:
        if attribute not in holdout.columns:
            message = (
                f"Protected attribute {attribute!r} is not in the holdout, so cannot be checked."
            )
            if spec.risk_class == "high":
                out.append(GateResult(f"fairness.{attribute}", False, None, None, ">=", message))
            else:
                out.append(skipped(f"fairness.{attribute}", message))
            continue
        out.append(
            fairness_gate(
                attribute,
                holdout[attribute].reset_index(drop=True),
                p,
                y,
                min_disparate_impact=min_disparate_impact,
                plots_dir=plots_dir,
            )
        )
    return out
