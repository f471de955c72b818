"""Robustness: missing values, unseen categories and monotonic expectations.

Each case scores a modified copy of sampled holdout rows; a case fails when scoring raises,
returns the wrong number of scores, or returns anything non-finite or outside [0, 1].
Monotonic expectations (spec ``monotonic``) are checked on a grid: for sampled rows, the feature
is set to each of ``grid`` values between its 1st and 99th holdout percentile; a violation is a
step where the score moves against the declared direction by more than ``tolerance``. At the
applicant level (:func:`applicant_monotonic_gate`) the feature is a RAW input and every feature
derived from it (log, bucket, ratio) is recomputed with the feature definitions, so a derived
copy cannot carry the score the other way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskops.features.definitions import Definition
from riskops.features.pandas_build import rederive
from riskops.validation.results import (
    GateResult,
    ScoreFn,
    crashed,
    measured,
    not_applicable,
    skipped,
)

UNSEEN = "__unseen__"
Derive = Callable[[pd.DataFrame, str], pd.DataFrame]  # rows with ``feature`` edited -> inputs


def check_scores(scores: Any, n: int) -> str | None:
    """What is wrong with ``scores`` for ``n`` rows; None when they are finite probabilities."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    if len(values) != n:
        return f"returned {len(values)} scores for {n} rows"
    if not np.isfinite(values).all():
        return f"returned {int((~np.isfinite(values)).sum())} non-finite scores"
    outside = int(((values < 0) | (values > 1)).sum())
    if outside:
        low, high = values.min(), values.max()
        return f"returned {outside} scores outside [0, 1] (min {low:.4g}, max {high:.4g})"
    return None


def score_case(score: ScoreFn, frame: pd.DataFrame, case: str) -> dict[str, Any]:
    """Score one modified frame: the case name, ok, and the problem when not ok."""
    try:
        problem = check_scores(score(frame), len(frame))
    except Exception as error:  # the point of the check: any failure is a finding
        problem = f"raised {type(error).__name__}: {str(error)[:200]}"
    return {"case": case, "ok": problem is None, "problem": problem}


def _with_missing(
    frame: pd.DataFrame, columns: Sequence[str], numeric: Sequence[str]
) -> pd.DataFrame:
    out = frame.copy()
    for name in columns:
        out[name] = np.nan if name in numeric else None
    return out


def missing_value_cases(
    score: ScoreFn, frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> list[dict[str, Any]]:
    """Every input column missing on its own, then all of them at once."""
    columns = [*numeric, *categorical]
    cases = [score_case(score, _with_missing(frame, [c], numeric), f"{c} missing") for c in columns]
    cases.append(score_case(score, _with_missing(frame, columns, numeric), "all columns missing"))
    return cases


def random_category(seed: int = 0) -> str:
    """A seeded new category string no training data would hold."""
    letters = np.random.default_rng(seed).choice(list("abcdefghijklmnopqrstuvwxyz"), 12)
    return "unseen-" + "".join(letters)


def unseen_category_cases(
    score: ScoreFn, frame: pd.DataFrame, categorical: Sequence[str], *, seed: int = 0
) -> list[dict[str, Any]]:
    """Every categorical column set to ``__unseen__`` and to a random new string."""
    cases = []
    for name in categorical:
        for value in (UNSEEN, random_category(seed)):
            changed = frame.copy()
            changed[name] = value
            cases.append(score_case(score, changed, f"{name} = {value!r}"))
    return cases


def _case_gate(name: str, cases: list[dict[str, Any]], what: str) -> GateResult:
    bad = [case for case in cases if not case["ok"]]
    shown = "; ".join(f"{c['case']}: {c['problem']}" for c in bad[:3])
    return measured(
        name,
        len(bad),
        0,
        "<=",
        f"The number of {what} cases (of {len(cases)}) where scoring raised or returned "
        "scores that are not finite probabilities",
        why=shown,
        evidence={"cases": len(cases), "failures": bad},
    )


def robustness_gates(
    score: ScoreFn,
    frame: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    seed: int = 0,
) -> list[GateResult]:
    """The missing-value gate and the unseen-category gate on the rows of ``frame``."""
    results = [
        _case_gate(
            "robustness.missing_values",
            missing_value_cases(score, frame, numeric, categorical),
            "missing-value",
        )
    ]
    if categorical:
        cases = unseen_category_cases(score, frame, categorical, seed=seed)
        results.append(_case_gate("robustness.unseen_categories", cases, "unseen-category"))
    else:
        results.append(
            not_applicable("robustness.unseen_categories", "The model has no categorical inputs.")
        )
    return results


def monotonic_violations(
    score: ScoreFn,
    frame: pd.DataFrame,
    feature: str,
    direction: str,
    *,
    grid: int = 20,
    tolerance: float = 1e-6,
    reference: pd.DataFrame | None = None,
    derive: Derive | None = None,
) -> dict[str, Any]:
    """Grid steps of ``feature`` where the score moves against ``direction`` (evidence dict).

    ``derive`` recomputes, after each edit of ``feature``, the inputs derived from it.
    """
    source = frame if reference is None else reference
    x = pd.to_numeric(source[feature], errors="coerce").dropna().to_numpy(dtype=np.float64)
    if not len(x):
        return {"feature": feature, "direction": direction, "violations": 0, "steps": 0}
    low, high = np.quantile(x, [0.01, 0.99])
    points = np.unique(np.linspace(low, high, grid))
    rows = frame.reset_index(drop=True)
    copies = []
    for value in points:
        changed = rows.copy()
        changed[feature] = float(value)
        copies.append(changed)
    edited = pd.concat(copies, ignore_index=True)
    if derive is not None:
        edited = derive(edited, feature)
    scores = np.asarray(score(edited), dtype=np.float64)
    steps = np.diff(scores.reshape(len(points), len(rows)), axis=0)
    sign = 1.0 if direction == "increasing" else -1.0
    against = steps * sign < -tolerance
    return {
        "feature": feature,
        "direction": direction,
        "grid": [float(low), float(high), len(points)],
        "rows": len(rows),
        "steps": int(steps.size),
        "violations": int(against.sum()),
        "rows_with_violations": int(against.any(axis=0).sum()),
        "largest_move_against": float(max(0.0, float((-steps * sign).max(initial=0.0)))),
    }


def monotonic_gate(
    score: ScoreFn,
    frame: pd.DataFrame,
    rules: Sequence[tuple[str, str]],
    *,
    grid: int = 20,
    tolerance: float = 1e-6,
    reference: pd.DataFrame | None = None,
    derive: Derive | None = None,
    level: str = "model input",
) -> GateResult:
    """Count monotonicity violations of (feature, direction) ``rules`` on the sampled rows."""
    name = "robustness.monotonic"
    if not rules:
        return skipped(name, "The spec declares no monotonic expectations.", comparison="<=")
    checks = []
    for feature, direction in rules:
        try:
            checks.append(
                monotonic_violations(
                    score,
                    frame,
                    feature,
                    direction,
                    grid=grid,
                    tolerance=tolerance,
                    reference=reference,
                    derive=derive,
                )
            )
        except Exception as error:
            return crashed(name, error)
    total = sum(check["violations"] for check in checks)
    broken = [f"{c['feature']} ({c['direction']})" for c in checks if c["violations"]]
    return measured(
        name,
        total,
        0,
        "<=",
        f"The number of grid steps, over {len(checks)} declared monotonic features (changed "
        f"at the {level} level) and {len(frame)} rows, where the score moved against the "
        f"declared direction by more than {tolerance:g}",
        why=f"violated by {', '.join(broken)}" if broken else "",
        evidence={"tolerance": tolerance, "level": level, "features": checks},
    )


def _requirements(name: str, by_name: dict[str, Definition], seen: frozenset[str]) -> set[str]:
    definition = by_name.get(name)
    if definition is None or name in seen:
        return {name}
    out = {name}
    for column in definition.requires:
        out |= _requirements(column, by_name, seen | {name})
    return out


def applicant_monotonic_gate(
    score: ScoreFn,
    rows: pd.DataFrame,
    rules: Sequence[tuple[str, str]],
    inputs: Sequence[str],
    definitions: Sequence[Definition],
    *,
    grid: int = 20,
    tolerance: float = 1e-6,
    reference: pd.DataFrame | None = None,
) -> GateResult:
    """The monotonic gate at the applicant level (finding 6).

    A rule applies when the model reads its feature directly or through any derived input;
    the rows must hold the raw feature (a missing one fails the gate, never skips it). Each
    grid value is set on the raw column and the derived inputs are recomputed by ``rederive``.
    """
    by_name = {d.name: d for d in definitions}
    used: set[str] = set()
    for name in inputs:
        used |= _requirements(name, by_name, frozenset())
    applicable = [(f, d) for f, d in rules if f in used]
    if rules and not applicable:
        why = "None of the declared monotonic features is read by the model, raw or derived."
        return skipped("robustness.monotonic", why, comparison="<=")
    absent = [f for f, _ in applicable if f not in rows.columns]
    if absent:
        return crashed(
            "robustness.monotonic",
            ValueError(
                f"the holdout rows lack the raw inputs {absent} of declared monotonic rules; "
                "the model reads them through derived features, so the rule cannot be checked"
            ),
        )

    def derive(frame: pd.DataFrame, feature: str) -> pd.DataFrame:
        return rederive(frame, definitions, [feature])

    return monotonic_gate(
        score, rows, applicable, grid=grid, tolerance=tolerance, reference=reference,
        derive=derive, level="raw applicant input",
    )  # fmt: skip
