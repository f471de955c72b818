"""Training: holdout split, candidate and benchmark fits, metrics, plots, MLflow tracking.

Names are imported lazily so that ``riskops.training.scorers`` (loaded by serving) does not pull
in matplotlib, scikit-learn or the tracking code.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Split": "split",
    "holdout_split": "split",
    "target01": "split",
    "binary_metrics": "metrics",
    "FittedModel": "models",
    "train_lightgbm": "models",
    "train_binned_logistic": "models",
    "Lineage": "lineage",
    "git_commit": "lineage",
    "TrainingResult": "track",
    "train_and_register": "track",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
