"""Finding 8: pseudonyms are HMAC-SHA256 (keyed, RFC 2104), identical in Spark, pandas and hmac."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from riskops.features.pandas_build import pseudonymise
from riskops.features.session import spark_session
from riskops.features.spark_build import pseudonym

VALUES = ["", "C-000123", "Zoë ✓ 客户", "x" * 5000, "a\x00b", "  padded  ", None]
KEYS = ["k", "Schlüssel-ключ", "k" * 64, "k" * 65, "long-" * 40]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    with spark_session("local[1]", app_name="riskops-privacy", driver_memory="1g") as session:
        yield session


def _hmac(key: str, value: str | None) -> str | None:
    if value is None:
        return None
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("key", KEYS)
def test_spark_pandas_and_python_hmac_agree_on_tricky_values(spark, key):
    """finding 8: sha256(key||value) is not an HMAC; all three must give HMAC-SHA256 hex."""
    expected = [_hmac(key, v) for v in VALUES]
    local = pseudonymise(pd.Series(VALUES, dtype=object), key).tolist()
    schema = StructType([StructField("i", StringType()), StructField("v", StringType())])
    frame = spark.createDataFrame([(str(i), v) for i, v in enumerate(VALUES)], schema)
    rows = frame.select("i", pseudonym(F.col("v"), key).alias("p")).collect()
    remote = [row["p"] for row in sorted(rows, key=lambda r: int(r["i"]))]
    assert local == expected
    assert remote == expected


def test_the_old_prefix_hash_is_gone():
    """finding 8: the pseudonym must not equal the length-extendable sha256(key || value)."""
    key, value = "secret-key", "C-000123"
    got = pseudonymise(pd.Series([value]), key).iloc[0]
    assert got != hashlib.sha256((key + value).encode()).hexdigest()
    assert got == _hmac(key, value)
