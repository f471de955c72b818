"""Feature definitions compiled to Spark and pandas: point-in-time values, parity, feature sets."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame, SparkSession

from riskops.contracts import check_frame
from riskops.features import MISSING, UNSEEN, Velocity, feature_plan
from riskops.features.featureset import (
    FeatureBuildError,
    FeatureSetManifest,
    build_feature_set,
    featureset_version,
    read_dataset,
)
from riskops.features.pandas_build import build_features_pandas, learn_vocabulary_pandas
from riskops.features.session import spark_session
from riskops.features.spark_build import build_features_spark
from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.synthetic import FAMILIES, generate

MODELS = Path(__file__).resolve().parents[1] / "models"
KEY = "test-pseudonym-key"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local[1] session for the whole test run, stopped at the end."""
    with spark_session("local[1]", app_name="riskops-tests", driver_memory="1g") as session:
        yield session


@pytest.fixture(params=["local", "connect"])
def any_spark(request: pytest.FixtureRequest, spark: SparkSession) -> Iterator[SparkSession]:
    """The session-local Spark, then a Spark Connect client of the test run's one server:
    the tests that take it must pass on both."""
    if request.param == "local":
        yield spark
        return
    url = request.getfixturevalue("spark_connect_url")
    with spark_session(app_name="riskops-tests", remote=url) as session:
        yield session


@pytest.fixture(scope="session")
def fraud_spec() -> ModelSpec:
    return load_spec(MODELS / "fraud-detection.yaml")


@pytest.fixture(scope="session")
def credit() -> ModelSpec:
    return load_spec(MODELS / "credit-scoring.yaml")


# --- a card history built by hand -----------------------------------------------------------
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)  # a Monday
US = timedelta(microseconds=1)
H, D, M30 = timedelta(hours=1), timedelta(days=1), timedelta(minutes=30)
# id, card, merchant, time, amount: exactly-1h and exactly-7d gaps, equal timestamps (same card,
# same merchant, other card), a 1 microsecond gap, a gap of more than 7 days, a null amount.
HAND = [
    ("T01", "CARD-A", "MER-1", T0, 10.0),
    ("T02", "CARD-A", "MER-2", T0 + M30, 20.0),
    ("T03", "CARD-A", "MER-1", T0 + H, 40.0),
    ("T04", "CARD-B", "MER-1", T0 + H, 5.0),
    ("T05", "CARD-A", "MER-3", T0 + H, 7.5),
    ("T06", "CARD-B", "MER-2", T0 + H + US, 2.5),
    ("T07", "CARD-A", "MER-1", T0 + 2 * H, 100.0),
    ("T08", "CARD-A", "MER-2", T0 + 25 * H, 50.0),
    ("T09", "CARD-B", "MER-2", T0 + 7 * D + H + US, 8.0),
    ("T10", "CARD-A", "MER-1", T0 + 8 * D + 2 * H, 30.0),
    ("T11", "CARD-B", "MER-1", T0 + 8 * D + 2 * H, 12.0),
    ("T12", "CARD-A", "MER-1", T0 + 8 * D + 2 * H + M30, None),
    ("T13", "CARD-A", "MER-3", T0 + 8 * D + 3 * H, 60.0),
]
N = None
Z = (0, 0.0, N)  # an empty window: count 0, sum 0, max null
# id: card windows (1h, 24h, 7d) as (count, sum, max), distinct merchants 24h, seconds since
# the card's previous transaction
CARD = {
    "T01": (Z, Z, Z, 0, N),
    "T02": ((1, 10, 10), (1, 10, 10), (1, 10, 10), 1, 1800),
    "T03": ((2, 30, 20), (2, 30, 20), (2, 30, 20), 2, 1800),
    "T04": (Z, Z, Z, 0, N),
    "T05": ((2, 30, 20), (2, 30, 20), (2, 30, 20), 2, 1800),
    "T06": ((1, 5, 5), (1, 5, 5), (1, 5, 5), 1, 1e-6),
    "T07": ((2, 47.5, 40), (4, 77.5, 40), (4, 77.5, 40), 3, 3600),
    "T08": (Z, (3, 147.5, 100), (5, 177.5, 100), 2, 82800),
    "T09": (Z, Z, (1, 2.5, 2.5), 0, 604800),
    "T10": (Z, Z, Z, 0, 608400),
    "T11": (Z, Z, (1, 8, 8), 0, (90_000 * 10**6 - 1) / 1e6),
    "T12": ((1, 30, 30), (1, 30, 30), (1, 30, 30), 1, 1800),
    "T13": ((2, 30, 30), (2, 30, 30), (2, 30, 30), 1, 1800),
}
# id: merchant windows (1h, 24h, 7d) as (count, sum, max)
MERCHANT = {
    "T01": (Z, Z, Z),
    "T02": (Z, Z, Z),
    "T03": ((1, 10, 10), (1, 10, 10), (1, 10, 10)),
    "T04": ((1, 10, 10), (1, 10, 10), (1, 10, 10)),
    "T05": (Z, Z, Z),
    "T06": ((1, 20, 20), (1, 20, 20), (1, 20, 20)),
    "T07": ((2, 45, 40), (3, 55, 40), (3, 55, 40)),
    "T08": (Z, (1, 2.5, 2.5), (2, 22.5, 20)),
    "T09": (Z, Z, (2, 52.5, 50)),
    "T10": (Z, Z, Z),
    "T11": (Z, Z, Z),
    "T12": ((2, 42, 30), (2, 42, 30), (2, 42, 30)),
    "T13": (Z, Z, Z),
}


def _expected_columns(txn: str) -> dict[str, float | None]:
    *card_windows, distinct, since = CARD[txn]
    out: dict[str, float | None] = {}
    for prefix, windows in (("card", card_windows), ("merchant", MERCHANT[txn])):
        for suffix, (count, total, top) in zip(("1h", "24h", "7d"), windows, strict=True):
            out[f"{prefix}_txn_count_{suffix}"] = count
            out[f"{prefix}_amount_sum_{suffix}"] = total
            out[f"{prefix}_amount_max_{suffix}"] = top
    out["card_distinct_merchants_24h"] = distinct
    out["card_seconds_since_previous"] = since
    return out


def _hand_frame(rows: list[tuple] = HAND) -> pd.DataFrame:
    frame = pd.DataFrame(
        rows, columns=["transaction_id", "card_id", "merchant_id", "event_time", "amount"]
    )
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True).dt.as_unit("us")
    frame["amount"] = frame["amount"].astype("float64")
    frame["mcc"] = "5411"
    channels = ["pos", " POS ", "Ecom", None, "", "atm", "pos", "ecom", "pos", "x", "pos", "pos"]
    frame["channel"] = [*channels, "ecom"][: len(frame)]
    frame["country"] = "DE"
    frame["entry_mode"] = "chip"
    frame["is_fraud"] = 0
    return frame


def _to_spark(spark: SparkSession, frame: pd.DataFrame, path: Path) -> DataFrame:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return spark.read.parquet(str(path))


def _spark_pandas(df: DataFrame, key: str = "transaction_id") -> pd.DataFrame:
    return df.toPandas().set_index(key)


HAND_VOCAB = {
    "mcc": ["5411"],
    "channel": ["ecom", "pos"],
    "country": ["de"],
    "entry_mode": ["chip"],
}


def _assert_hand(out: pd.DataFrame, ids: list[str]) -> None:
    for txn in ids:
        want = _expected_columns(txn)
        got = out.loc[txn]
        for column, value in want.items():
            actual = got[column]
            if value is None:
                assert pd.isna(actual), f"{txn} {column}: expected null, got {actual}"
            else:
                assert actual == value, f"{txn} {column}: expected {value}, got {actual}"


@pytest.mark.parametrize("rows", [len(HAND), 8], ids=["all-rows", "first-8-rows"])
def test_hand_history_velocity_spark_and_pandas(spark, fraud_spec, tmp_path, rows):
    """Every velocity aggregate of every row is as worked out by hand, in Spark and in pandas;
    building on the first 8 rows only gives those rows the same values (no future leaks in)."""
    frame = _hand_frame(HAND[:rows])
    plan = feature_plan(fraud_spec, frame.columns)
    assert not plan.skipped
    ids = list(frame["transaction_id"])
    out, _ = build_features_spark(
        _to_spark(spark, frame, tmp_path / "h.parquet"), plan, HAND_VOCAB, pseudonym_key=KEY
    )
    _assert_hand(_spark_pandas(out), ids)
    local = build_features_pandas(frame, plan, HAND_VOCAB, pseudonym_key=KEY)
    _assert_hand(local.set_index("transaction_id"), ids)


def test_hand_history_scalars_and_history_split(fraud_spec):
    """Hour/day come from UTC time; with earlier rows passed as history, pandas gives the
    rows of a later batch the same values as when everything is one batch."""
    frame = _hand_frame()
    plan = feature_plan(fraud_spec, frame.columns)
    whole = build_features_pandas(frame, plan, HAND_VOCAB, pseudonym_key=KEY)
    for (_, _, _, moment, _), hour, day in zip(
        HAND, whole["hour_of_day"], whole["day_of_week"], strict=True
    ):
        assert (hour, day) == (moment.hour, moment.weekday())
    later = build_features_pandas(
        frame.iloc[9:], plan, HAND_VOCAB, history=frame.iloc[:9], pseudonym_key=KEY
    )
    assert list(later.index) == list(frame.index[9:])
    _assert_hand(later.set_index("transaction_id"), ["T10", "T11", "T12", "T13"])
    pd.testing.assert_frame_equal(later, whole.iloc[9:])


# --- generated data: Spark and pandas agree -------------------------------------------------
def _mangle_categories(frame: pd.DataFrame, columns: list[str], seed: int) -> pd.DataFrame:
    """Upper case, padding, blanks and nulls, so that normalisation has work to do."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for column in columns:
        values = out[column].astype(object)
        pick = rng.random(len(out))
        values = values.where(pick > 0.05, values.str.upper())
        values = values.where((pick <= 0.05) | (pick > 0.08), "  " + values.astype(str) + "\t")
        values = values.where((pick <= 0.08) | (pick > 0.09), None)
        values = values.where((pick <= 0.09) | (pick > 0.095), " ")
        out[column] = values
    return out


@pytest.fixture(scope="session")
def fraud_data(tmp_path_factory, fraud_spec) -> tuple[Path, pd.DataFrame]:
    """2,000 generated card transactions: unseen entry modes, null amounts, messy categories."""
    folder = tmp_path_factory.mktemp("fraud")
    raw = folder / "raw.parquet"
    generate(
        "fraud_detection",
        2000,
        11,
        raw,
        drift={"new_categories": 0.02, "missing": 0.02},
        progress=False,
    )
    frame = _mangle_categories(pd.read_parquet(raw), list(fraud_spec.features.categorical), 3)
    path = folder / "fraud.parquet"
    frame.to_parquet(path, index=False)
    return path, pd.read_parquet(path)


@pytest.fixture(scope="session")
def credit_data(tmp_path_factory, credit) -> tuple[Path, pd.DataFrame]:
    """2,000 generated loan applications stored the way the contract check stores them; their
    18 months are squeezed into 11 days (fewer date partitions to write)."""
    folder = tmp_path_factory.mktemp("credit")
    raw = folder / "raw.parquet"
    generate("credit_scoring", 2000, 5, raw, drift={"new_categories": 0.02}, progress=False)
    frame = pd.read_parquet(raw)
    start = frame["applied_at"].min()
    frame["applied_at"] = start + (frame["applied_at"] - start) / 50
    result = check_frame(credit, frame)
    assert result.accepted, result.summary()
    path = folder / "dataset.parquet"
    result.frame.to_parquet(path, index=False)
    return path, pd.read_parquet(path)


def _assert_same(spark_out: pd.DataFrame, local: pd.DataFrame, plan) -> None:
    assert list(spark_out.columns) == list(local.columns) == list(plan.output_columns)
    key = plan.id_column
    left, right = spark_out.set_index(key), local.set_index(key).loc[spark_out[key]]
    for column in plan.numeric:
        a, b = left[column].to_numpy(float), right[column].to_numpy(float)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=column)
    for column in [*plan.categorical, plan.entity_column]:
        assert (left[column].to_numpy() == right[column].to_numpy()).all(), column


@pytest.mark.parametrize("family", ["fraud", "credit"])
def test_spark_pandas_parity_on_generated_data(
    any_spark, fraud_spec, credit, fraud_data, credit_data, family
):
    spark = any_spark
    spec, (path, frame) = (fraud_spec, fraud_data) if family == "fraud" else (credit, credit_data)
    plan = feature_plan(spec, frame.columns)
    assert not plan.skipped
    nanos = [c for c in frame.columns if str(frame[c].dtype).startswith("datetime64[ns")]
    out, vocabulary = build_features_spark(
        read_dataset(spark, path, nanos), plan, pseudonym_key=KEY
    )
    assert vocabulary == learn_vocabulary_pandas(frame, plan)
    local = build_features_pandas(frame, plan, vocabulary, pseudonym_key=KEY)
    spark_out = out.toPandas()
    _assert_same(spark_out, local, plan)
    if family == "fraud":  # blanks, nulls and rare values became __missing__ / __unseen__
        categories = np.concatenate([spark_out[c].to_numpy() for c in plan.categorical])
        assert {MISSING, UNSEEN} <= set(categories)
    assert spark_out[list(plan.numeric)].notna().any().all()


def test_appending_future_rows_changes_no_past_row(spark, fraud_spec, fraud_data, tmp_path):
    path, frame = fraud_data
    plan = feature_plan(fraud_spec, frame.columns)
    vocabulary = learn_vocabulary_pandas(frame, plan)
    cut = frame["event_time"].sort_values().iloc[1500]
    past = frame[frame["event_time"] < cut]
    early, _ = build_features_spark(
        _to_spark(spark, past, tmp_path / "past.parquet"), plan, vocabulary, pseudonym_key=KEY
    )
    full, _ = build_features_spark(
        spark.read.parquet(str(path)), plan, vocabulary, pseudonym_key=KEY
    )
    early_pd, full_pd = _spark_pandas(early), _spark_pandas(full)
    pd.testing.assert_frame_equal(early_pd, full_pd.loc[early_pd.index])
    local_early = build_features_pandas(past, plan, vocabulary, pseudonym_key=KEY)
    local_full = build_features_pandas(frame, plan, vocabulary, pseudonym_key=KEY)
    pd.testing.assert_frame_equal(local_early, local_full.loc[local_early.index])


# --- categories and vocabulary --------------------------------------------------------------
def test_category_normalisation_and_vocabulary_round_trip(spark, fraud_spec, tmp_path):
    frame = _hand_frame()
    plan = dataclasses.replace(feature_plan(fraud_spec, frame.columns), min_category_count=2)
    out, vocabulary = build_features_spark(
        _to_spark(spark, frame, tmp_path / "v.parquet"), plan, pseudonym_key=KEY
    )
    # "pos" x6 (with " POS "), "ecom" x3 (with "Ecom"); "atm" and "x" are seen once: below 2.
    assert vocabulary["channel"] == ["ecom", "pos"]
    assert vocabulary == learn_vocabulary_pandas(frame, plan)
    channel = _spark_pandas(out)["channel"]
    assert channel["T02"] == "pos" and channel["T03"] == "ecom"
    assert channel["T04"] == MISSING and channel["T05"] == MISSING  # null and blank
    assert channel["T06"] == UNSEEN and channel["T10"] == UNSEEN  # "atm", "x": not learned
    stored = json.loads(json.dumps(vocabulary))  # as kept in the manifest
    again, same = build_features_spark(
        _to_spark(spark, frame, tmp_path / "w.parquet"), plan, stored, pseudonym_key=KEY
    )
    assert same == vocabulary
    local = build_features_pandas(frame, plan, stored, pseudonym_key=KEY).set_index(
        "transaction_id"
    )
    assert (local["channel"] == _spark_pandas(again)["channel"].loc[local.index]).all()
    for bad in ({**stored, "channel": ["POS"]}, {k: v for k, v in stored.items() if k != "mcc"}):
        with pytest.raises(ValueError, match="vocabulary"):
            build_features_pandas(frame, plan, bad, pseudonym_key=KEY)
        with pytest.raises(ValueError, match="vocabulary"):
            build_features_spark(
                spark.read.parquet(str(tmp_path / "w.parquet")), plan, bad, pseudonym_key=KEY
            )
    capped = dataclasses.replace(plan, min_category_count=1, max_categories=2)
    assert learn_vocabulary_pandas(frame, capped)["channel"] == ["ecom", "pos"]  # most frequent


# --- the plan -------------------------------------------------------------------------------
def test_plan_hash_and_skipped_features(fraud_spec, credit):
    columns = list(FAMILIES["fraud_detection"].schema.names)
    plan = feature_plan(fraud_spec, columns)
    assert plan.definitions_hash() == feature_plan(fraud_spec, reversed(columns)).definitions_hash()
    velocity = next(d for d in plan.definitions if isinstance(d, Velocity))
    changed = dataclasses.replace(velocity, window_seconds=velocity.window_seconds + 1)
    other = dataclasses.replace(plan, definitions=(changed, *plan.definitions[1:]))
    assert other.definitions_hash() != plan.definitions_hash()
    assert type(plan).from_dict(json.loads(plan.canonical_json())) == plan

    without = feature_plan(fraud_spec, [c for c in columns if c != "merchant_id"])
    skipped = {s.name: s.missing for s in without.skipped}
    assert skipped["card_distinct_merchants_24h"] == ("merchant_id",)
    assert skipped["merchant_amount_sum_7d"] == ("merchant_id",)
    assert not any(n.startswith("merchant_") for n in without.numeric)
    assert "card_amount_sum_7d" in without.numeric
    assert without.definitions_hash() != plan.definitions_hash()
    with pytest.raises(ValueError, match="income"):
        feature_plan(credit, [c for c in FAMILIES["credit_scoring"].schema.names if c != "income"])
    for spec in (fraud_spec, credit, load_spec(MODELS / "transaction-risk.yaml")):
        full = feature_plan(spec, FAMILIES[spec.family].schema.names)
        assert not full.skipped and len(full.numeric) > len(spec.features.numeric), spec.name
        assert set(full.protected).isdisjoint(full.features)


# --- feature sets ---------------------------------------------------------------------------
def test_build_feature_set_writes_partitions_and_manifest(any_spark, credit, credit_data, tmp_path):
    spark = any_spark
    path, frame = credit_data
    out = tmp_path / "featureset"
    identity = {
        "dataset_version": "credit-scoring-abc",
        "dataset_sha256": "ab" * 32,
        "code_version": "c0ffee",
    }
    steps: list[tuple[float, str]] = []
    manifest = build_feature_set(
        spark,
        path,
        out,
        credit,
        pseudonym_key=KEY,
        progress=lambda s, m: steps.append((s, m)),
        **identity,
    )
    assert steps[0][0] == 0.0 and steps[-1][0] == 1.0
    plan = feature_plan(credit, frame.columns)
    assert manifest.definitions_hash == plan.definitions_hash()
    assert manifest.version == featureset_version("ab" * 32, plan.definitions_hash(), "c0ffee")
    assert manifest.row_count == len(frame)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert FeatureSetManifest.from_dict(on_disk) == manifest
    assert on_disk["numeric_features"] == list(plan.numeric)
    assert on_disk["categorical_features"] == list(plan.categorical)
    assert on_disk["partition_by"] == "event_date"
    assert set(on_disk["vocabulary"]) == set(plan.categorical)
    assert on_disk["schema"]["loan_to_income"] == "double"
    assert manifest.feature_plan() == plan
    days = sorted(p.name for p in (out / "data").iterdir() if p.is_dir())
    assert days and all(re.fullmatch(r"event_date=\d{4}-\d{2}-\d{2}", d) for d in days)
    written = pd.read_parquet(out / "data")
    assert len(written) == len(frame)
    assert set(written["application_id"]) == set(frame["application_id"])
    assert not list(tmp_path.glob(".featureset*"))  # no staging left behind

    stamp = (out / "manifest.json").stat().st_mtime_ns
    again = build_feature_set(
        spark,
        path,
        out,
        credit,
        pseudonym_key=KEY,
        progress=lambda s, m: steps.append((s, m)),
        **identity,
    )
    assert again == manifest and (out / "manifest.json").stat().st_mtime_ns == stamp
    assert "already built" in steps[-1][1]


def test_entity_ids_never_leave_raw(spark, credit, credit_data, fraud_spec, tmp_path):
    path, frame = credit_data
    out = tmp_path / "fs"
    build_feature_set(
        spark,
        path,
        out,
        credit,
        dataset_version="v1",
        dataset_sha256="cd" * 32,
        code_version="x",
        pseudonym_key=KEY,
    )
    written = pd.read_parquet(out / "data")
    raw_ids = set(frame["customer_id"])
    for column in written.columns:
        if written[column].dtype == object:
            assert not raw_ids & set(written[column].dropna()), column
    assert written["customer_id"].map(lambda v: bool(HEX64.match(v))).all()
    hand = _hand_frame()
    plan = feature_plan(fraud_spec, hand.columns)
    local = build_features_pandas(hand, plan, HAND_VOCAB, pseudonym_key=KEY)
    assert not set(hand["card_id"]) & set(local["card_id"])
    assert local["card_id"].nunique() == 2
    other_key = build_features_pandas(hand, plan, HAND_VOCAB, pseudonym_key="another-key")
    assert set(other_key["card_id"]).isdisjoint(local["card_id"])


def test_family_other_without_time_gets_hash_buckets(spark, tmp_path):
    """A spec of family ``other`` with no timestamp: spec features and normalised categories
    only, partitioned by hash bucket; the entity is still pseudonymised."""
    spec = parse_spec(
        {
            "name": "card-other",
            "family": "other",
            "risk_class": "minimal",
            "owner": "tests",
            "intended_use": "tests",
            "target": "is_fraud",
            "entity_column": "card_id",
            "features": {"numeric": ["amount"], "categorical": ["channel"]},
            "data": {"id_column": "transaction_id"},
        }
    )
    frame = _hand_frame()
    path = tmp_path / "other.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    manifest = build_feature_set(
        spark,
        path,
        tmp_path / "fs",
        spec,
        dataset_version="card-other-1",
        dataset_sha256="12" * 32,
        code_version="x",
        pseudonym_key=KEY,
    )
    assert manifest.numeric_features == ["amount"] and manifest.categorical_features == ["channel"]
    assert manifest.partition_by == "bucket" and manifest.row_count == len(frame)
    written = pd.read_parquet(tmp_path / "fs" / "data")
    assert set(written.columns) == {
        "transaction_id",
        "card_id",
        "is_fraud",
        "amount",
        "channel",
        "bucket",
    }
    assert not set(frame["card_id"]) & set(written["card_id"])


def test_corrupt_input_raises_feature_build_error(spark, credit, credit_data, tmp_path):
    path, _ = credit_data
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(FeatureBuildError, match="dataset credit-scoring-bad") as caught:
        build_feature_set(
            spark,
            garbage,
            tmp_path / "a",
            credit,
            dataset_version="credit-scoring-bad",
            dataset_sha256="ef" * 32,
            code_version="x",
            pseudonym_key=KEY,
        )
    assert "garbage.parquet" in str(caught.value)
    # A valid footer over a broken first page: only Spark finds out, and says so.
    broken = tmp_path / "broken.parquet"
    data = bytearray(path.read_bytes())
    data[4:200] = bytes(range(196))
    broken.write_bytes(bytes(data))
    with pytest.raises(FeatureBuildError, match="dataset credit-scoring-broken"):
        build_feature_set(
            spark,
            broken,
            tmp_path / "b",
            credit,
            dataset_version="credit-scoring-broken",
            dataset_sha256="ef" * 32,
            code_version="x",
            pseudonym_key=KEY,
        )
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))


def test_warmup_rows_are_the_first_full_window():
    from riskops.features.warmup import drop_warmup, warmup_seconds

    plan = {
        "timestamp_column": "t",
        "definitions": [
            {"kind": "velocity", "window_seconds": 3600},
            {"kind": "velocity", "window_seconds": 7 * 86400},
            {"kind": "since_previous"},
        ],
    }
    assert warmup_seconds(plan) == 7 * 86400
    frame = pd.DataFrame({"t": pd.date_range("2026-01-01", periods=20, freq="D", tz="UTC")})
    kept, dropped = drop_warmup(frame, plan)
    assert dropped == 7 and kept["t"].min() == pd.Timestamp("2026-01-08", tz="UTC")
    assert drop_warmup(frame, {"definitions": []}) == (frame, 0)
