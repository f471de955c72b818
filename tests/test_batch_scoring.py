"""Batch scoring on Spark: the champion scores an accepted dataset version, explains every
referral and decline, writes scored parquet and decision-log rows, and scores exactly as the
service's engine does on the same features."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from riskops.db import session_scope
from riskops.features.pandas_build import build_features_pandas
from riskops.records import FeatureSetRecord
from riskops.serving.decision_files import read_decisions
from riskops.serving.served import APPROVE
from riskops.settings import SparkSettings
from riskops.stages.batch_scoring import BatchScoringError, batch_score_stage
from tests.serving_helpers import PSEUDONYM_KEY, ServingPlatform

MODEL = "fraud-detection"
pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("batch")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        sp = ServingPlatform(root, MODEL, "fraud_detection", rows=8_000)
        yield sp
    sp.engine.dispose()


def test_without_a_champion_batch_scoring_says_so(platform):
    with pytest.raises(BatchScoringError, match="no champion yet"):
        batch_score_stage(platform=platform.platform, model=MODEL, cache_dir=platform.root / "c")


def test_a_dataset_is_scored_explained_and_logged_like_the_service_scores_it(platform):
    version = platform.train(seed=1)
    platform.promote(version)
    shares: list[float] = []
    platform.platform.batch_chunk_rows = 2_000  # RISKOPS_SCORING_BATCH_CHUNK_ROWS, via the block
    result = batch_score_stage(
        platform=platform.platform, model=MODEL, cache_dir=platform.root / "cache",
        progress=lambda share, message: shares.append(share),
    )  # fmt: skip
    assert result.chunk_rows == 2_000  # the chunks of the settings, not the 50,000 default
    assert result.rows == len(platform.raw) and result.version == version
    assert sum(result.bands.values()) == result.rows and result.bands["decline"] > 0
    assert shares[0] == 0.0 and shares[-1] == 1.0 and shares == sorted(shares)
    assert result.decision_files >= 4 and result.peak_rss_mb > 0
    with platform.lake.local_tree(platform.lake.key_of(result.scored_uri)) as folder:
        scored = pd.read_parquet(folder)
    assert len(scored) == result.rows and scored["decision_id"].is_unique
    assert (scored.loc[scored["band"] != APPROVE, "reason_codes"] != "[]").all()
    assert (scored.loc[scored["band"] == APPROVE, "reason_codes"] == "[]").all()
    assert not set(scored["card_id"]) & set(platform.raw["card_id"])  # pseudonyms only
    # the same engine on the pandas build of the same rows (= Spark's) gives the same scores
    from riskops.features.online_store import InProcessStore
    from riskops.serving.loader import load_version

    served = load_version(platform.platform, MODEL, "champion", store=InProcessStore(),
                          cache_dir=platform.root / "cache2")  # fmt: skip
    with session_scope(platform.engine) as session:
        manifest = session.get(FeatureSetRecord, platform.featureset_id).manifest
    expected = build_features_pandas(platform.raw, served.plan, manifest["vocabulary"],
                                     pseudonym_key=PSEUDONYM_KEY)  # fmt: skip
    want = served.engine.probabilities(served.engine.frame_matrix(expected))
    got = scored.set_index("transaction_id").loc[expected["transaction_id"], "score"].to_numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    logged = read_decisions(platform.lake, platform.engine, MODEL)
    batch = logged[logged["endpoint"] == "batch"]
    assert len(batch) == result.rows and set(batch["request_id"]) == {platform.dataset_id}
    assert set(batch["decision_id"]) == set(scored["decision_id"])
    # The monitor's cue: one riskops.decisions.logged in the outbox, on the model version.
    from riskops import events
    from riskops.outbox import OutboxEvent

    with session_scope(platform.engine) as session:
        event = session.get(OutboxEvent, result.event_id)
        assert event is not None and event.name == events.DECISIONS_LOGGED
        assert event.resource_id == events.model_resource(MODEL, version)
        assert event.payload["rows"] == result.rows == len(batch)
        assert event.payload["dataset_version"] == result.dataset_version


def test_batch_scoring_on_spark_connect_scores_exactly_as_the_local_session(
    platform, spark_connect_url
):
    """The same stage through a Connect server (no JVM in this process): the same rows,
    bands, scores and reason codes as the session-local run of the test above."""
    before = read_decisions(platform.lake, platform.engine, MODEL)
    assert len(before), "needs test_a_dataset_is_scored_explained_and_logged_like_..."
    prefix = f"scores/{MODEL}/{platform.dataset_id}/v{before['version'].iloc[0]}"
    with platform.lake.local_tree(prefix) as folder:
        local = pd.read_parquet(folder).set_index("transaction_id").sort_index()
    # Scored trees are written once per (dataset, version): keep the local run's aside.
    shutil.move(platform.lake.path(prefix), platform.root / "local-run-scores")
    remote = dataclasses.replace(platform.platform, spark=SparkSettings(remote=spark_connect_url))
    messages: list[tuple[float, str]] = []
    result = batch_score_stage(
        platform=remote, model=MODEL, chunk_rows=2_000, cache_dir=platform.root / "cache3",
        progress=lambda share, message: messages.append((share, message)),
    )  # fmt: skip
    shares = [share for share, _ in messages]
    assert shares[0] == 0.0 and shares[-1] == 1.0 and shares == sorted(shares)
    assert any(f"on Spark Connect {spark_connect_url}" in m for _, m in messages)
    assert result.rows == len(platform.raw) and result.decision_files >= 4
    with platform.lake.local_tree(platform.lake.key_of(result.scored_uri)) as folder:
        connect = pd.read_parquet(folder).set_index("transaction_id").sort_index()
    assert list(connect.index) == list(local.index)
    np.testing.assert_allclose(connect["score"], local["score"], rtol=0, atol=1e-12)
    assert (connect["band"] == local["band"]).all()
    assert (connect["reason_codes"] == local["reason_codes"]).all()
    assert not set(connect["decision_id"]) & set(local["decision_id"])  # new decisions
    logged = read_decisions(platform.lake, platform.engine, MODEL)
    new = logged[~logged["decision_id"].isin(before["decision_id"])]
    assert set(new["decision_id"]) == set(connect["decision_id"])
    assert (new["endpoint"] == "batch").all()
