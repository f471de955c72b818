"""Discrimination and calibration metrics of a binary risk score."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)

METRIC_NAMES = ("auc", "gini", "ks", "pr_auc", "brier", "log_loss", "positive_rate", "n")


def _validated(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    p = np.asarray(score, dtype=np.float64)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError(f"y_true and score must be 1-D and equal length, got {y.shape}, {p.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 and 1 (1 = the positive, bad outcome)")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("score must be finite probabilities in [0, 1]")
    positives = int(y.sum())
    if positives in (0, len(y)):
        raise ValueError(f"need both classes to evaluate, got {positives} positives of {len(y)}")
    return y.astype(np.int8), p


def ks_statistic(y_true: Any, score: Any) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score CDFs of the two classes."""
    y, p = _validated(y_true, score)
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def binary_metrics(y_true: Any, score: Any) -> dict[str, float]:
    """AUC, Gini, KS, PR-AUC (average precision), Brier, log loss, positive rate and n."""
    y, p = _validated(y_true, score)
    auc = float(roc_auc_score(y, p))
    fpr, tpr, _ = roc_curve(y, p)
    return {
        "auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": float(np.max(np.abs(tpr - fpr))),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "positive_rate": float(y.mean()),
        "n": float(len(y)),
    }
