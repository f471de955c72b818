"""Online features for the scoring service equal the Spark feature build, row for row."""

from __future__ import annotations

import math
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis
from pyspark.sql import SparkSession

from riskops.features import MISSING, UNSEEN, FeaturePlan, feature_plan
from riskops.features.online import OnlineFeatureBuilder, as_epoch_us
from riskops.features.online_store import (
    EventStore,
    InProcessStore,
    OnlineStoreUnavailable,
    RedisStore,
)
from riskops.features.pandas_build import build_features_pandas, rederive
from riskops.features.session import spark_session
from riskops.features.spark_build import build_features_spark, learn_vocabulary_spark
from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.synthetic import generate

MODELS = Path(__file__).resolve().parents[1] / "models"
KEY = "test-online-pseudonym-key"
REDIS_URL = os.environ.get("RISKOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STREAMS = {  # family: (spec file, rows, seed, time compression)
    "fraud_detection": ("fraud-detection.yaml", 4000, 21, 15.0),
    "transaction_risk": ("transaction-risk.yaml", 3000, 22, 1.0),
    "credit_scoring": ("credit-scoring.yaml", 3000, 23, 1.0),
}
H_US, D_US = 3_600 * 10**6, 86_400 * 10**6


# --- fixtures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """One local[1] session for this module."""
    with spark_session("local[1]", app_name="riskops-online-tests", driver_memory="1g") as s:
        yield s


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The test Redis; skipped when unreachable outside CI, a failure in CI."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is unreachable in CI: {error}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {error}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix unique to this test; every key under it is deleted afterwards."""
    prefix = f"riskops:test:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def make_store(request: pytest.FixtureRequest) -> Callable[[str], EventStore]:
    """A factory of the store kind named by the test's ``store_kind`` parameter."""

    def make(kind: str) -> EventStore:
        if kind == "memory":
            return InProcessStore()
        prefix = request.getfixturevalue("redis_prefix")
        return RedisStore(request.getfixturevalue("redis_url"), key_prefix=prefix)

    return make


@pytest.fixture(scope="module")
def fraud_spec() -> ModelSpec:
    return load_spec(MODELS / "fraud-detection.yaml")


def _spec(family: str) -> ModelSpec:
    return load_spec(MODELS / STREAMS[family][0])


# --- generated streams ----------------------------------------------------------------------
def _inject(frame: pd.DataFrame, spec: ModelSpec, seed: int, squeeze: float) -> pd.DataFrame:
    """Make the online path work: equal timestamps (same entity and across entities), null
    entities, counterparts, times and amounts, messy categories, boundary values."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    ts, entity = spec.timestamp_column, spec.entity_column
    start = out[ts].min()
    out[ts] = (start + (out[ts] - start) / squeeze).dt.floor("us")
    n = len(out)
    if spec.family != "credit_scoring":
        order = out.sort_values(ts, kind="mergesort").index
        previous = out.loc[order].groupby(entity)[ts].shift(1)
        same = previous.notna() & (rng.random(n) < 0.06)
        out.loc[same.index[same], ts] = previous[same]  # a tie with the entity's previous row
        # Exactly one window behind the entity's previous row: on the inclusive frame bound.
        for window in (H_US, D_US):
            edge = previous.notna() & (rng.random(n) < 0.01) & ~same
            out.loc[edge.index[edge], ts] = previous[edge] + pd.Timedelta(microseconds=window)
        donors = rng.integers(0, n, n)
        cross = rng.random(n) < 0.03
        out.loc[cross, ts] = out[ts].to_numpy()[donors[cross]]  # ties across entities
        other = "merchant_id" if "merchant_id" in out else "counterparty_id"
        for column, share in ((entity, 0.01), (other, 0.01), (ts, 0.005), ("amount", 0.02)):
            out.loc[rng.random(n) < share, column] = None
        out.loc[rng.random(n) < 0.005, "amount"] = 0.0
    for column in spec.features.categorical:
        values = out[column].astype(object)
        pick = rng.random(n)
        values = values.where(pick > 0.05, values.str.upper())
        values = values.where((pick <= 0.05) | (pick > 0.08), "  " + values.astype(str) + "\t")
        values = values.where((pick <= 0.08) | (pick > 0.09), None)
        out[column] = values.where((pick <= 0.09) | (pick > 0.095), " ")
    if spec.family == "credit_scoring":
        out.loc[rng.random(n) < 0.01, "income"] = 0.0
        out.loc[rng.random(n) < 0.01, "loan_amount"] = None
        out.loc[rng.random(n) < 0.01, "debt_to_income"] = 0.5  # exactly a bucket edge
    if "account_balance" in out:
        out.loc[rng.random(n) < 0.01, "account_balance"] = 0.0  # ratio with a zero denominator
    return out


@pytest.fixture(scope="module")
def streams(tmp_path_factory, spark) -> dict[str, tuple[FeaturePlan, dict, pd.DataFrame, Any]]:
    """Per family: (plan, vocabulary, raw frame, Spark features as pandas, indexed by id)."""
    out = {}
    for family, (_, rows, seed, squeeze) in STREAMS.items():
        spec = _spec(family)
        folder = tmp_path_factory.mktemp(family)
        generate(
            family,
            rows,
            seed,
            folder / "raw.parquet",
            drift={"new_categories": 0.02, "missing": 0.02},
            progress=False,
        )
        frame = _inject(pd.read_parquet(folder / "raw.parquet"), spec, seed, squeeze)
        frame.to_parquet(folder / "stream.parquet", index=False)
        plan = feature_plan(spec, frame.columns)
        assert not plan.skipped
        df = spark.read.parquet(str(folder / "stream.parquet"))
        # As in training, the vocabulary comes from other data: here it lacks one learned value
        # per column, so that the stream has unseen categories.
        learned = learn_vocabulary_spark(df, plan)
        vocabulary = {
            c: values[:-1] if len(values) > 1 else values for c, values in learned.items()
        }
        built, _ = build_features_spark(df, plan, vocabulary, pseudonym_key=KEY)
        batch = built.toPandas().set_index(plan.id_column)
        assert len(batch) == len(frame)
        out[family] = (plan, vocabulary, frame, batch)
    return out


def _records(frame: pd.DataFrame, plan: FeaturePlan) -> list[dict[str, Any]]:
    """Rows in time order (ties in file order), as the service's validator hands them over."""
    ordered = frame.sort_values(plan.timestamp_column, kind="mergesort", na_position="last")
    records = []
    for row in ordered.to_dict("records"):
        record = {}
        for column, value in row.items():
            if isinstance(value, pd.Timestamp):
                value = value.value // 1000  # epoch microseconds (datetime64[us] has no ns)
            elif value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
                value = None
            elif isinstance(value, np.integer):
                value = int(value)
            record[column] = value
        records.append(record)
    return records


def _mismatches(plan: FeaturePlan, online: Any, batch: pd.Series, label: str) -> list[str]:
    bad = []
    for name in plan.features:
        got, want = online.features[name], batch[name]
        if name in plan.categorical:
            if got != want:
                bad.append(f"{label} {name}: online {got!r} != batch {want!r}")
        elif math.isnan(got) or pd.isna(want):
            if not (math.isnan(got) and pd.isna(want)):
                bad.append(f"{label} {name}: online {got!r} != batch {want!r}")
        elif not math.isclose(got, float(want), rel_tol=1e-9, abs_tol=0.0):
            bad.append(f"{label} {name}: online {got!r} != batch {want!r}")
    if plan.entity_column and online.entity != batch[plan.entity_column]:
        bad.append(f"{label} entity pseudonym differs")
    unseen = tuple(c for c in plan.categorical if batch[c] == UNSEEN)
    if online.unseen != unseen:
        bad.append(f"{label} unseen {online.unseen} != {unseen}")
    return bad


# --- the parity test ------------------------------------------------------------------------
@pytest.mark.parametrize("store_kind", ["memory", "redis"])
@pytest.mark.parametrize("family", ["fraud_detection", "transaction_risk"])
def test_online_replay_equals_spark_build(streams, make_store, family, store_kind):
    """Replaying a generated stream in time order through the online builder gives every
    feature of every row as the Spark build does (floats within 1e-9 relative, categories
    and pseudonyms exactly), with equal timestamps, null entities, counterparts, times and
    amounts in the stream; on the in-process store and on Redis."""
    plan, vocabulary, frame, batch = streams[family]
    store = make_store(store_kind)
    builder = OnlineFeatureBuilder(plan, vocabulary, pseudonym_key=KEY, store=store)
    bad: list[str] = []
    rows = []
    for record in _records(frame, plan):
        online = builder.compute(record)
        rows.append(online.features)
        bad += _mismatches(plan, online, batch.loc[record[plan.id_column]], record[plan.id_column])
    assert not bad, f"{len(bad)} mismatches, first: {bad[:10]}"
    # The stream exercised what it is meant to: ties, nulls, full windows, long gaps, unseen.
    got = pd.DataFrame(rows)
    label = "card" if family == "fraud_detection" else "account"
    ts = frame[plan.timestamp_column]
    assert frame.duplicated([plan.entity_column, plan.timestamp_column]).sum() > 10
    assert (ts.duplicated() & ts.notna()).sum() > 50
    timed = frame[[plan.entity_column, plan.timestamp_column]].dropna()
    bound = timed.assign(
        **{plan.timestamp_column: timed[plan.timestamp_column] + pd.Timedelta(hours=1)}
    )
    assert len(timed.merge(bound)) > 5  # rows exactly on the 1h frame bound of an earlier row
    assert got[f"{label}_txn_count_1h"].max() >= 2
    assert got[f"{label}_txn_count_7d"].max() >= 5
    assert got[f"{label}_txn_count_24h"].isna().sum() >= frame[plan.entity_column].isna().sum()
    assert (got[f"{label}_seconds_since_previous"] == 0).sum() == 0  # ties never see each other
    if family == "transaction_risk":  # gaps longer than every window and than the retention
        assert (got[f"{label}_seconds_since_previous"] > 8 * 86_400).sum() > 0
    assert any((got[c] == UNSEEN).any() for c in plan.categorical)
    assert any((got[c] == MISSING).any() for c in plan.categorical)


def test_credit_online_equals_spark_build(streams):
    """Credit scoring has stateless features only: no store needed, every row equal."""
    plan, vocabulary, frame, batch = streams["credit_scoring"]
    builder = OnlineFeatureBuilder(plan, vocabulary, pseudonym_key=KEY, store=None)
    bad: list[str] = []
    for record in _records(frame, plan):
        online = builder.compute(record)
        assert list(online.features) == list(plan.features)
        bad += _mismatches(plan, online, batch.loc[record[plan.id_column]], record[plan.id_column])
    assert not bad, f"{len(bad)} mismatches, first: {bad[:10]}"
    assert (batch["loan_to_income"].isna() & frame.set_index(plan.id_column)["income"].eq(0)).any()


# --- stateless transforms, one value at a time, against pandas_build ------------------------
_EDGE = [0.0, -0.0, 1.0, -1.0, -1.0000001, -0.9999999, 10_000.0, 9_999.999, 150_000.0, 1e300]
_EDGE += [-1e300, 1e-300, math.inf, -math.inf, math.nan, 0.1, 0.5, 1.0, 2.0, -3.0, 7]


def test_stateless_transforms_edge_cases_match_pandas(credit_spec, fraud_spec):
    """Ratio, Log1p, Bucket on zeros, signed zeros, -1, infinities, nulls, bucket edges and
    huge values; hour and day of week before the epoch, at midnight, far ahead: every value
    as pandas_build computes it."""
    credit_plan = feature_plan(credit_spec, _credit_columns())
    pairs = [(a, b) for a in _EDGE for b in _EDGE]
    frame = pd.DataFrame(
        {
            "loan_amount": [a for a, _ in pairs] + [None],
            "income": [b for _, b in pairs] + [5.0],
            "term_months": [b for _, b in pairs] + [None],
            "debt_to_income": [a for a, _ in pairs] + [None],
            "credit_utilisation": [b for _, b in pairs] + [1.0],
        }
    ).astype("float64")
    derived = credit_plan.derived
    want = rederive(frame, derived, list(frame.columns))
    builder = OnlineFeatureBuilder(credit_plan, _vocab(credit_plan), pseudonym_key=KEY, store=None)
    for position, raw in enumerate(frame.to_dict("records")):
        record = {k: (None if math.isnan(v) else v) for k, v in raw.items()}
        for name, compute in builder._stateless:
            got, expected = compute(record), want[name].iloc[position]
            if name.startswith("log_") and math.isfinite(got):
                # libm's log1p (as Spark's fdlibm, 99.97% bit-equal) vs numpy's: within an ulp
                assert math.isclose(got, expected, rel_tol=4.5e-16), (name, raw)
                continue
            assert (math.isnan(got) and math.isnan(expected)) or got == expected, (name, raw)
    moments = [
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1900, 3, 1, 12, 30, tzinfo=UTC),
        datetime(2024, 3, 4, tzinfo=UTC),  # Monday midnight
        datetime(2024, 3, 10, 23, 59, 59, 999_999, tzinfo=UTC),  # Sunday
        datetime(2199, 12, 31, 13, 0, tzinfo=UTC),
    ]
    times = pd.DataFrame({"event_time": pd.Series([*moments, None], dtype="datetime64[us, UTC]")})
    fraud_plan = feature_plan(
        fraud_spec, ["event_time", "amount", *fraud_spec.features.categorical]
    )
    scalars = [d for d in fraud_plan.derived if d.name in ("hour_of_day", "day_of_week")]
    want = rederive(times, scalars, ["event_time"])
    fraud = OnlineFeatureBuilder(fraud_plan, _vocab(fraud_plan), pseudonym_key=KEY, store=None)
    for position, moment in enumerate([*moments, None]):
        record = {"event_time": as_epoch_us(moment, "event_time")}
        row = fraud.compute(record).features
        for name in ("hour_of_day", "day_of_week"):
            got, expected = row[name], want[name].iloc[position]
            assert (math.isnan(got) and math.isnan(expected)) or got == expected, (name, moment)
        if moment is not None:
            assert (row["hour_of_day"], row["day_of_week"]) == (moment.hour, moment.weekday())


def test_categories_numbers_and_pseudonym_match_pandas():
    """Normalisation (padding, vertical tab, form feed, blanks, nulls, non-breaking space,
    accents, numbers as categories), spec numerics (int, None, NaN, inf) and the entity
    pseudonym: as pandas_build computes them."""
    spec = parse_spec(
        {
            "name": "edge-other",
            "family": "other",
            "risk_class": "minimal",
            "owner": "tests",
            "intended_use": "tests",
            "target": "y",
            "entity_column": "card_id",
            "features": {"numeric": ["x"], "categorical": ["channel"]},
            "data": {"id_column": "id"},
        }
    )
    channels = [" POS ", "pos", "Pos\t", "\x0bpos\x0c", "", "   ", None, "atm", "\xa0pos", "ÉCOM"]
    channels += [5411, "\n\r", "écom"]
    numbers = [1, None, math.nan, math.inf, -math.inf, 0, -0.0, 2**53 + 1, 3.5, None, 7, 8, 9]
    cards = ["CARD-1", "card-1", "", "ü", "CARD-1 ", "x" * 200, None, "1", "2", "3", "4", "5", "6"]
    frame = pd.DataFrame(
        {"id": range(len(channels)), "card_id": cards, "x": numbers, "channel": channels, "y": 0}
    )
    frame["channel"] = frame["channel"].astype(object)
    plan = feature_plan(spec, frame.columns)
    vocabulary = {"channel": ["pos", "écom", "5411"]}
    want = build_features_pandas(frame, plan, vocabulary, pseudonym_key=KEY)
    builder = OnlineFeatureBuilder(plan, vocabulary, pseudonym_key=KEY, store=None)
    for position, record in enumerate(frame.to_dict("records")):
        record["x"] = numbers[position]
        row = builder.compute(record)
        assert row.features["channel"] == want["channel"].iloc[position], channels[position]
        expected = want["x"].iloc[position]
        got = row.features["x"]
        assert (math.isnan(got) and math.isnan(expected)) or got == expected, numbers[position]
        assert row.entity == want["card_id"].iloc[position], cards[position]
        assert row.unseen == (("channel",) if row.features["channel"] == UNSEEN else ())
    assert builder.compute({"channel": "ATM"}).unseen == ("channel",)
    with pytest.raises(TypeError, match=r"'x'.*number"):
        builder.compute({"x": "12"})


# --- stores: order, trimming, replicas ------------------------------------------------------
T0 = int(datetime(2024, 3, 4, 10, 0, tzinfo=UTC).timestamp()) * 10**6
MIN_US = 60 * 10**6


def _txn(card: str, t_us: int, amount: float | None, merchant: str = "MER-1") -> dict[str, Any]:
    return {
        "transaction_id": f"{card}-{t_us}",
        "card_id": card,
        "merchant_id": merchant,
        "event_time": t_us,
        "amount": amount,
        "mcc": "5411",
        "channel": "pos",
        "country": "de",
        "entry_mode": "chip",
    }


def _fraud_builder(fraud_spec: ModelSpec, store: EventStore, **kwargs: Any) -> OnlineFeatureBuilder:
    plan = feature_plan(fraud_spec, list(_txn("c", 0, 1.0)))
    return OnlineFeatureBuilder(plan, _vocab(plan), pseudonym_key=KEY, store=store, **kwargs)


@pytest.mark.parametrize("store_kind", ["memory", "redis"])
def test_out_of_order_event_sees_only_strictly_earlier_events(fraud_spec, make_store, store_kind):
    """A late event sees exactly its strictly-earlier events (as the batch build gives it);
    events scored before it arrived keep the values they were given (the documented
    consistency model), and later events see it."""
    builder = _fraud_builder(fraud_spec, make_store(store_kind))
    records = [_txn("CARD-A", T0 + m * MIN_US, a) for m, a in ((10, 1.0), (20, 2.0), (30, 4.0))]
    given = [builder.compute(r).features for r in records]
    late = _txn("CARD-A", T0 + 15 * MIN_US, 8.0, merchant="MER-2")
    got = builder.compute(late).features
    assert (got["card_txn_count_1h"], got["card_amount_sum_1h"]) == (1.0, 1.0)
    assert got["card_seconds_since_previous"] == 300.0
    assert got["merchant_txn_count_1h"] == 0.0  # MER-2 had no earlier event
    final = builder.compute(_txn("CARD-A", T0 + 40 * MIN_US, None)).features
    assert final["card_txn_count_1h"] == 4.0 and final["card_amount_sum_1h"] == 15.0
    assert final["card_amount_max_1h"] == 8.0 and final["card_distinct_merchants_24h"] == 2.0
    assert final["card_seconds_since_previous"] == 600.0
    frame = pd.DataFrame([*records, late, _txn("CARD-A", T0 + 40 * MIN_US, None)])
    frame["event_time"] = pd.to_datetime(frame["event_time"], unit="us", utc=True)
    frame["amount"] = frame["amount"].astype("float64")
    batch = build_features_pandas(frame, builder.plan, _vocab(builder.plan), pseudonym_key=KEY)
    for position, online in ((3, got), (4, final)):
        for name in builder.plan.numeric:
            want = batch[name].iloc[position]
            assert (math.isnan(online[name]) and pd.isna(want)) or online[name] == want, name
    # The event at minute 20 was scored before the late one arrived: batch counts it, online
    # could not have.
    assert given[1]["card_txn_count_1h"] == 1.0 and batch["card_txn_count_1h"].iloc[1] == 2.0
    again = builder.compute(records[1], record_event=False).features
    assert again["card_txn_count_1h"] == 2.0  # a re-read now sees the late event


def test_in_process_store_trims_and_bounds_keys(fraud_spec):
    """Each key keeps only its retention (longest window + lateness) behind its newest event,
    "seconds since previous" stays exact after a gap longer than every window, and the key
    count is capped with least-recently-used eviction."""
    store = InProcessStore(max_keys=1_000)
    builder = _fraud_builder(fraud_spec, store, max_lateness_seconds=3_600)
    hourly = 8 * 24 * 3
    for step in range(hourly):  # one event every 20 minutes for 24 days
        builder.compute(_txn("CARD-A", T0 + step * 20 * MIN_US, 1.0))
        assert store.event_count() <= 2 * (7 * 24 * 3 + 3 + 1)  # card key + merchant key
    assert store.event_count() == 2 * (7 * 24 * 3 + 3 + 1)
    last = T0 + (hourly - 1) * 20 * MIN_US
    gap = builder.compute(_txn("CARD-A", last + 9 * D_US, 1.0)).features
    assert gap["card_seconds_since_previous"] == 9 * 86_400.0
    assert gap["card_txn_count_7d"] == 0.0
    assert store.event_count() == 2  # the gap trimmed everything before it
    # Later than the lateness allowance: its windows lost the trimmed history (documented),
    # but the floor keeps "seconds since previous" exact.
    late = builder.compute(_txn("CARD-A", last + D_US, 1.0), record_event=False).features
    assert late["card_seconds_since_previous"] == 86_400.0 and late["card_txn_count_7d"] == 0.0

    small = InProcessStore(max_keys=6)
    cards = _fraud_builder(fraud_spec, small)
    for number in range(10):
        cards.compute(_txn(f"CARD-{number}", T0 + number, 1.0, merchant="MER-1"))
    assert len(small) == 6 and small.evictions == 5  # 10 cards + 1 merchant, capped at 6
    again = cards.compute(_txn("CARD-0", T0 + 100, 1.0)).features
    assert again["card_txn_count_1h"] == 0.0  # its history was evicted: the documented limit
    assert again["merchant_txn_count_1h"] == 10.0  # the merchant, recently used, was kept


def test_redis_keys_are_pseudonymous_namespaced_expiring_and_trimmed(
    fraud_spec, redis_url, redis_prefix
):
    """Redis holds pseudonyms only, under <prefix>:{model}: with a TTL of retention + margin,
    members unique for equal timestamps, and trimmed like the in-process store."""
    store = RedisStore(redis_url, key_prefix=redis_prefix, ttl_margin_seconds=600)
    builder = _fraud_builder(fraud_spec, store, max_lateness_seconds=0)
    for step in range(24 * 9):  # hourly for 9 days, two events per hour at the same time
        builder.compute(_txn("CARD-RAW-ID", T0 + step * H_US, 1.0, "MER-RAW-ID"))
        builder.compute(_txn("CARD-RAW-ID", T0 + step * H_US, 2.0, "MER-RAW-ID"))
    keys = store.keys_of("fraud-detection")
    assert keys and all(k.startswith(f"{redis_prefix}:{{fraud-detection}}:") for k in keys)
    client = redis.Redis.from_url(redis_url)
    events = [k for k in keys if ":ev:" in k]
    assert len(events) == 2 and len([k for k in keys if ":meta:" in k]) == 1
    for key in events:
        members = store.members_of(key)
        assert len(members) == 2 * (7 * 24 + 1)  # 7 days back from the newest, both ties kept
        assert not any("RAW" in m for m in members)
        ttl = client.pttl(key)
        assert 7 * 86_400_000 < ttl <= 7 * 86_400_000 + 600_000
    assert not any("RAW" in k for k in keys)
    client.close()
    end = T0 + 24 * 9 * H_US
    got = builder.compute(_txn("CARD-RAW-ID", end, 1.0), record_event=False)
    assert got.features["card_txn_count_7d"] == 2 * 7 * 24.0
    assert got.entity is not None and "RAW" not in got.entity
    # The events key expires (simulated): "seconds since previous" survives in the meta key.
    card_events = next(k for k in events if ":ev:card_id:" in k)
    redis.Redis.from_url(redis_url).delete(card_events)
    expired = builder.compute(_txn("CARD-RAW-ID", end + 30 * D_US, 1.0)).features
    assert expired["card_seconds_since_previous"] == (30 * D_US + H_US) / 1e6
    assert expired["card_txn_count_7d"] == 0.0
    earlier = builder.compute(_txn("CARD-RAW-ID", end + D_US, 1.0), record_event=False).features
    assert earlier["card_seconds_since_previous"] == (D_US + H_US) / 1e6  # the floor


def test_two_redis_replicas_see_each_others_events(fraud_spec, redis_url, redis_prefix):
    """Two builders on two clients (two replicas) share history; four threads on four
    clients recording concurrently lose no event."""
    one = _fraud_builder(fraud_spec, RedisStore(redis_url, key_prefix=redis_prefix))
    two = _fraud_builder(
        fraud_spec, RedisStore(redis.Redis.from_url(redis_url), key_prefix=redis_prefix)
    )
    for step in range(3):
        one.compute(_txn("CARD-R", T0 + step * MIN_US, 1.0))
    assert two.compute(_txn("CARD-R", T0 + 3 * MIN_US, 2.0)).features["card_txn_count_1h"] == 3.0
    seen = one.compute(_txn("CARD-R", T0 + 4 * MIN_US, 4.0)).features
    assert (seen["card_txn_count_1h"], seen["card_amount_sum_1h"]) == (4.0, 5.0)
    assert seen["card_seconds_since_previous"] == 60.0

    def replica(number: int) -> None:
        builder = _fraud_builder(fraud_spec, RedisStore(redis_url, key_prefix=redis_prefix))
        for step in range(50):
            builder.compute(_txn("CARD-C", T0 + (step * 4 + number) * 10**6, 1.0))

    threads = [threading.Thread(target=replica, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = one.compute(_txn("CARD-C", T0 + 10 * MIN_US, 0.0), record_event=False).features
    assert total["card_txn_count_1h"] == 200.0 and total["card_amount_sum_1h"] == 200.0


def test_unreachable_redis_and_missing_store_say_what_to_do(fraud_spec, credit_spec):
    """An unreachable Redis names its URL (password redacted) and what to do; a plan with
    windowed features refuses to run without a store; a stateless plan needs none."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(OnlineStoreUnavailable, match=f"127.0.0.1:{port}.*start Redis") as caught:
        RedisStore(f"redis://:hunter2@127.0.0.1:{port}/0", socket_timeout=0.5)
    assert "hunter2" not in str(caught.value)
    plan = feature_plan(fraud_spec, list(_txn("c", 0, 1.0)))
    with pytest.raises(ValueError, match="online event store"):
        OnlineFeatureBuilder(plan, _vocab(plan), pseudonym_key=KEY, store=None)
    credit_plan = feature_plan(credit_spec, _credit_columns())
    row = OnlineFeatureBuilder(
        credit_plan, _vocab(credit_plan), pseudonym_key=KEY, store=None
    ).compute({"income": 50_000, "loan_amount": 10_000.0})
    assert row.features["loan_to_income"] == 0.2 and math.isnan(row.features["months_employed"])
    assert row.entity is None


# --- helpers --------------------------------------------------------------------------------
def _credit_columns() -> list[str]:
    from riskops.synthetic import FAMILIES

    return list(FAMILIES["credit_scoring"].schema.names)


def _vocab(plan: FeaturePlan) -> dict[str, list[str]]:
    return {c: ["pos", "de", "chip", "5411"] for c in plan.categorical}
