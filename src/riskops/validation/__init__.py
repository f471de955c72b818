"""Validation gates: each check returns a GateResult; run_gates collects them in a GateReport.

Names are imported lazily, so that importing a light module (e.g. ``stability`` in monitoring)
does not pull in matplotlib, scikit-learn or MLflow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GateResult": "results",
    "GateReport": "results",
    "ScoreFn": "results",
    "ContribFn": "results",
    "psi": "stability",
    "feature_psi": "stability",
    "brier_score": "calibration",
    "expected_calibration_error": "calibration",
    "calibration_table": "calibration",
    "reliability_plot": "calibration",
    "fairness_gate": "fairness",
    "group_labels": "fairness",
    "group_rates": "fairness",
    "reason_codes": "explain",
    "feature_words": "explain",
    "global_importance": "explain",
    "lightgbm_contributions": "explain",
    "perturbation_contributions": "explain",
    "explainability_gate": "explain",
    "robustness_gates": "robustness",
    "monotonic_gate": "robustness",
    "measure_latency": "latency",
    "latency_gate": "latency",
    "PLATFORM_DEFAULTS": "gates",
    "resolved_thresholds": "gates",
    "run_gates": "gates",
    "evaluate_version": "evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
