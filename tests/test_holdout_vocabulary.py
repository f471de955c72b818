"""Finding 5: category vocabularies and bins of a model are learned on its training rows only.

The feature set's vocabulary is learned on every row of the dataset (holdout included), so a
category can reach the feature set because it is frequent in the holdout period. The model's
encoder keeps only values seen often enough in training; every other value is scored exactly
as ``__unseen__``, in training, validation and serving alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskops.training.models import train_binned_logistic, train_lightgbm
from riskops.training.scorers import load_scorer

UNSEEN = "__unseen__"  # what the feature build calls a value outside the vocabulary


@pytest.fixture(scope="module")
def train() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 4_000
    kind = rng.choice(["employed", "self-employed"], n)
    kind[:3] = "newly-common"  # 3 training rows: only the holdout period made it common
    x = rng.normal(0, 1, n)
    logit = -2 + x + np.where(kind == "self-employed", 0.8, 0.0) + np.where(kind[0] == kind, 3, 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pd.DataFrame({"x": x, "employment_type": kind}), y


def _rows(value: str) -> pd.DataFrame:
    return pd.DataFrame({"x": np.linspace(-2, 2, 300), "employment_type": value})


@pytest.mark.parametrize("algorithm", ["lightgbm", "binned_logistic"])
def test_rare_training_values_are_not_categories_of_the_model(train, algorithm, tmp_path):
    frame, y = train
    if algorithm == "lightgbm":
        fitted = train_lightgbm(frame, ["x"], ["employment_type"], y, seed=1, num_boost_round=50)
    else:
        fitted = train_binned_logistic(frame, ["x"], ["employment_type"], y)
    categories = fitted.scorer.categories["employment_type"]
    assert "newly-common" not in categories and UNSEEN in categories
    assert {"employed", "self-employed"} <= set(categories)
    as_unseen = fitted.predict_proba_positive(_rows(UNSEEN))
    np.testing.assert_array_equal(fitted.predict_proba_positive(_rows("newly-common")), as_unseen)
    np.testing.assert_array_equal(fitted.predict_proba_positive(_rows("never seen")), as_unseen)
    # one row at a time (the online path) agrees with the batch path
    single = fitted.predict_proba_positive(_rows("newly-common").head(1))
    np.testing.assert_allclose(single, as_unseen[:1], rtol=0, atol=1e-12)
    # the saved artifact keeps the rule
    reloaded = load_scorer(fitted.scorer.save(tmp_path / algorithm))
    np.testing.assert_allclose(
        reloaded.predict_proba_positive(_rows("newly-common")), as_unseen, rtol=0, atol=1e-12
    )
