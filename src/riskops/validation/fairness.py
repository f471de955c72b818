"""Fairness across protected groups: disparate impact and equal opportunity at the cut-off.

A row is *approved* when its score (probability of the bad outcome) is below the decision
cut-off, which comes from the spec (:func:`decision_cutoff`): ``decision.approve_below``, else the
score quantile of ``decision.target_approval_rate``; a high-risk model with neither cannot be
measured; other models fall back to approving ``1 - observed bad rate`` and say it was assumed.
Two gates per protected attribute:

* ``fairness.<attr>``: disparate impact = lowest group approval rate / highest (four-fifths
  rule: >= 0.80), over groups of at least ``min_group_size`` rows;
* ``fairness.<attr>.equal_opportunity``: the largest difference in true-positive rate (share of
  actual bad outcomes not approved) across groups with at least ``min_group_positives`` bad
  outcomes (a TPR from a handful of defaults is noise). The gate compares the lower end of the
  gap's 95% interval with the tolerance: it fails when the data show a gap beyond tolerance,
  not when sampling noise alone could produce one (on a 4,000-row holdout an attribute drawn
  independently of everything shows TPR gaps of 0.14 by chance). When the interval is wider
  than the tolerance the holdout cannot tell an equal model from one at the tolerance: the gate
  is unmeasurable (it fails for a high-risk model unless the spec waives it with a reason).

Groups: age bands for an age; one group per value for text, booleans and numbers with few
distinct values (0/1 codes); quantile bands for other numbers. Groups too small are listed but
left out; fewer than two groups left means the gate cannot be measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from riskops.governance.policy import effective_risk_class
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
MAX_CODED_VALUES = 10  # a number with at most this many distinct values is a code, not a scale
MIN_GROUP_POSITIVES = 30


def _is_age(attribute: str) -> bool:
    words = attribute.lower().split("_")
    return "age" in words and not {"account", "days", "months"} & set(words)


def group_labels(values: pd.Series, *, attribute: str, quantiles: int = 4) -> pd.Series:
    """Group label per row: age bands for an age, one group per value for text and coded
    numbers (at most :data:`MAX_CODED_VALUES` distinct), quantile bands for other numbers."""
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
    elif len(np.unique(x[known])) <= MAX_CODED_VALUES:
        out[known] = [f"{value:g}" for value in x[known]]  # 0/1 codes: "0" and "1"
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
    groups: pd.Series,
    score: Any,
    y_true: Any,
    threshold: float,
    *,
    min_group_size: int = 50,
    min_group_positives: int = MIN_GROUP_POSITIVES,
) -> list[dict[str, Any]]:
    """Per group: rows, bad outcomes, approval rate, positive rate, TPR, good approval rate."""
    labels = pd.Series(groups).reset_index(drop=True).map(str).to_numpy()
    p = np.asarray(score, dtype=np.float64)
    y = np.asarray(y_true).astype(bool)
    approved = p < threshold
    rows = []
    for name in sorted(set(labels)):
        inside = labels == name
        n, positives = int(inside.sum()), int((inside & y).sum())
        rows.append(
            {
                "group": name,
                "n": n,
                "positives": positives,
                "approval_rate": _rate(approved[inside]),
                "positive_rate": _rate(y[inside]),
                "true_positive_rate": _rate(~approved[inside & y]),
                "good_approval_rate": _rate(approved[inside & ~y]),
                "included": bool(n >= min_group_size),
                "included_equal_opportunity": bool(
                    n >= min_group_size and positives >= min_group_positives
                ),
            }
        )
    return rows


def _spread(rows: list[dict[str, Any]], key: str, flag: str = "included") -> float | None:
    values = [row[key] for row in rows if row[flag] and row[key] is not None]
    return float(max(values) - min(values)) if len(values) >= 2 else None


@dataclass(frozen=True)
class Cutoff:
    """The score below which an applicant is approved, and where that number came from."""

    threshold: float
    basis: str
    assumed: bool = False


def decision_cutoff(spec: ModelSpec, score: Any, y_true: Any) -> Cutoff | None:
    """The spec's cut-off; None for a high-risk model whose spec sets none (not measurable)."""
    decision = spec.decision
    if decision.approve_below is not None:
        return Cutoff(float(decision.approve_below), "spec decision.approve_below")
    if decision.target_approval_rate is not None:
        rate = float(decision.target_approval_rate)
        return Cutoff(
            decision_threshold(score, rate),
            f"score quantile of spec decision.target_approval_rate {rate:g}",
        )
    if effective_risk_class(spec) == "high":
        return None
    rate = float(1.0 - np.asarray(y_true).astype(bool).mean())
    basis = (
        f"assumed: the spec sets no decision cut-off, so the score quantile approving "
        f"1 - observed bad rate = {rate:.4f} of rows"
    )
    return Cutoff(decision_threshold(score, rate), basis, assumed=True)


NO_CUTOFF = (
    "the spec sets no decision cut-off, so approvals cannot be counted: set "
    "decision.approve_below or decision.target_approval_rate in the spec"
)


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


def _disparate_impact(
    name: str, rows: list[dict[str, Any]], evidence: dict[str, Any], floor: float, plots_dir: Any
) -> GateResult:
    attribute, threshold = evidence["attribute"], evidence["decision_threshold"]
    included = [row for row in rows if row["included"] and row["approval_rate"] is not None]
    if len(included) < 2:
        return skipped(
            name,
            f"Fewer than two groups of {attribute} have at least {evidence['min_group_size']} "
            "rows, so disparate impact cannot be measured.",
            threshold=floor,
            evidence=evidence,
        )
    low = min(included, key=lambda row: (row["approval_rate"], row["group"]))
    high = max(included, key=lambda row: (row["approval_rate"], row["group"]))
    ratio = low["approval_rate"] / high["approval_rate"] if high["approval_rate"] else 0.0
    plots = []
    if plots_dir is not None:
        line = floor * high["approval_rate"]
        plots.append(_plot(rows, attribute, line, Path(plots_dir) / f"fairness_{attribute}.png"))
    return measured(
        name,
        ratio,
        floor,
        ">=",
        f"Disparate impact across {attribute} groups (lowest approval rate "
        f"{low['approval_rate']:.1%} for {low['group']} / highest {high['approval_rate']:.1%} "
        f"for {high['group']}, score cut-off {threshold:.4g}, {evidence['cutoff_basis']})",
        why="four-fifths rule",
        evidence={**evidence, "disparate_impact": ratio},
        plots=plots,
    )


def _equal_opportunity(
    name: str, rows: list[dict[str, Any]], evidence: dict[str, Any], ceiling: float
) -> GateResult:
    attribute, least = evidence["attribute"], evidence["min_group_positives"]
    included = [r for r in rows if r["included_equal_opportunity"]]
    if len(included) < 2:
        return skipped(
            name,
            f"Fewer than two groups of {attribute} have {evidence['min_group_size']}+ rows and "
            f"{least}+ bad outcomes, so equal opportunity cannot be measured.",
            threshold=ceiling,
            comparison="<=",
            evidence=evidence,
        )
    low = min(included, key=lambda r: (r["true_positive_rate"], r["group"]))
    high = max(included, key=lambda r: (r["true_positive_rate"], r["group"]))
    gap = high["true_positive_rate"] - low["true_positive_rate"]
    noise = math.sqrt(
        sum(r["true_positive_rate"] * (1 - r["true_positive_rate"]) / r["positives"]
            for r in (low, high))
    )  # fmt: skip
    lower = max(0.0, gap - 1.96 * noise)
    evidence = {**evidence, "tpr_difference": gap, "tpr_difference_standard_error": noise,
                "tpr_difference_lower_95": lower}  # fmt: skip
    if 1.96 * noise > ceiling:
        counts = ", ".join(f"{r['group']} {r['positives']}" for r in included)
        return skipped(
            name,
            f"The TPR gap across {attribute} groups is {gap:.3f} ± {1.96 * noise:.3f} (95%): the "
            f"interval is wider than the tolerance {ceiling}, so this holdout cannot tell an "
            f"equal model from one at the tolerance (too few bad outcomes per group: "
            f"{counts}).",
            threshold=ceiling,
            comparison="<=",
            evidence=evidence,
        )
    return measured(
        name,
        lower,
        ceiling,
        "<=",
        f"The lower 95% bound ({lower:.3f}) of the largest difference in true-positive rate (bad "
        f"outcomes not approved) across the {len(included)} {attribute} groups with {least}+ bad "
        f"outcomes: {high['true_positive_rate']:.1%} for {high['group']} vs "
        f"{low['true_positive_rate']:.1%} for {low['group']}, a gap of {gap:.3f} with standard "
        f"error {noise:.3f}, at score cut-off {evidence['decision_threshold']:.4g}",
        why="equal opportunity, beyond sampling noise",
        evidence=evidence,
    )


def attribute_gates(
    attribute: str,
    values: pd.Series,
    score: Any,
    y_true: Any,
    cutoff: Cutoff,
    *,
    min_disparate_impact: float = 0.80,
    max_equal_opportunity_difference: float = 0.10,
    min_group_size: int = 50,
    min_group_positives: int = MIN_GROUP_POSITIVES,
    plots_dir: Path | None = None,
) -> list[GateResult]:
    """Disparate impact and equal opportunity of the decision at ``cutoff`` for ``attribute``."""
    y = np.asarray(y_true).astype(bool)
    groups = group_labels(values, attribute=attribute)
    rows = group_rates(
        groups, score, y, cutoff.threshold,
        min_group_size=min_group_size, min_group_positives=min_group_positives,
    )  # fmt: skip
    evidence = {
        "attribute": attribute,
        "decision_threshold": cutoff.threshold,
        "cutoff_basis": cutoff.basis,
        "cutoff_assumed": cutoff.assumed,
        "overall_approval_rate": float((np.asarray(score, dtype=float) < cutoff.threshold).mean()),
        "min_group_size": min_group_size,
        "min_group_positives": min_group_positives,
        "groups": rows,
        "excluded_groups": [row["group"] for row in rows if not row["included"]],
        "equal_opportunity_excluded_groups": [
            row["group"] for row in rows if not row["included_equal_opportunity"]
        ],
        "equal_opportunity_tpr_difference": _spread(
            rows, "true_positive_rate", "included_equal_opportunity"
        ),
        "good_approval_rate_difference": _spread(rows, "good_approval_rate"),
    }
    name = f"fairness.{attribute}"
    return [
        _disparate_impact(name, rows, evidence, min_disparate_impact, plots_dir),
        _equal_opportunity(
            f"{name}.equal_opportunity", rows, evidence, max_equal_opportunity_difference
        ),
    ]


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
    """Disparate impact alone, at ``threshold`` (else the ``approval_rate`` quantile, else the
    assumed ``1 - bad rate`` quantile)."""
    if threshold is not None:
        cutoff = Cutoff(float(threshold), "given score cut-off")
    elif approval_rate is not None:
        rate = float(approval_rate)
        cutoff = Cutoff(decision_threshold(score, rate), f"score quantile of approval rate {rate}")
    else:
        rate = float(1.0 - np.asarray(y_true).astype(bool).mean())
        cutoff = Cutoff(decision_threshold(score, rate), "assumed: 1 - observed bad rate", True)
    return attribute_gates(
        attribute, values, score, y_true, cutoff, min_disparate_impact=min_disparate_impact,
        min_group_size=min_group_size, plots_dir=plots_dir,
    )[0]  # fmt: skip


def spec_fairness_gates(
    spec: ModelSpec,
    holdout: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    *,
    cutoff: Cutoff | None,
    min_disparate_impact: float,
    max_equal_opportunity_difference: float,
    plots_dir: Path | None,
) -> list[GateResult]:
    """Disparate impact and equal opportunity per protected attribute of the spec."""
    if not spec.protected_attributes:
        return [skipped("fairness", "The spec declares no protected attributes.")]
    out = []
    for attribute in spec.protected_attributes:
        names = (f"fairness.{attribute}", f"fairness.{attribute}.equal_opportunity")
        if attribute not in holdout.columns or cutoff is None:
            why = NO_CUTOFF if cutoff is None else "it is not a column of the holdout"
            out += [
                skipped(name, f"Protected attribute {attribute!r} cannot be checked: {why}.")
                for name in names
            ]
            continue
        out += attribute_gates(
            attribute,
            holdout[attribute].reset_index(drop=True),
            p,
            y,
            cutoff,
            min_disparate_impact=min_disparate_impact,
            max_equal_opportunity_difference=max_equal_opportunity_difference,
            plots_dir=plots_dir,
        )
    return out
