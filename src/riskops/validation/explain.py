"""Explanations: global importance and per-decision reason codes a customer can read.

Contributions are per-feature pushes on the score (> 0 raises the risk). Two sources:

* LightGBM: exact TreeSHAP from the booster itself (``booster.predict(X, pred_contrib=True)``,
  in log-odds; the last column, the expected value, is dropped). No ``shap`` dependency.
* any other scorer: a deterministic perturbation attribution: each feature in turn is replaced by
  its reference value (median for numbers, most frequent value for categories) and the
  contribution is ``score(row) - score(row with that feature at its reference)``, in
  probability units. Not additive like SHAP, but repeatable and model-agnostic.

A contribution function may say how its numbers add up: ``fn.link`` (``"logit"`` or
``"identity"``) and ``fn.base_values(frame)`` (the expected value per row): then
``link⁻¹(sum of contributions + base) == score``, which the explainability gates check.

Reason codes are the ``k`` inputs pushing the score up most, phrased from the name and how the
value compares with the reference: "debt to income ratio high", "income low", "employment type:
unemployed", "months employed not provided". Derived features are grouped back to the raw input
they come from (:func:`reason_groups`), their contributions summed, so "income" is one reason,
never "income low" beside "log income low" and "income bucket low".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskops.features.plan import feature_plan
from riskops.specs import ModelSpec
from riskops.validation.results import ContribFn, GateResult, ScoreFn, measured

MISSING_MARKERS = frozenset({"__missing__", ""})
_ABBREVIATIONS = {
    "num": "number of",
    "n": "number of",
    "cnt": "number of",
    "nb": "number of",
    "pct": "percentage",
    "avg": "average",
    "amt": "amount",
    "qty": "quantity",
    "acct": "account",
    "txn": "transaction",
    "dti": "debt to income ratio",
    "ltv": "loan to value ratio",
    "mcc": "merchant category",
}
_UNITS = frozenset({"days", "months", "years", "hours", "minutes", "seconds", "ms"})
_FLAGS = ("is", "has")


@functools.lru_cache(maxsize=4096)  # a pure function of the name; reasons are per request
def _tokens(name: str) -> tuple[str, ...]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return tuple(t for t in re.split(r"[_\W]+", spaced.lower()) if t)


@functools.lru_cache(maxsize=4096)
def feature_words(name: str) -> str:
    """Plain words for a feature name: ``num_delinquencies`` → "number of delinquencies"."""
    tokens = _tokens(name)
    if tokens and tokens[0] in _FLAGS:
        tokens = tokens[1:]
    if len(tokens) > 1 and tokens[-1] in _UNITS:
        tokens = tokens[:-1]  # term_months → term; account_age_days → account age
    words = " ".join(_ABBREVIATIONS.get(t, t) for t in tokens)
    if "to" in tokens[1:-1] and not words.endswith("ratio"):
        words += " ratio"  # debt_to_income → debt to income ratio
    return words or name


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value in MISSING_MARKERS
    if isinstance(value, float):  # the online path: plain floats, no pandas per reason
        return value != value
    return bool(np.ndim(value) == 0 and pd.isna(value))  # NaN (any float type), NA, NaT


def _as_number(value: Any) -> float | None:
    if isinstance(value, str):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def phrase(
    feature: str, value: Any, *, reference: Any = None, categorical: bool | None = None
) -> str:
    """One reason in words for ``feature`` at ``value`` pushing the score up."""
    words = feature_words(feature)
    if _is_missing(value):
        return f"{words} not provided"
    number = None if categorical else _as_number(value)
    if number is None:  # a category, or a value that is not a number after all
        return f"{words}: {str(value).replace('_', ' ').strip()}"
    if _tokens(feature)[:1] and _tokens(feature)[0] in _FLAGS and number in (0.0, 1.0):
        return words if number == 1.0 else f"not {words}"
    if reference is None or _is_missing(reference) or number == float(reference):
        return f"{words} unfavourable"
    return f"{words} {'high' if number > float(reference) else 'low'}"


def reason_groups(
    sources: Mapping[str, Sequence[str]] | None, inputs: Sequence[str]
) -> dict[str, str]:
    """Each model input → the name its reasons are given under.

    A feature derived from exactly one raw input (log_income, income_bucket: ``income``) is
    reported under that input. A feature derived from several (loan_to_income from loan_amount
    and income, a velocity) keeps its own name: it describes a relation between inputs, and
    splitting it would invent how much of it is "income". ``sources`` maps features to their
    raw inputs (``FeaturePlan.sources()``); None or a missing feature means itself.
    """
    out = {}
    for name in inputs:
        raw = tuple(dict.fromkeys((sources or {}).get(name) or (name,)))
        out[name] = raw[0] if len(raw) == 1 else name
    return out


def plan_sources(spec: ModelSpec, columns: Iterable[str]) -> dict[str, tuple[str, ...]] | None:
    """``FeaturePlan.sources()`` of the plan ``spec`` gives for a frame with ``columns``.

    The plan is a pure function of the spec and the columns, so a feature set's holdout yields
    the plan it was built with. None when the columns do not fit the spec (e.g. a notebook
    version with other inputs): reasons are then given per input.
    """
    try:
        return feature_plan(spec, columns).sources()
    except ValueError:
        return None


def grouped_contributions(
    contrib_row: Mapping[str, float] | pd.Series, groups: Mapping[str, str] | None
) -> dict[str, tuple[float, str]]:
    """Per reason group: the summed contribution and its largest-contributing member."""
    members: dict[str, list[tuple[float, str]]] = {}
    for name, c in dict(contrib_row).items():
        value = float(c)
        if np.isfinite(value):
            members.setdefault((groups or {}).get(name, name), []).append((value, str(name)))
    return {
        label: (sum(v for v, _ in items), max(items, key=lambda i: (i[0], i[1]))[1])
        for label, items in members.items()
    }


def reason_codes(
    contrib_row: Mapping[str, float] | pd.Series,
    feature_values: Mapping[str, Any] | pd.Series,
    k: int = 4,
    *,
    reference: Mapping[str, Any] | None = None,
    categorical: Collection[str] | None = None,
    min_contribution: float = 1e-9,
    groups: Mapping[str, str] | None = None,
) -> list[str]:
    """Top ``k`` inputs pushing this row's score up, as customer-readable phrases.

    ``groups`` (from :func:`reason_groups`) sums derived features into their raw input; the
    phrase uses the raw input's value when the row has it, else its largest member's. Ties are
    broken by name, so the same input always gives the same reasons. ``categorical`` names the
    categorical features (default: those holding a string value).
    """
    pushes = [
        (total, label, top)
        for label, (total, top) in grouped_contributions(contrib_row, groups).items()
        if total > min_contribution
    ]
    chosen = sorted(pushes, key=lambda item: (-item[0], item[1]))[:k]
    ref = reference or {}
    values = dict(feature_values)
    out = []
    for _, label, top in chosen:
        name = label if label in values else top
        kind = None if categorical is None else name in categorical
        out.append(phrase(name, values[name], reference=ref.get(name), categorical=kind))
    return out


def reference_values(
    frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> dict[str, Any]:
    """Median of each numeric feature, most frequent value of each categorical one."""
    out: dict[str, Any] = {}
    for name in numeric:
        median = pd.to_numeric(frame[name], errors="coerce").median()
        out[name] = float(median) if pd.notna(median) else 0.0
    for name in categorical:
        counts = frame[name].dropna().astype(str).value_counts()
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        out[name] = ordered[0][0] if ordered else None
    return out


def lightgbm_contributions(scorer: Any) -> ContribFn:
    """Exact TreeSHAP (log-odds) of a riskops ``LightGBMScorer`` (has ``booster``, ``prepare``)."""
    names = list(scorer.input_columns)
    # The scorer divides the odds by prior_weight after the booster: a shift of the base.
    offset = -float(np.log(getattr(scorer, "prior_weight", 1.0)))

    def raw(frame: pd.DataFrame) -> np.ndarray:
        values = scorer.booster.predict(scorer.prepare(frame), pred_contrib=True)
        return np.asarray(values, dtype=np.float64)

    def contributions(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(raw(frame)[:, : len(names)], index=frame.index, columns=names)

    def base_values(frame: pd.DataFrame) -> np.ndarray:
        return raw(frame)[:, len(names)] + offset

    contributions.method = "TreeSHAP (LightGBM pred_contrib, log-odds)"  # type: ignore[attr-defined]
    contributions.link = "logit"  # type: ignore[attr-defined]
    contributions.base_values = base_values  # type: ignore[attr-defined]
    return contributions


def perturbation_contributions(score: ScoreFn, reference: Mapping[str, Any]) -> ContribFn:
    """Score change when each feature alone is set to its reference value (one batched call)."""
    names = list(reference)

    def contributions(frame: pd.DataFrame) -> pd.DataFrame:
        base = frame.reset_index(drop=True)
        copies = [base]
        for name in names:
            changed = base.copy()
            changed[name] = reference[name]  # replaces the whole column, any dtype
            copies.append(changed)
        scores = np.asarray(score(pd.concat(copies, ignore_index=True)), dtype=np.float64)
        grid = scores.reshape(len(names) + 1, len(base))
        return pd.DataFrame((grid[0] - grid[1:]).T, index=frame.index, columns=names)

    contributions.method = "perturbation to median/mode"  # type: ignore[attr-defined]
    return contributions


def global_importance(contributions: pd.DataFrame) -> dict[str, float]:
    """Mean absolute contribution per feature, largest first."""
    means = contributions.abs().mean(axis=0)
    return {str(k): float(v) for k, v in sorted(means.items(), key=lambda i: (-i[1], str(i[0])))}


def explain_rows(
    contributions: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    reference: Mapping[str, Any],
    categorical: Collection[str],
    k: int = 4,
    groups: Mapping[str, str] | None = None,
) -> list[list[str]]:
    """Reason codes for every row of ``frame`` from its ``contributions`` (same row order)."""
    return [
        reason_codes(
            contributions.iloc[i],
            frame.iloc[i],
            k,
            reference=reference,
            categorical=categorical,
            groups=groups,
        )
        for i in range(len(frame))
    ]


def explainability_gate(
    contributions: ContribFn,
    sample: pd.DataFrame,
    *,
    reference: Mapping[str, Any],
    categorical: Collection[str],
    method: str,
    k: int = 4,
    importance_sample: pd.DataFrame | None = None,
    plots_dir: Path | None = None,
    groups: Mapping[str, str] | None = None,
) -> GateResult:
    """Reason codes for ``sample`` are identical when recomputed, reordered and row by row."""
    rows = sample.reset_index(drop=True)

    def reasons(frame: pd.DataFrame) -> list[list[str]]:
        return explain_rows(
            contributions(frame),
            frame,
            reference=reference,
            categorical=categorical,
            k=k,
            groups=groups,
        )

    first, second = reasons(rows), reasons(rows)
    reordered = reasons(rows.iloc[::-1])[::-1]
    singles = [reasons(rows.iloc[[i]])[0] for i in range(min(5, len(rows)))]
    stable = [
        first[i] == second[i] == reordered[i] and (i >= len(singles) or singles[i] == first[i])
        for i in range(len(rows))
    ]
    share = float(np.mean(stable)) if stable else 1.0
    importance = global_importance(
        contributions(rows if importance_sample is None else importance_sample)
    )
    plots = []
    if plots_dir is not None:
        from riskops.training.plots import plot_feature_importance

        path = Path(plots_dir) / "explain_importance.png"
        total = sum(importance.values()) or 1.0
        shares = {name: value / total for name, value in importance.items()}
        plots.append(plot_feature_importance(shares, path, title=f"Mean |contribution| ({method})"))
    evidence = {
        "method": method,
        "rows": len(rows),
        "k": k,
        "unstable_rows": [i for i, ok in enumerate(stable) if not ok],
        "rows_without_reasons": sum(1 for r in first if not r),
        "examples": [{"row": i, "reasons": first[i]} for i in range(min(5, len(rows)))],
        "global_importance": dict(list(importance.items())[:15]),
    }
    return measured(
        "explainability.reason_codes",
        share,
        1.0,
        ">=",
        f"The share of {len(rows)} sampled decisions whose top-{k} reason codes ({method}) are "
        "identical when recomputed, in reverse order and row by row",
        evidence=evidence,
        plots=plots,
    )
