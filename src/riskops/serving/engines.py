"""Scoring engines: a model's inputs (one dict per record) to probabilities and contributions.

The hot path of the scoring service (``matrix``: no pandas); ``frame_matrix`` is the batch
path. The scorer state is the one MLflow holds for the version
(``riskops.training.scorers``); here it is evaluated without pandas: a float matrix with
category codes exactly as ``LightGBMScorer.prepare_array`` builds it, then ``booster.predict``.
Contributions are exact TreeSHAP from precomputed tables (:mod:`riskops.serving.treeshap`), in
log-odds, for the rows that need reasons only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from riskops.serving.fastpredict import SingleRowPredictor
from riskops.serving.treeshap import TreeShap
from riskops.training.scorers import MISSING, UNSEEN, BinnedLogisticScorer, LightGBMScorer


class Engine(Protocol):
    """What the service needs from a scorer."""

    inputs: list[str]
    categorical: frozenset[str]
    method: str  # how contributions are computed, for the decision record

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray: ...

    def probabilities(self, matrix: np.ndarray) -> np.ndarray: ...

    def contributions(self, matrix: np.ndarray) -> np.ndarray: ...

    def frame_matrix(self, frame: pd.DataFrame) -> np.ndarray: ...


class LightGBMEngine:
    """A LightGBM scorer evaluated on plain arrays, explained by exact TreeSHAP."""

    method = "exact TreeSHAP (log-odds)"

    def __init__(self, scorer: LightGBMScorer) -> None:
        names = list(scorer.booster.feature_name())
        if names != scorer.input_columns:
            raise ValueError(
                f"the booster's features {names} are not the scorer's inputs "
                f"{scorer.input_columns}: the artifact is inconsistent"
            )
        self.scorer = scorer
        self.booster = scorer.booster
        self.inputs = scorer.input_columns
        self.numeric = list(scorer.numeric)
        self.categorical = frozenset(scorer.categorical)
        self._codes = [
            (name, {v: float(i) for i, v in enumerate(scorer.categories[name])})
            for name in scorer.categorical
        ]
        self._unseen = {
            name: (codes.get(UNSEEN, math.nan) if scorer.fold_unseen else math.nan)
            for name, codes in self._codes
        }
        self.prior_weight = scorer.prior_weight
        self.shap = TreeShap.from_booster(self.booster)
        self._single = SingleRowPredictor(self.booster)

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Rows of model inputs as LightGBM's float matrix (category codes, NaN = missing)."""
        out = np.empty((len(rows), len(self.inputs)), dtype=np.float64)
        nan = math.nan
        for i, row in enumerate(rows):
            values = [row[name] for name in self.numeric]
            for name, codes in self._codes:
                value = row[name]
                values.append(
                    nan if value is None else codes.get(value, self._unseen[name])
                )  # fmt: skip
            out[i] = values
        return out

    def frame_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The same matrix as :meth:`matrix` for a whole frame, vectorised (batch scoring)."""
        out = np.empty((len(frame), len(self.inputs)), dtype=np.float64)
        for j, name in enumerate(self.numeric):
            out[:, j] = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        for k, (name, _codes) in enumerate(self._codes):
            values = frame[name].astype(object)
            categories = self.scorer.categories[name]
            codes = pd.Categorical(values, categories=categories).codes.astype(np.float64)
            unknown = codes < 0
            codes[unknown] = np.nan
            if self.scorer.fold_unseen:
                codes[unknown & values.notna().to_numpy()] = self._unseen[name]
            out[:, len(self.numeric) + k] = codes
        return out

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Probability of the bad outcome per row (prior re-weighting undone)."""
        if len(matrix) == 1:  # the online path: LightGBM's C fast path, no Python wrapper
            raw = np.array([self._single(matrix[0])])
        else:
            raw = np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)
        if self.prior_weight == 1.0:
            return raw
        return raw / (raw + self.prior_weight * (1.0 - raw))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP per input (log-odds), the bias column dropped."""
        return self.shap.contributions(matrix)[:, :-1]


class ScorecardEngine:
    """A binned-logistic scorecard; a contribution is the points a bin costs against the
    feature's best bin (the "points below maximum" method of adverse-action notices)."""

    method = "scorecard points below the feature's best bin (log-odds)"

    def __init__(self, scorer: BinnedLogisticScorer) -> None:
        self.scorer = scorer
        self.inputs = scorer.input_columns
        self.categorical = frozenset(scorer.categorical)
        self._edges = [np.asarray(scorer.edges[n], dtype=np.float64) for n in scorer.numeric]
        self._index = [
            {v: i for i, v in enumerate(scorer.categories[n])} for n in scorer.categorical
        ]
        self._unseen = [
            index.get(UNSEEN, -1) if scorer.fold_unseen else -1 for index in self._index
        ]
        self._tables = [
            np.append(np.asarray(scorer.weights[n], dtype=np.float64), 0.0) for n in self.inputs
        ]
        self._best = np.array([float(np.min(t[:-1])) if len(t) > 1 else 0.0 for t in self._tables])

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Per row and feature, the bin or category index (-1: unseen without a bucket)."""
        out = np.empty((len(rows), len(self.inputs)), dtype=np.float64)
        numeric = self.scorer.numeric
        for i, row in enumerate(rows):
            codes: list[float] = []
            for name, edges in zip(numeric, self._edges, strict=True):
                x = row[name]
                if x is None or x != x:
                    codes.append(float(len(edges) + 1))
                else:
                    codes.append(float(np.searchsorted(edges, x, side="right")))
            for name, index, unseen in zip(
                self.scorer.categorical, self._index, self._unseen, strict=True
            ):
                value = row[name]
                codes.append(float(index.get(MISSING if value is None else value, unseen)))
            out[i] = codes
        return out

    def frame_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`matrix` of a whole frame (batch scoring)."""
        rows = frame[self.inputs].astype(object).where(frame[self.inputs].notna(), None)
        return self.matrix(rows.to_dict("records"))

    def _points(self, matrix: np.ndarray) -> np.ndarray:
        codes = matrix.astype(np.int64)
        return np.column_stack([t[codes[:, j]] for j, t in enumerate(self._tables)])

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Logistic of the intercept plus the rows' points."""
        logit = self.scorer.intercept + self._points(matrix).sum(axis=1)
        return 1.0 / (1.0 + np.exp(-logit))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """Points above each feature's lowest-risk bin."""
        return self._points(matrix) - self._best


def engine_for(scorer: LightGBMScorer | BinnedLogisticScorer) -> Engine:
    """The engine of a loaded scorer."""
    if isinstance(scorer, LightGBMScorer):
        return LightGBMEngine(scorer)
    if isinstance(scorer, BinnedLogisticScorer):
        return ScorecardEngine(scorer)
    raise TypeError(f"no scoring engine for {type(scorer).__name__}")
