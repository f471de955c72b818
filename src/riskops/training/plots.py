"""Evaluation plots as PNG files, drawn headless on the Agg canvas (no pyplot, no display).

Figures are built with ``matplotlib.figure.Figure`` and an explicit Agg canvas: nothing enters
pyplot's global figure registry, so nothing leaks between calls or threads and there is nothing
to close beyond dropping the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

PLOT_FILES = (
    "roc.png",
    "precision_recall.png",
    "calibration.png",
    "score_distribution.png",
    "feature_importance.png",
)
_DPI = 100


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path | str) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png", dpi=_DPI)
    figure.clear()
    return out


def _arrays(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(y_true).astype(np.int8), np.asarray(score, dtype=np.float64)


def plot_roc(y_true: Any, score: Any, path: Path | str, *, title: str = "ROC") -> Path:
    """ROC curve with its AUC and the chance diagonal."""
    y, p = _arrays(y_true, score)
    fpr, tpr, _ = roc_curve(y, p)
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot(fpr, tpr, label=f"AUC = {roc_auc_score(y, p):.4f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(figure, path)


def plot_precision_recall(
    y_true: Any, score: Any, path: Path | str, *, title: str = "Precision-recall"
) -> Path:
    """Precision-recall curve with average precision and the prevalence baseline."""
    y, p = _arrays(y_true, score)
    precision, recall, _ = precision_recall_curve(y, p)
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot(recall, precision, label=f"AP = {average_precision_score(y, p):.4f}")
    ax.axhline(y.mean(), linestyle="--", color="grey", linewidth=1, label="prevalence")
    ax.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right")
    return _save(figure, path)


def plot_calibration(
    y_true: Any, score: Any, path: Path | str, *, bins: int = 10, title: str = "Calibration"
) -> Path:
    """Reliability curve on score-quantile bins, on log axes when events are rare."""
    y, p = _arrays(y_true, score)
    observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    figure = _figure()
    ax = figure.add_subplot()
    low = max(min(predicted.min(), observed[observed > 0].min(initial=1.0)), 1e-6)
    high = max(predicted.max(), observed.max())
    ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.plot(predicted, observed, marker="o", label="model")
    if high / low > 50:  # rare events: a linear axis hides every bin but the last
        ax.set(xscale="log", yscale="log")
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", title=title)
    ax.legend(loc="upper left")
    return _save(figure, path)


def plot_score_distribution(
    y_true: Any, score: Any, path: Path | str, *, bins: int = 50, title: str = "Scores by class"
) -> Path:
    """Density histograms of the score for each class, on shared bins."""
    y, p = _arrays(y_true, score)
    edges = np.linspace(0.0, max(float(p.max()), 1e-9), bins + 1)
    figure = _figure()
    ax = figure.add_subplot()
    for label, name in ((0, "negative"), (1, "positive")):
        values = p[y == label]
        if len(values):
            ax.hist(values, bins=edges, density=True, alpha=0.5, label=f"{name} (n={len(values)})")
    ax.set(xlabel="score", ylabel="density", title=title)
    ax.legend(loc="upper right")
    return _save(figure, path)


def plot_feature_importance(
    importance: Mapping[str, float],
    path: Path | str,
    *,
    top: int = 25,
    title: str = "Feature importance",
) -> Path:
    """Horizontal bars of the ``top`` most important features, largest at the top."""
    ranked = sorted(importance.items(), key=lambda item: item[1], reverse=True)[:top]
    names = [name for name, _ in ranked][::-1]
    values = [value for _, value in ranked][::-1]
    figure = _figure(6.0, max(2.5, 0.3 * len(names) + 1.2))
    ax = figure.add_subplot()
    ax.barh(names, values)
    ax.set(xlabel="importance (share of total)", title=title)
    return _save(figure, path)


def evaluation_plots(
    y_true: Any,
    score: Any,
    importance: Mapping[str, float],
    directory: Path | str,
    *,
    label: str = "",
) -> list[Path]:
    """All five plots (:data:`PLOT_FILES`) into ``directory``; returns their paths."""
    folder = Path(directory)
    prefix = f"{label}: " if label else ""
    return [
        plot_roc(y_true, score, folder / PLOT_FILES[0], title=f"{prefix}ROC"),
        plot_precision_recall(
            y_true, score, folder / PLOT_FILES[1], title=f"{prefix}precision-recall"
        ),
        plot_calibration(y_true, score, folder / PLOT_FILES[2], title=f"{prefix}calibration"),
        plot_score_distribution(
            y_true, score, folder / PLOT_FILES[3], title=f"{prefix}scores by class"
        ),
        plot_feature_importance(
            importance, folder / PLOT_FILES[4], title=f"{prefix}feature importance"
        ),
    ]
