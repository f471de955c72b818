"""Fitting the candidate (LightGBM) and the interpretable benchmark (binned logistic scorecard)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from riskops.features.plan import MAX_CATEGORIES, MIN_CATEGORY_COUNT
from riskops.training.scorers import (
    MISSING,
    UNSEEN,
    BinnedLogisticScorer,
    LightGBMScorer,
    Scorer,
)
from riskops.training.split import stratified_mask, time_boundary_mask

IMBALANCED_FAMILIES = frozenset({"fraud_detection", "transaction_risk"})

LIGHTGBM_DEFAULTS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 255,
    "cat_smooth": 10.0,
    "min_data_per_group": 50,
    "max_cat_to_onehot": 4,
    "deterministic": True,
    "force_col_wise": True,  # fixed histogram layout: part of what makes runs repeatable
    # One thread: on 2 shared cores, 2 OpenMP threads were no faster at 1M rows (21 s vs 16 s)
    # and up to 6x slower when other processes held a core (busy-waiting barriers). Results do
    # not depend on the thread count here, but it is fixed so that runs stay comparable.
    "num_threads": 1,
    "verbosity": -1,
}


@dataclass(frozen=True)
class FittedModel:
    """A fitted scorer with its hyperparameters and fit facts (for tracking)."""

    scorer: Scorer
    algorithm: str
    params: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    validation_index: pd.Index | None = None  # rows of train used only for early stopping

    def predict_proba_positive(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive label for each row of ``frame``."""
        return self.scorer.predict_proba_positive(frame)

    def feature_importance(self) -> dict[str, float]:
        """Importance per input feature, as shares summing to 1."""
        return self.scorer.feature_importance()


def learn_categories(
    frame: pd.DataFrame,
    categorical: Sequence[str],
    *,
    min_count: int = MIN_CATEGORY_COUNT,
    max_categories: int = MAX_CATEGORIES,
) -> dict[str, list[str]]:
    """The encoder's categories, learned on ``frame`` (the training rows) only.

    The feature set's vocabulary is learned on every row of the dataset, holdout included; here
    a value needs ``min_count`` training rows (the most frequent ``max_categories`` at most),
    and every other value is folded into ``__unseen__`` by the scorer (finding 5).
    """
    out = {}
    for name in categorical:
        counts = frame[name].dropna().astype(str).value_counts()
        counts = counts[(counts >= min_count) | (counts.index == MISSING)]
        ranked = sorted((-int(n), v) for v, n in counts.items())[:max_categories]
        out[name] = sorted({v for _, v in ranked} | {UNSEEN})
    return out


def _check_columns(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> None:
    columns = [*numeric, *categorical]
    if not columns:
        raise ValueError("no input columns: give at least one numeric or categorical column")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"input columns missing from the training frame: {missing}")
    if len(set(columns)) != len(columns):
        twice = sorted(c for c in set(columns) if columns.count(c) > 1)
        raise ValueError(f"input columns listed twice: {twice}")


def _validation_mask(
    train: pd.DataFrame, y: np.ndarray, time_column: str | None, share: float, seed: int
) -> tuple[np.ndarray, str]:
    if time_column:
        times = pd.to_datetime(train[time_column], utc=True).dt.tz_convert(None).to_numpy()
        mask, _ = time_boundary_mask(times, share)
        if 0 < y[mask].sum() < mask.sum() and not mask.all():
            return mask, "time"
    return stratified_mask(y, share, seed), "stratified"


def train_lightgbm(
    train: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    target01: Any,
    *,
    seed: int = 42,
    family: str = "other",
    time_column: str | None = None,
    monotone: Mapping[str, int] | None = None,
    params: Mapping[str, Any] | None = None,
    min_category_count: int = MIN_CATEGORY_COUNT,
    validation_share: float = 0.15,
    num_boost_round: int = 2000,
    early_stopping_rounds: int = 100,
) -> FittedModel:
    """Fit LightGBM with early stopping on the latest ``validation_share`` of ``train``.

    The early-stopping rows are carved from ``train`` (the most recent by ``time_column`` when
    given, else a stratified sample), never from the holdout; the model is fitted on the rest.
    Rare-event families up-weight positives by sqrt(negatives / positives) and the scorer divides
    the odds back, so ranking gains without losing calibration.
    """
    _check_columns(train, numeric, categorical)
    y = np.asarray(target01).astype(np.int8)
    if len(y) != len(train):
        raise ValueError(f"target01 has {len(y)} values for {len(train)} rows")
    positives = int(y.sum())
    if positives in (0, len(y)):
        raise ValueError(f"training rows need both classes, got {positives} positives")
    categories = learn_categories(train, categorical, min_count=min_category_count)
    scorer = LightGBMScorer(None, numeric, categorical, categories, fold_unseen=True)
    matrix = scorer.prepare(train)

    valid, valid_method = _validation_mask(train, y, time_column, validation_share, seed)
    imbalanced = family in IMBALANCED_FAMILIES
    weight = math.sqrt((len(y) - positives) / positives) if imbalanced else 1.0
    full = dict(LIGHTGBM_DEFAULTS)
    full.update(
        seed=seed,
        metric=["average_precision", "auc", "binary_logloss"]
        if imbalanced
        else ["binary_logloss", "auc"],
    )
    if imbalanced:
        full["scale_pos_weight"] = weight
    if monotone:
        full["monotone_constraints"] = [int(monotone.get(c, 0)) for c in scorer.input_columns]
        full["monotone_constraints_method"] = (
            "basic"  # "advanced" and "intermediate" broke monotonicity on LightGBM 4.7
        )
    full.update(params or {})

    fit_set = lgb.Dataset(
        matrix.loc[~valid],
        label=y[~valid],
        categorical_feature=list(categorical) or "auto",
        free_raw_data=True,
    )
    valid_set = lgb.Dataset(matrix.loc[valid], label=y[valid], reference=fit_set)
    history: dict[str, Any] = {}
    booster = lgb.train(
        full,
        fit_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False),
            lgb.record_evaluation(history),
        ],
    )
    best = booster.best_iteration or booster.current_iteration()
    # Keep exactly the trees that will be logged: the scorer used for metrics is the artifact.
    scorer.booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    scorer.prior_weight = float(full.get("scale_pos_weight", 1.0))  # also when overridden
    validation = {
        f"validation_{name}": float(values[best - 1])
        for name, values in history.get("validation", {}).items()
    }
    metadata = {
        "best_iteration": best,
        "stopped_early": best < num_boost_round,
        "fit_rows": int((~valid).sum()),
        "validation_rows": int(valid.sum()),
        "validation_method": valid_method,
        "scale_pos_weight": scorer.prior_weight,
        **validation,
    }
    return FittedModel(
        scorer=scorer,
        algorithm="lightgbm",
        params={
            **full,
            "num_boost_round": num_boost_round,
            "early_stopping_rounds": early_stopping_rounds,
            "validation_share": validation_share,
        },
        metadata=metadata,
        validation_index=train.index[valid],
    )


def _quantile_edges(values: pd.Series, n_bins: int) -> list[float]:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    x = x[np.isfinite(x)]
    if not len(x):
        return []
    inner = np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return [float(e) for e in np.unique(inner)]


def _design(scorer: BinnedLogisticScorer, frame: pd.DataFrame) -> sp.csr_matrix:
    """One-hot design matrix: one column per bin / category, unseen categories all-zero."""
    sizes = scorer.sizes()
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    codes = np.column_stack(scorer.codes(frame)) if sizes else np.empty((len(frame), 0), np.int64)
    present = codes >= 0
    cols = (codes + offsets)[present]
    indptr = np.concatenate([[0], np.cumsum(present.sum(axis=1))])
    data = np.ones(len(cols), dtype=np.float64)
    return sp.csr_matrix((data, cols, indptr), shape=(len(frame), int(sum(sizes))))


def _monotonic_violations(scorer: BinnedLogisticScorer, monotone: Mapping[str, int]) -> list[str]:
    """Numeric features whose bin weights (missing bin excluded) break the declared direction."""
    broken = []
    for name, direction in monotone.items():
        if direction and name in scorer.numeric:
            steps = np.diff(scorer.weights[name][:-1]) * direction
            if (steps < -1e-9).any():
                broken.append(name)
    return broken


def train_binned_logistic(
    train: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    target01: Any,
    *,
    n_bins: int = 10,
    c: float = 1.0,
    monotone: Mapping[str, int] | None = None,
    min_category_count: int = MIN_CATEGORY_COUNT,
) -> FittedModel:
    """Fit the SR 11-7 benchmark: quantile-binned numerics + one-hot categoricals + L2 logistic."""
    _check_columns(train, numeric, categorical)
    y = np.asarray(target01).astype(np.int8)
    if len(y) != len(train):
        raise ValueError(f"target01 has {len(y)} values for {len(train)} rows")
    # Bins and categories from the training rows only; rarer values score as __unseen__.
    edges = {name: _quantile_edges(train[name], n_bins) for name in numeric}
    categories = learn_categories(train, categorical, min_count=min_category_count)
    for name in categorical:
        if train[name].isna().any():
            categories[name] = sorted({*categories[name], MISSING})
    scorer = BinnedLogisticScorer(numeric, categorical, edges, categories, fold_unseen=True)
    design = _design(scorer, train)
    # newton-cholesky: a handful of exact Newton steps on ~100 columns; deterministic.
    model = LogisticRegression(C=c, solver="newton-cholesky", max_iter=200, tol=1e-8)
    model.fit(design, y)
    coef = model.coef_.ravel()
    offsets = np.concatenate([[0], np.cumsum(scorer.sizes())]).astype(int)
    scorer.weights = {
        name: [float(w) for w in coef[offsets[i] : offsets[i + 1]]]
        for i, name in enumerate(scorer.input_columns)
    }
    scorer.intercept = float(model.intercept_[0])
    metadata = {
        "n_bins": n_bins,
        "design_columns": int(design.shape[1]),
        "iterations": int(np.max(model.n_iter_)),
        "monotonic_violations": _monotonic_violations(scorer, monotone or {}),
    }
    params = {
        "algorithm": "binned_logistic",
        "n_bins": n_bins,
        "C": c,
        "l1_ratio": 0.0,
        "solver": "newton-cholesky",
        "max_iter": 200,
        "tol": 1e-8,
    }
    return FittedModel(scorer=scorer, algorithm="binned_logistic", params=params, metadata=metadata)
