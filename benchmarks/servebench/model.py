"""The benchmark's model and load: a seeded LightGBM booster and pre-generated request rows.

One model for every contender: 200 trees of 31 leaves over 30 numeric features, trained on
synthetic data with a known seed, so two runs train the same trees and send the same bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_FEATURES = 30
N_TREES = 200
N_LEAVES = 31
FEATURES = [f"x{i:02d}" for i in range(N_FEATURES)]
APPROVE_SHARE, REFER_SHARE = 0.80, 0.10  # the rest is declined
VALUE_BOUND = 8.0  # features are standard normal, rounded; the spec's ranges are +-this


@dataclass(frozen=True)
class BenchModel:
    """The trained booster, its decision cut-offs and the rows the load sends."""

    booster: object  # lightgbm.Booster
    approve_below: float
    decline_at_or_above: float
    rows: np.ndarray  # (n_bodies, N_FEATURES): one row per request body
    expected: np.ndarray  # booster.predict(rows): what every contender must answer

    @property
    def records(self) -> list[dict[str, float]]:
        """The request rows as field -> value records (the feature order of the booster)."""
        return [dict(zip(FEATURES, map(float, row), strict=True)) for row in self.rows]

    def band_shares(self) -> dict[str, float]:
        """Share of the request rows in each decision band under the cut-offs."""
        approve = self.expected < self.approve_below
        decline = self.expected >= self.decline_at_or_above
        n = len(self.expected)
        return {
            "approve": float(approve.sum() / n),
            "refer": float((~approve & ~decline).sum() / n),
            "decline": float(decline.sum() / n),
        }


def synthetic_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Standard-normal features rounded to 3 decimals (so JSON round-trips them exactly)."""
    return np.round(rng.standard_normal((n, N_FEATURES)), 3)


def synthetic_labels(rng: np.random.Generator, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A bad outcome (1) from a logistic of linear terms plus two interactions; ~15% positive."""
    logit = x @ weights + 0.8 * np.sin(x[:, 0] * x[:, 1]) + 0.5 * x[:, 2] * x[:, 3] - 2.2
    return (rng.random(len(x)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)


def train_bench_model(seed: int, train_rows: int, n_bodies: int) -> BenchModel:
    """Train the booster on seeded data; cut-offs at the 80th and 90th training-score percentiles.

    Args:
        seed: seeds the data, LightGBM and the request rows.
        train_rows: training rows (enough for 31-leaf trees: 20k is plenty).
        n_bodies: request rows to pre-generate (drawn fresh, not training rows).
    """
    import lightgbm

    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 0.6, N_FEATURES)
    x = synthetic_rows(rng, train_rows)
    y = synthetic_labels(rng, x, weights)
    params = {
        "objective": "binary",
        "num_leaves": N_LEAVES,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "seed": seed,
        "deterministic": True,
        "num_threads": 2,
        "verbose": -1,
    }
    data = lightgbm.Dataset(x, label=y, feature_name=FEATURES, free_raw_data=False)
    booster = lightgbm.train(params, data, num_boost_round=N_TREES)
    if booster.num_trees() != N_TREES:
        raise RuntimeError(f"trained {booster.num_trees()} trees, expected {N_TREES}")
    train_scores = booster.predict(x, num_threads=2)
    low, high = np.quantile(train_scores, [APPROVE_SHARE, APPROVE_SHARE + REFER_SHARE])
    rows = synthetic_rows(rng, n_bodies)
    return BenchModel(
        booster=booster,
        approve_below=round(float(low), 4),
        decline_at_or_above=round(float(high), 4),
        rows=rows,
        expected=np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64),
    )


def bench_spec(model: BenchModel) -> dict:
    """The riskops model spec of the benchmark model (``bench``; validated by the caller)."""
    return {
        "name": "bench",
        "family": "other",
        "risk_class": "minimal",
        "owner": "benchmarks",
        "intended_use": "Serving benchmark only: a synthetic model on synthetic data.",
        "target": "bad",
        "positive_label": 1,
        "features": {"numeric": list(FEATURES), "categorical": []},
        "columns": {name: {"min": -VALUE_BOUND, "max": VALUE_BOUND} for name in FEATURES},
        "decision": {
            "approve_below": model.approve_below,
            "decline_at_or_above": model.decline_at_or_above,
        },
    }
