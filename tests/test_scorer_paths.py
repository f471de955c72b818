"""The online (array) and batch (pandas) scoring paths of a LightGBM model agree exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskops.synthetic import generate
from riskops.training.models import train_lightgbm
from riskops.training.split import target01


def test_small_and_large_batches_score_identically(tmp_path, credit_spec):
    path = tmp_path / "credit.parquet"
    generate("credit_scoring", 6_000, seed=3, out_path=path, progress=False)
    frame = pd.read_parquet(path)
    numeric, categorical = credit_spec.features.numeric, credit_spec.features.categorical
    fitted = train_lightgbm(
        frame, numeric, categorical, target01(frame[credit_spec.target], credit_spec),
        seed=1, family="credit_scoring", num_boost_round=60,
    )  # fmt: skip
    scorer = fitted.scorer
    sample = frame.head(1_000).copy()
    sample.loc[sample.index[:5], "employment_type"] = "a category never seen"
    sample.loc[sample.index[5:10], "income"] = np.nan
    batch = scorer.predict_proba_positive(sample)  # > SMALL_BATCH rows: pandas path
    online = np.concatenate([scorer.predict_proba_positive(sample.iloc[[i]]) for i in range(200)])
    np.testing.assert_allclose(online, batch[:200], rtol=0, atol=1e-12)
