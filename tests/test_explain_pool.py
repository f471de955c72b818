"""Reason codes computed by the explain worker equal the in-process ones, and a broken or cold
worker never loses a reason: the service falls back to computing them itself."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest

from riskops.features.online_store import InProcessStore
from riskops.serving.explain_pool import ContributionPool
from riskops.serving.loader import load_version
from riskops.stages.holdout import read_feature_rows
from tests.serving_helpers import ServingPlatform

MODEL = "fraud-detection"
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
    )
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("explain-pool")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        sp = ServingPlatform(root, MODEL, "fraud_detection", rows=6_000)
        sp.promote(sp.train(seed=2))
        with tempfile.TemporaryDirectory() as cache:
            model = load_version(sp.platform, MODEL, "champion", store=InProcessStore(),
                                 cache_dir=Path(cache))  # fmt: skip
        from sqlmodel import Session

        from riskops.records import FeatureSetRecord

        with Session(sp.engine) as session:
            rows = read_feature_rows(sp.lake, session.get(FeatureSetRecord, sp.featureset_id))
        yield model, model.engine.frame_matrix(rows.head(64))
    sp.engine.dispose()


def test_the_worker_gives_the_in_process_contributions(served):
    model, matrix = served
    pool = ContributionPool(workers=1)
    try:
        assert ContributionPool.supports(model) and not pool.is_warm(model)
        cold = asyncio.run(pool.contributions(model, matrix[:3]))  # not warm: in-process
        np.testing.assert_array_equal(cold, model.engine.contributions(matrix[:3]))
        assert pool.warm(model) and pool.is_warm(model)
        found = asyncio.run(pool.contributions(model, matrix))
        np.testing.assert_allclose(found, model.engine.contributions(matrix), rtol=0, atol=1e-12)
        reasons = model.reasons(found[0], {n: 0.0 for n in model.engine.inputs})
        assert reasons == model.reasons(model.engine.contributions(matrix[:1])[0],
                                        {n: 0.0 for n in model.engine.inputs})  # fmt: skip
    finally:
        pool.close()


def test_a_dead_worker_falls_back_to_in_process_reasons(served, caplog):
    model, matrix = served
    pool = ContributionPool(workers=1)
    try:
        assert pool.warm(model)
        for pid in list(pool._pool._processes):  # the worker dies, as an OOM kill would do it
            os.kill(pid, signal.SIGKILL)

        async def twice() -> tuple[np.ndarray, bool, np.ndarray]:
            first = await pool.contributions(model, matrix[:5])  # in-process; re-warming starts
            cold = pool.is_warm(model)
            await asyncio.gather(*pool._rewarming)  # new worker, tables built again
            return first, cold, await pool.contributions(model, matrix[:5])

        first, cold, again = asyncio.run(twice())
        np.testing.assert_array_equal(first, model.engine.contributions(matrix[:5]))
        assert not cold and pool.is_warm(model)
        np.testing.assert_allclose(again, first, rtol=0, atol=1e-12)
        assert "reasons computed in-process" in caplog.text
    finally:
        pool.close()
