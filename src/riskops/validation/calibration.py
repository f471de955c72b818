"""Calibration: Brier score, expected calibration error (ECE) and a reliability plot.

ECE here uses 10 **quantile** (equal-count) bins of the score by default: credit and fraud
scores crowd near 0, so equal-width bins would put almost every row in the first bin and hide
miscalibration where the decisions are made. ``strategy="uniform"`` gives equal-width bins.
ECE = sum over bins of (rows in bin / rows) * |observed positive rate - mean predicted score|.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from riskops.validation.results import GateResult, measured

Strategy = Literal["quantile", "uniform"]


def _arrays(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(score, dtype=np.float64).ravel()
    if len(y) != len(p) or not len(y):
        raise ValueError(f"y_true and score must be non-empty and equal length: {len(y)}, {len(p)}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must hold only 0 and 1")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("score must be finite probabilities in [0, 1]")
    return y, p


def brier_score(y_true: Any, score: Any) -> float:
    """Mean squared difference between the score and the 0/1 outcome."""
    y, p = _arrays(y_true, score)
    return float(np.mean((p - y) ** 2))


def reference_brier(y_true: Any) -> float:
    """Brier score of always predicting the observed positive rate: p * (1 - p)."""
    rate = float(np.mean(np.asarray(y_true, dtype=np.float64)))
    return rate * (1.0 - rate)


def _bin_codes(p: np.ndarray, bins: int, strategy: Strategy) -> np.ndarray:
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    elif strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    return np.searchsorted(edges, p, side="left")


def calibration_table(
    y_true: Any, score: Any, *, bins: int = 10, strategy: Strategy = "quantile"
) -> list[dict[str, float]]:
    """Per non-empty bin: score range, rows, mean score, observed rate and their gap."""
    y, p = _arrays(y_true, score)
    codes = _bin_codes(p, bins, strategy)
    rows = []
    for code in np.unique(codes):
        inside = codes == code
        predicted, observed = float(p[inside].mean()), float(y[inside].mean())
        rows.append(
            {
                "bin": int(code),
                "score_min": float(p[inside].min()),
                "score_max": float(p[inside].max()),
                "n": int(inside.sum()),
                "mean_score": predicted,
                "observed_rate": observed,
                "gap": observed - predicted,
            }
        )
    return rows


def expected_calibration_error(
    y_true: Any, score: Any, *, bins: int = 10, strategy: Strategy = "quantile"
) -> float:
    """Row-weighted mean |observed rate - mean score| over the bins (see the module docstring)."""
    table = calibration_table(y_true, score, bins=bins, strategy=strategy)
    total = sum(row["n"] for row in table)
    return float(sum(row["n"] * abs(row["gap"]) for row in table) / total)


def reliability_plot(
    table: list[dict[str, float]], path: Path | str, *, title: str = "Reliability"
) -> Path:
    """PNG of observed rate against mean score per bin, with the diagonal (Agg canvas)."""
    figure = Figure(figsize=(5.5, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    predicted = [row["mean_score"] for row in table]
    observed = [row["observed_rate"] for row in table]
    high = max([*predicted, *observed, 1e-6])
    ax.plot([0, high], [0, high], linestyle="--", color="grey", linewidth=1, label="perfect")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", title=title)
    ax.legend(loc="upper left")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, format="png")
    figure.clear()
    return out


def calibration_gates(
    y: np.ndarray, p: np.ndarray, *, max_ece: float, plots_dir: Path
) -> list[GateResult]:
    """Brier score against the constant predictor, and ECE on 10 quantile bins."""
    brier, constant = brier_score(y, p), reference_brier(y)
    table = calibration_table(y, p, bins=10, strategy="quantile")
    plot = reliability_plot(table, Path(plots_dir) / "calibration_reliability.png")
    return [
        measured(
            "calibration.brier",
            brier,
            constant,
            "<=",
            "Holdout Brier score",
            why="threshold: Brier of always predicting the holdout positive rate",
        ),
        measured(
            "calibration.ece",
            expected_calibration_error(y, p, bins=10, strategy="quantile"),
            max_ece,
            "<=",
            "Expected calibration error on 10 equal-count score bins",
            evidence={"bins": table, "strategy": "quantile"},
            plots=[plot],
        ),
    ]
