"""All validation gates of one candidate on its holdout: :func:`run_gates` → :class:`GateReport`.

Thresholds come from the spec's ``gates``; a missing one takes the platform default in
:data:`PLATFORM_DEFAULTS` (a spec key of the same name overrides it once the spec grows it).
A gate whose measurement raises is reported as failed with the error, never swallowed. A gate
that cannot be measured fails for a high-risk model unless the spec waives it
(:mod:`riskops.validation.policy`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskops.governance.policy import effective_risk_class
from riskops.specs import ModelSpec
from riskops.training.metrics import binary_metrics
from riskops.training.split import target01
from riskops.validation.calibration import calibration_gates
from riskops.validation.discrimination import discrimination_gates
from riskops.validation.explain import (
    explainability_gate,
    perturbation_contributions,
    reason_groups,
    reference_values,
)
from riskops.validation.explainability import additivity_gate, declined_reasons_gate
from riskops.validation.fairness import (
    NO_CUTOFF,
    Cutoff,
    decision_cutoff,
    spec_fairness_gates,
)
from riskops.validation.latency import DEFAULT_CALLS, latency_gate
from riskops.validation.policy import apply_waivers
from riskops.validation.results import (
    ContribFn,
    GateReport,
    GateResult,
    ScoreFn,
    crashed,
    measured,
    not_applicable,
)
from riskops.validation.robustness import check_scores, monotonic_gate, robustness_gates
from riskops.validation.stability import psi, stability_gates

PLATFORM_DEFAULTS: dict[str, float] = {
    "min_auc": 0.70,
    "min_ks": 0.20,
    "max_auc_drop_vs_champion": 0.01,
    "max_score_psi_vs_champion": 0.25,
    "min_disparate_impact": 0.80,
    "max_equal_opportunity_difference": 0.10,
    "max_p99_latency_ms": 50.0,
    "max_ece": 0.05,
    "max_feature_psi": 0.25,
    "max_score_psi": 0.25,  # score PSI train vs holdout
}


def resolved_thresholds(spec: ModelSpec) -> dict[str, float]:
    """Platform defaults overlaid with every threshold the spec's ``gates`` sets."""
    given = {k: v for k, v in spec.gates.model_dump(exclude={"waivers"}).items() if v is not None}
    return {**PLATFORM_DEFAULTS, **{k: float(v) for k, v in given.items()}}


def _guarded(name: str, run: Callable[[], list[GateResult]]) -> list[GateResult]:
    try:
        return run()
    except Exception as error:  # a gate that cannot measure fails; the report says why
        return [crashed(name, error)]


def champion_gates(
    y: np.ndarray, p: np.ndarray, champion: np.ndarray | None, t: dict[str, float]
) -> list[GateResult]:
    """AUC drop and score PSI of the candidate against the champion on the same holdout rows."""
    if champion is None:
        return [
            not_applicable("champion.auc_drop", "no champion yet", comparison="<="),
            not_applicable("champion.score_psi", "no champion yet", comparison="<="),
        ]
    problem = check_scores(champion, len(y))
    if problem:
        raise ValueError(f"the champion {problem}")
    auc, champion_auc = binary_metrics(y, p)["auc"], binary_metrics(y, champion)["auc"]
    shift = psi(champion, p)
    return [
        measured(
            "champion.auc_drop",
            champion_auc - auc,
            t["max_auc_drop_vs_champion"],
            "<=",
            f"The holdout AUC drop from the champion ({champion_auc:.4f}) to the candidate "
            f"({auc:.4f})",
            evidence={"candidate_auc": auc, "champion_auc": champion_auc},
        ),
        measured(
            "champion.score_psi",
            shift,
            t["max_score_psi_vs_champion"],
            "<=",
            "The PSI of candidate scores against champion scores on the same holdout rows",
        ),
    ]


def _sample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))].reset_index(drop=True)


def _decline_cutoff(spec: ModelSpec, cutoff: Cutoff | None) -> tuple[float | None, str]:
    """The score at or above which a row is declined, and where that number came from."""
    if spec.decision.decline_at_or_above is not None:
        return float(spec.decision.decline_at_or_above), "spec decision.decline_at_or_above"
    if cutoff is None:
        return None, NO_CUTOFF
    return cutoff.threshold, f"the approval cut-off, {cutoff.basis}"


def run_gates(
    *,
    spec: ModelSpec,
    holdout: pd.DataFrame,
    train_sample: pd.DataFrame | None,
    score: ScoreFn,
    numeric: Sequence[str],
    categorical: Sequence[str],
    champion_score: ScoreFn | None = None,
    contributions: ContribFn | None = None,
    plots_dir: Path,
    seed: int = 0,
    latency_calls: int = DEFAULT_CALLS,
    sources: Mapping[str, Sequence[str]] | None = None,
) -> GateReport:
    """Run every gate on ``holdout`` (inputs, target and protected attributes) and collect them.

    ``score`` takes a frame of the input columns only; ``champion_score`` takes the whole holdout
    (its inputs may differ from the candidate's) and must score the same rows. ``contributions``
    (e.g. :func:`~riskops.validation.explain.lightgbm_contributions`) defaults to the
    perturbation attribution of ``score``. ``sources`` maps each input to the raw inputs it is
    derived from (``FeaturePlan.sources()``) so that reason codes name each raw input once;
    None means every input is raw.
    """
    numeric, categorical = list(numeric), list(categorical)
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    t = resolved_thresholds(spec)
    frame = holdout[[*numeric, *categorical]].reset_index(drop=True)
    y = target01(holdout[spec.target], spec)
    groups = reason_groups(sources, [*numeric, *categorical])
    context: dict[str, Any] = {
        "model": spec.name,
        "risk_class": effective_risk_class(spec),
        "holdout_rows": len(frame),
        "holdout_positives": int(y.sum()),
        "thresholds": t,
        "seed": seed,
        "reason_code_groups": _merged(groups),
    }
    try:
        p = np.asarray(score(frame), dtype=np.float64)
        problem = check_scores(p, len(frame))
    except Exception as error:
        return GateReport((crashed("scoring", error),), context)
    if problem:
        message = f"Scoring the {len(frame)} holdout rows {problem}, so no gate can be measured."
        return GateReport((GateResult("scoring", False, None, None, ">=", message),), context)

    def champion() -> list[GateResult]:
        whole = holdout.reset_index(drop=True)  # the champion may read other input columns
        scores = None if champion_score is None else np.asarray(champion_score(whole), float)
        return champion_gates(y, p, scores, t)

    rng = np.random.default_rng(seed)
    reference = reference_values(frame, numeric, categorical)
    if contributions is None:
        contributions = perturbation_contributions(score, reference)
    method = getattr(contributions, "method", "supplied contributions")
    explain_rows, importance_rows = _sample(frame, 20, rng), _sample(frame, 500, rng)
    robust_rows, monotonic_rows = _sample(frame, 200, rng), _sample(frame, 100, rng)
    rules = [(m.feature, m.direction) for m in spec.monotonic if m.feature in numeric]
    cutoff = decision_cutoff(spec, p, y)
    decline_at, decline_basis = _decline_cutoff(spec, cutoff)
    context["decision_cutoff"] = None if cutoff is None else vars(cutoff)

    def explainability() -> list[GateResult]:
        return [
            explainability_gate(
                contributions, explain_rows, reference=reference, categorical=categorical,
                method=method, importance_sample=importance_rows, plots_dir=plots_dir,
                groups=groups,
            ),
            additivity_gate(contributions, score, explain_rows),
            declined_reasons_gate(
                contributions, frame, p, decline_at, decline_basis, reference=reference,
                categorical=categorical, groups=groups, rng=np.random.default_rng([seed, 1]),
            ),
        ]  # fmt: skip

    results = [
        *_guarded("discrimination", lambda: discrimination_gates(y, p, t)),
        *_guarded("champion", champion),
        *_guarded(
            "calibration",
            lambda: calibration_gates(y, p, max_ece=t["max_ece"], plots_dir=plots_dir),
        ),
        *_guarded(
            "stability",
            lambda: stability_gates(
                train_sample, frame, p, score, numeric, categorical,
                max_feature_psi=t["max_feature_psi"], max_score_psi=t["max_score_psi"],
            ),
        ),
        *_guarded(
            "fairness",
            lambda: spec_fairness_gates(
                spec, holdout, y, p, cutoff=cutoff,
                min_disparate_impact=t["min_disparate_impact"],
                max_equal_opportunity_difference=t["max_equal_opportunity_difference"],
                plots_dir=plots_dir,
            ),
        ),
        *_guarded("explainability", explainability),
        *_guarded(
            "robustness",
            lambda: robustness_gates(score, robust_rows, numeric, categorical, seed=seed),
        ),
        *_guarded(
            "robustness.monotonic",
            lambda: [monotonic_gate(score, monotonic_rows, rules, reference=frame)],
        ),
        *_guarded(
            "latency",
            lambda: [
                latency_gate(
                    score, _sample(frame, latency_calls, rng),
                    max_p99_ms=t["max_p99_latency_ms"], calls=latency_calls,
                )
            ],
        ),
    ]  # fmt: skip
    final, waiver_context = apply_waivers(
        results, risk_class=effective_risk_class(spec), waivers=spec.gates.waivers
    )
    return GateReport(tuple(final), {**context, **waiver_context})


def _merged(groups: Mapping[str, str]) -> dict[str, list[str]]:
    """Reason groups of more than one input, or renamed: {label: [inputs]} for the report."""
    out: dict[str, list[str]] = {}
    for name, label in groups.items():
        out.setdefault(label, []).append(name)
    return {label: names for label, names in out.items() if names != [label]}
