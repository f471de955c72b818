"""Scorers that turn a frame of model inputs into the probability of the positive (bad) outcome.

This file is also the MLflow "models from code" file of every riskops model: MLflow copies it
into the logged model and executes it on load, so it must stay self-contained (numpy, pandas,
mlflow; lightgbm only for LightGBM models) and never import ``riskops``. The fitted state lives
in plain artifacts (a JSON file, and LightGBM's own text format), so loading a model never
unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

with warnings.catch_warnings():
    # mlflow 3.17 warns, on the first import of mlflow.pyfunc, about type hints of its own
    # agent classes ("Any type hint is inferred as AnyType"); it says nothing about our models,
    # and under ``-W error`` it would break the import.
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
    from mlflow.pyfunc import PythonModel, PythonModelContext

STATE_FILE = "scorer.json"
BOOSTER_FILE = "booster.txt"
MISSING = "__missing__"
UNSEEN = "__unseen__"  # riskops.features.definitions.UNSEEN
_FORMAT = 1


SMALL_BATCH = 256  # up to this many rows, score from a plain array (online path)


class LightGBMScorer:
    """A LightGBM booster plus the category lists it was trained with."""

    kind = "lightgbm"

    def __init__(
        self,
        booster: Any,
        numeric: Sequence[str],
        categorical: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        prior_weight: float = 1.0,
        fold_unseen: bool = False,
    ) -> None:
        self.booster = booster
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.categories = {name: list(categories[name]) for name in self.categorical}
        # Positives were up-weighted by this factor in training; dividing the odds by it again
        # returns calibrated probabilities without changing the ranking.
        self.prior_weight = float(prior_weight)
        # The categories were learned on training rows only: any other value (however often the
        # feature set's vocabulary saw it) is scored as __unseen__, as it was in training.
        self.fold_unseen = bool(fold_unseen)
        # Category -> code as LightGBM numbers them (position in the training categories).
        self._codes = {
            name: {value: float(i) for i, value in enumerate(self.categories[name])}
            for name in self.categorical
        }
        self._unseen = {
            name: codes.get(UNSEEN, np.nan) if self.fold_unseen else np.nan
            for name, codes in self._codes.items()
        }

    @property
    def input_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model matrix: numerics as float64, categoricals on the fixed training categories."""
        data = {
            name: pd.to_numeric(frame[name], errors="coerce").astype("float64")
            for name in self.numeric
        }
        for name in self.categorical:
            # Nulls (and, for older models, unseen values) become NaN: LightGBM's missing.
            values = frame[name].astype("object")
            if self.fold_unseen:
                known = values.isin(self.categories[name]) | values.isna()
                values = values.where(known, UNSEEN)
            data[name] = pd.Categorical(values, categories=self.categories[name])
        return pd.DataFrame(data, index=frame.index, columns=self.input_columns)

    def prepare_array(self, frame: pd.DataFrame) -> np.ndarray:
        """The same model matrix as :meth:`prepare`, as a float array with category codes.

        LightGBM maps a pandas categorical to its position in the training categories; doing
        that here skips pandas' per-call overhead (about 1 ms), which dominates single rows.
        """
        try:  # one conversion for all numeric columns when they are numbers already
            numbers = frame[self.numeric].to_numpy(dtype=np.float64)
            columns = [numbers[:, i] for i in range(numbers.shape[1])]
        except (TypeError, ValueError):
            columns = [
                pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
                for name in self.numeric
            ]
        for name in self.categorical:
            lookup, unseen = self._codes[name], self._unseen[name]
            codes = [np.nan if v is None or v != v else lookup.get(v, unseen) for v in frame[name]]
            columns.append(np.array(codes, dtype=np.float64))
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))

    def predict_proba_positive(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive label for each row."""
        matrix = self.prepare_array(frame) if len(frame) <= SMALL_BATCH else self.prepare(frame)
        raw = np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)
        if self.prior_weight == 1.0:
            return raw
        return raw / (raw + self.prior_weight * (1.0 - raw))

    def feature_importance(self) -> dict[str, float]:
        """Total split gain per feature, as a share of the whole."""
        gains = np.asarray(self.booster.feature_importance(importance_type="gain"), dtype=float)
        total = gains.sum() or 1.0
        names = self.booster.feature_name()
        return {name: float(g / total) for name, g in zip(names, gains, strict=True)}

    def save(self, directory: Path | str) -> dict[str, str]:
        """Write the state files into ``directory``; returns MLflow artifacts (name → path)."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        booster_path = folder / BOOSTER_FILE
        booster_path.write_text(self.booster.model_to_string(), encoding="utf-8")
        state = {
            "kind": self.kind,
            "format": _FORMAT,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "categories": self.categories,
            "prior_weight": self.prior_weight,
            "fold_unseen": self.fold_unseen,
        }
        state_path = folder / STATE_FILE
        state_path.write_text(json.dumps(state, indent=1), encoding="utf-8")
        return {"scorer": str(state_path), "booster": str(booster_path)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], files: Mapping[str, str]) -> LightGBMScorer:
        """Rebuild from :meth:`save` output."""
        import lightgbm

        booster = lightgbm.Booster(model_file=files["booster"])
        return cls(
            booster,
            state["numeric"],
            state["categorical"],
            state["categories"],
            state.get("prior_weight", 1.0),
            state.get("fold_unseen", False),
        )


class BinnedLogisticScorer:
    """A scorecard: one weight per numeric bin or category, summed into a logistic."""

    kind = "binned_logistic"

    def __init__(
        self,
        numeric: Sequence[str],
        categorical: Sequence[str],
        edges: Mapping[str, Sequence[float]],
        categories: Mapping[str, Sequence[str]],
        weights: Mapping[str, Sequence[float]] | None = None,
        intercept: float = 0.0,
        fold_unseen: bool = False,
    ) -> None:
        self.fold_unseen = bool(fold_unseen)  # values outside the categories score as __unseen__
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.edges = {name: [float(e) for e in edges[name]] for name in self.numeric}
        self.categories = {name: list(categories[name]) for name in self.categorical}
        self.weights = {name: [float(w) for w in ws] for name, ws in (weights or {}).items()}
        self.intercept = float(intercept)

    @property
    def input_columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def sizes(self) -> list[int]:
        """Number of weights per feature: bins + a missing bin, or one per category."""
        return [len(self.edges[n]) + 2 for n in self.numeric] + [
            len(self.categories[c]) for c in self.categorical
        ]

    def codes(self, frame: pd.DataFrame) -> list[np.ndarray]:
        """Per feature, each row's bin or category index; -1 for an unseen category."""
        out = []
        for name in self.numeric:
            x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
            edges = np.asarray(self.edges[name], dtype=np.float64)
            code = np.searchsorted(edges, x, side="right")
            code[np.isnan(x)] = len(edges) + 1  # missing is a bin of its own
            out.append(code.astype(np.int64))
        for name in self.categorical:
            values = frame[name].astype("object").where(frame[name].notna(), MISSING)
            index = pd.Index(self.categories[name])
            code = index.get_indexer(values).astype(np.int64)
            if self.fold_unseen and UNSEEN in index:
                code[code < 0] = index.get_loc(UNSEEN)
            out.append(code)
        return out

    def predict_proba_positive(self, frame: pd.DataFrame) -> np.ndarray:
        """Probability of the positive label: logistic of intercept plus the rows' weights."""
        logit = np.full(len(frame), self.intercept, dtype=np.float64)
        for name, code in zip(self.input_columns, self.codes(frame), strict=True):
            # A trailing 0 makes code -1 (unseen category) contribute nothing.
            table = np.append(np.asarray(self.weights[name], dtype=np.float64), 0.0)
            logit += table[code]
        return 1.0 / (1.0 + np.exp(-logit))

    def feature_importance(self) -> dict[str, float]:
        """Range of each feature's weights (its spread of scorecard points), as a share."""
        spread = {
            n: float(np.ptp(self.weights[n])) if self.weights[n] else 0.0
            for n in self.input_columns
        }
        total = sum(spread.values()) or 1.0
        return {name: value / total for name, value in spread.items()}

    def save(self, directory: Path | str) -> dict[str, str]:
        """Write the scorecard as JSON into ``directory``; returns MLflow artifacts."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "kind": self.kind,
            "format": _FORMAT,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "edges": self.edges,
            "categories": self.categories,
            "weights": self.weights,
            "intercept": self.intercept,
            "fold_unseen": self.fold_unseen,
        }
        path = folder / STATE_FILE
        path.write_text(json.dumps(state, indent=1), encoding="utf-8")
        return {"scorer": str(path)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], files: Mapping[str, str]) -> BinnedLogisticScorer:
        """Rebuild from :meth:`save` output."""
        return cls(
            state["numeric"],
            state["categorical"],
            state["edges"],
            state["categories"],
            state["weights"],
            state["intercept"],
            state.get("fold_unseen", False),
        )


Scorer = LightGBMScorer | BinnedLogisticScorer
_KINDS: dict[str, Any] = {cls.kind: cls for cls in (LightGBMScorer, BinnedLogisticScorer)}


def artifact_digest(files: Mapping[str, str]) -> str:
    """SHA-256 over a scorer's artifact files (names and bytes, by name): what was served."""
    sha = hashlib.sha256()
    for name in sorted(files):
        sha.update(name.encode())
        sha.update(Path(files[name]).read_bytes())
    return sha.hexdigest()


def load_scorer(files: Mapping[str, str]) -> Scorer:
    """Rebuild a scorer from its artifacts (``scorer`` JSON, plus ``booster`` for LightGBM)."""
    state = json.loads(Path(files["scorer"]).read_text(encoding="utf-8"))
    if state.get("format") != _FORMAT or state.get("kind") not in _KINDS:
        raise ValueError(
            f"unknown scorer state: kind={state.get('kind')!r}, format={state.get('format')!r}"
        )
    return _KINDS[state["kind"]].from_state(state, files)


class RiskScorerModel(PythonModel):
    """MLflow pyfunc: ``predict(frame)`` returns the positive-class probability per row."""

    def __init__(self) -> None:
        self.scorer: Scorer | None = None

    def load_context(self, context: PythonModelContext) -> None:
        """Load the scorer from the model's artifacts."""
        self.scorer = load_scorer(context.artifacts)

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Positive-class probabilities, one per input row."""
        if self.scorer is None:
            self.load_context(context)
        assert self.scorer is not None
        return self.scorer.predict_proba_positive(model_input)


if not __name__.startswith("riskops."):  # executed by MLflow as the models-from-code file
    mlflow.models.set_model(RiskScorerModel())
