"""Spark: one profile per partition (mapInPandas), merged on the driver, equals the pandas one."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from riskops.features.session import spark_session
from riskops.monitoring import ProfileSchema, compare_profiles, profile_frame, profile_spark

SCHEMA = ProfileSchema(numeric=("amount", "score"), categorical=("merchant",))


@pytest.fixture(scope="module")
def local_spark() -> Iterator[SparkSession]:
    # the same session the other Spark tests use (tests/test_features.py)
    with spark_session("local[1]", app_name="riskops-monitoring", driver_memory="1g") as session:
        yield session


@pytest.fixture(params=["local", "connect"])
def spark(request: pytest.FixtureRequest, local_spark: SparkSession) -> Iterator[SparkSession]:
    """The session-local Spark, then a client of the test run's Spark Connect server."""
    if request.param == "local":
        yield local_spark
        return
    url = request.getfixturevalue("spark_connect_url")
    with spark_session(app_name="riskops-monitoring", remote=url) as session:
        yield session


def test_partitioned_profile_merged_on_the_driver_equals_the_pandas_profile(spark):
    rng = np.random.default_rng(5)
    n = 12_000
    amount = rng.lognormal(3, 1, n)
    amount[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            "amount": amount,
            "score": rng.beta(2, 8, n),
            "merchant": rng.choice(["grocery", "fuel", "travel", "online"], n),
            "customer_id": np.arange(n),
        }
    )
    sdf = spark.createDataFrame(frame).repartition(3)
    # (no RDD API on Spark Connect: count the partitions that hold rows)
    assert sdf.select(F.spark_partition_id().alias("p")).distinct().count() == 3
    ours = profile_spark(sdf, SCHEMA)
    local = profile_frame(frame, SCHEMA)
    for column in SCHEMA.columns:
        a = ours.get_column(column).to_summary_dict()
        b = local.get_column(column).to_summary_dict()
        assert a["counts/n"] == b["counts/n"] == n
        assert a["counts/null"] == b["counts/null"]
    merchants = ours.get_column("merchant").to_summary_dict()["frequent_items/frequent_strings"]
    assert {i.value: i.est for i in merchants} == frame["merchant"].value_counts().to_dict()
    for column in SCHEMA.numeric:
        a = ours.get_column(column).get_metric("distribution")
        b = local.get_column(column).get_metric("distribution")
        assert a.avg == pytest.approx(b.avg, rel=1e-9)
        assert a.stddev == pytest.approx(b.stddev, rel=1e-9)
        values = np.sort(frame[column].dropna().to_numpy())
        for q in (0.1, 0.5, 0.9):
            rank = np.searchsorted(values, a.get_quantile(q)) / len(values)
            assert abs(rank - q) < 0.01
    # the same drift answer either way: nothing moved
    assert compare_profiles(local, ours, thresholds=None).drifted() == ()
    assert ours.metadata["riskops.categorical"] == '["merchant"]'
