"""Explanations a validator can check: they add up to the score, and every decline has a reason.

* ``explainability.additivity``: for contributions that declare how they add up (``fn.link`` and
  ``fn.base_values``, as exact TreeSHAP does), ``link⁻¹(sum + base)`` must equal the model's own
  score within :data:`ADDITIVITY_TOLERANCE` on the sampled rows, with one base for every row (the
  expected value is a constant; a base per row could absorb any error). Contributions that do
  not add up (perturbation) cannot be checked: the gate is unmeasured.
* ``explainability.declined_reasons``: every declined holdout row (score at or above the
  decline cut-off) gets at least one reason code, i.e. an input with a risk-increasing push.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskops.validation.explain import explain_rows
from riskops.validation.results import ContribFn, GateResult, ScoreFn, measured, skipped

ADDITIVITY_TOLERANCE = 1e-6  # probability units: float error only, not approximation
_INVERSE_LINKS = {
    "logit": lambda total: 1.0 / (1.0 + np.exp(-total)),
    "identity": lambda total: total,
}


def additivity_gate(contributions: ContribFn, score: ScoreFn, rows: pd.DataFrame) -> GateResult:
    """The largest gap between the score and what its contributions add up to."""
    name = "explainability.additivity"
    method = getattr(contributions, "method", "supplied contributions")
    link = getattr(contributions, "link", None)
    base_values = getattr(contributions, "base_values", None)
    if link not in _INVERSE_LINKS or not callable(base_values):
        return skipped(
            name,
            f"The contributions ({method}) do not add up to the score (no link and expected "
            "value), so whether they explain the score cannot be checked; use exact "
            "contributions (TreeSHAP for LightGBM).",
            threshold=ADDITIVITY_TOLERANCE,
            comparison="<=",
        )
    frame = rows.reset_index(drop=True)
    table = contributions(frame)
    base = np.asarray(base_values(frame), dtype=np.float64)
    rebuilt = _INVERSE_LINKS[link](table.to_numpy(dtype=np.float64).sum(axis=1) + base)
    p = np.asarray(score(frame), dtype=np.float64)
    gaps = np.abs(rebuilt - p)
    base_spread = float(base.max() - base.min()) if len(base) else 0.0
    worst = max(float(gaps.max()) if len(gaps) else 0.0, base_spread)
    return measured(
        name,
        worst,
        ADDITIVITY_TOLERANCE,
        "<=",
        f"The largest gap between the score and the {link}⁻¹ of its {method} contributions plus "
        f"the expected value, on {len(frame)} sampled rows",
        why="contributions must explain the score they are given for",
        evidence={
            "method": method,
            "link": link,
            "rows": len(frame),
            "largest_score_gap": float(gaps.max()) if len(gaps) else 0.0,
            "expected_value": float(base.mean()) if len(base) else None,
            "expected_value_spread": base_spread,
            "worst_rows": [int(i) for i in np.argsort(-gaps, kind="stable")[:5]],
        },
    )


def declined_reasons_gate(
    contributions: ContribFn,
    frame: pd.DataFrame,
    p: np.ndarray,
    cutoff: float | None,
    basis: str,
    *,
    reference: Mapping[str, Any],
    categorical: Collection[str],
    groups: Mapping[str, str] | None,
    rng: np.random.Generator,
    k: int = 4,
    max_rows: int = 200,
) -> GateResult:
    """The share of declined rows (up to ``max_rows`` sampled) that get at least one reason."""
    name = "explainability.declined_reasons"
    if cutoff is None:
        return skipped(name, f"No decline cut-off: {basis}.")
    declined = np.flatnonzero(np.asarray(p) >= cutoff)
    if not len(declined):
        return skipped(
            name,
            f"No holdout row is declined at score >= {cutoff:.4g} ({basis}), so reasons for "
            "declines cannot be checked.",
        )
    if len(declined) > max_rows:
        declined = np.sort(rng.choice(declined, max_rows, replace=False))
    rows = frame.iloc[declined].reset_index(drop=True)
    reasons = explain_rows(
        contributions(rows), rows, reference=reference, categorical=categorical, k=k,
        groups=groups,
    )  # fmt: skip
    missing = [int(declined[i]) for i, found in enumerate(reasons) if not found]
    share = 1.0 - len(missing) / len(rows)
    return measured(
        name,
        share,
        1.0,
        ">=",
        f"The share of {len(rows)} declined holdout rows (score >= {cutoff:.4g}, {basis}) given "
        "at least one risk-increasing reason",
        evidence={
            "cutoff": cutoff,
            "cutoff_basis": basis,
            "checked_rows": len(rows),
            "rows_without_reasons": missing[:50],
            "examples": [
                {"row": int(declined[i]), "score": float(p[declined[i]]), "reasons": reasons[i]}
                for i in range(min(5, len(rows)))
            ],
        },
    )
