"""The decision log: exact round trip, partitions, index integrity, loud drops, no lost rows."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from riskops.lake.base import LakeError
from riskops.lake.local import LocalLake
from riskops.lake.s3 import S3Lake
from riskops.records import DecisionLogFile
from riskops.serving.decision_log import (
    Decision,
    DecisionBatch,
    DecisionLog,
    canonical_sha256,
    new_decision_id,
    read_decisions,
)
from riskops.stack.ports import free_port

MODEL = "credit-scoring"
KEY = "test-pseudonym-key"
T0 = dt.datetime(2026, 12, 1, 9, 59, 59, 999_000, tzinfo=dt.UTC)


def pseudonym(raw: str) -> str:
    return hmac.new(KEY.encode(), raw.encode(), hashlib.sha256).hexdigest()


def decision(i: int, *, model: str = MODEL, at: dt.datetime | None = None, **kw) -> Decision:
    """A varied decision: bands, reason codes, missing values and entity differ with ``i``."""
    band = ("approve", "refer", "decline")[i % 3]
    codes = [
        {"feature": "debt_ratio", "contribution": 0.125 + i, "text": "Debt is high for income"},
        {"feature": "purpose", "contribution": -0.0625, "text": "Purpose of the loan"},
    ][: i % 3]
    record = {"customer_id": f"C{i:05d}", "income": 1000.5 * i, "purpose": "car"}
    fields = {
        "decision_id": new_decision_id(),
        "decided_at": at or T0 + dt.timedelta(milliseconds=i),
        "model": model,
        "version": "7",
        "role": "champion",
        "entity": None if i % 5 == 4 else pseudonym(f"C{i:05d}"),
        "input_sha256": canonical_sha256(record),
        "features": {
            "income": 1000.5 * i,
            "debt_ratio": None if i % 4 == 0 else i / 7,
            "purpose": None if i % 6 == 0 else ("car", "home", "é-ünïcode")[i % 3],
            "n_accounts": i % 9,
        },
        "score": (i % 100) / 99,
        "band": band,
        "reason_codes": codes,
        "latency_ms": 0.25 * i,
        "endpoint": ("score", "invocations", "v2", "batch")[i % 4],
        "request_id": None if i % 2 else f"req-{i}",
    }
    fields.update(kw)
    return Decision(**fields)


class FlakyLake(LocalLake):
    """A real local lake whose first ``failures`` writes raise, as an unreachable bucket would."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures
        self.attempts = 0
        self.stored = 0

    def put_bytes(self, key: str, data: bytes) -> str:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise LakeError(f"cannot write {self.uri(key)}: connection refused (test)")
        self.stored += 1
        return super().put_bytes(key, data)


def lake_files(lake: LocalLake) -> list[str]:
    return [info.key for info in lake.list("decisions") if info.key.endswith(".parquet")]


def index_rows(engine) -> list[DecisionLogFile]:
    with Session(engine) as session:
        return list(session.exec(select(DecisionLogFile).order_by(DecisionLogFile.id)))


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")


def test_decisions_round_trip_exactly(lake, engine):
    sent = [decision(i) for i in range(60)]
    with DecisionLog(lake, engine, flush_seconds=0.05) as log:
        assert all(log.submit(d) for d in sent)
        assert log.flush(10)
        assert log.written() == {MODEL: 60} and log.depth() == 0

    frame = read_decisions(lake, engine, MODEL)
    assert len(frame) == 60
    assert str(frame["decided_at"].dtype) == "datetime64[us, UTC]"
    assert frame["score"].dtype == "float64" and frame["feature.income"].dtype == "float64"
    assert frame["feature.n_accounts"].dtype == "float64"  # ints are model inputs: float64
    by_id = {row["decision_id"]: row for row in frame.to_dict("records")}
    for d in sent:
        row = by_id[d.decision_id]
        assert row["decided_at"].to_pydatetime() == d.decided_at
        for name in ("model", "version", "role", "entity", "input_sha256", "band", "endpoint"):
            assert row[name] == getattr(d, name), name
        assert row["request_id"] == d.request_id
        assert row["score"] == d.score and row["latency_ms"] == d.latency_ms
        assert row["reason_codes"] == d.reason_codes
        for name, value in d.features.items():
            got = row[f"feature.{name}"]
            assert (got is None or got != got) if value is None else got == value, name


def test_partitioned_by_model_and_hour_across_an_hour_boundary(lake, engine):
    before = T0  # 09:59:59.999
    after = T0 + dt.timedelta(milliseconds=1)  # 10:00:00.000
    sent = [
        decision(1, at=before),
        decision(2, at=after),
        decision(3, at=after, role="shadow", version="8"),
        decision(4, at=before, model="fraud-detection"),
    ]
    with DecisionLog(lake, engine, flush_seconds=0.05) as log:
        for d in sent:
            log.submit(d)
    layout = re.compile(
        r"decisions/model=([a-z-]+)/hour=(\d{4}-\d\d-\d\dT\d\d)/(\w+)-(\w+)-[0-9a-f]{32}\.parquet"
    )
    parts = sorted(layout.fullmatch(key).groups() for key in lake_files(lake))
    assert parts == [
        (MODEL, "2026-12-01T09", "champion", "7"),
        (MODEL, "2026-12-01T10", "champion", "7"),
        (MODEL, "2026-12-01T10", "shadow", "8"),
        ("fraud-detection", "2026-12-01T09", "champion", "7"),
    ]
    hours = {(r.model, r.role, r.hour.replace(tzinfo=dt.UTC).hour) for r in index_rows(engine)}
    assert hours == {
        (MODEL, "champion", 9),
        (MODEL, "champion", 10),
        (MODEL, "shadow", 10),
        ("fraud-detection", "champion", 9),
    }
    champion = read_decisions(lake, engine, MODEL)
    assert list(champion["decision_id"]) == [sent[0].decision_id, sent[1].decision_id]
    shadow = read_decisions(lake, engine, MODEL, role="shadow")
    assert list(shadow["decision_id"]) == [sent[2].decision_id]
    assert len(read_decisions(lake, engine, MODEL, role=None)) == 3
    # since is inclusive and until exclusive, to the microsecond, across the boundary
    tens = read_decisions(lake, engine, MODEL, since=after, role=None)
    assert set(tens["decision_id"]) == {sent[1].decision_id, sent[2].decision_id}
    nines = read_decisions(lake, engine, MODEL, until=after)
    assert list(nines["decision_id"]) == [sent[0].decision_id]
    assert read_decisions(lake, engine, MODEL, version="8", role=None)["version"].tolist() == ["8"]
    assert read_decisions(lake, engine, "no-such-model").empty


def test_index_matches_the_files_and_detects_tampering(lake, engine):
    log = DecisionLog(lake, engine, batch_rows=40)
    for i in range(100):  # queued before the writer starts, so the split does not race it
        log.submit(decision(i))
    log.start()
    assert log.close(30)
    records = index_rows(engine)
    assert sorted(r.key for r in records) == sorted(lake_files(lake))  # every file, once
    # the boundary splits 100 rows into 1 (09h) and 99 (10h); 99 rows at 40 per file: 3 files
    assert sorted(r.rows for r in records) == [1, 19, 40, 40]
    for r in records:
        data = lake.get_bytes(r.key)
        assert hashlib.sha256(data).hexdigest() == r.sha256 and len(data) == r.size_bytes
        assert r.uri == lake.uri(r.key)
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == r.rows
        assert table.schema.field("features").type.num_fields == 4
        assert table.schema.field("reason_codes").type == pa.list_(
            pa.struct(
                [("feature", pa.string()), ("contribution", pa.float64()), ("text", pa.string())]
            )
        )
        times = table["decided_at"].to_pylist()
        assert min(times) == r.first_decided_at.replace(tzinfo=dt.UTC)
        assert max(times) == r.last_decided_at.replace(tzinfo=dt.UTC)
        assert (
            pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0).column(0).compression == "ZSTD"
        )

    victim = records[-1]
    rewritten = pq.read_table(io.BytesIO(lake.get_bytes(victim.key)))
    buffer = io.BytesIO()
    pq.write_table(rewritten.slice(1), buffer)  # one decision quietly removed
    lake.put_bytes(victim.key, buffer.getvalue())
    with pytest.raises(LakeError, match="does not match its index"):
        read_decisions(lake, engine, MODEL)


def test_a_full_queue_drops_loudly_and_counts_per_model(lake, engine, caplog):
    calls: list[tuple[str, int]] = []
    log = DecisionLog(lake, engine, max_queue=3, on_drop=lambda m, n: calls.append((m, n)))
    with caplog.at_level(logging.ERROR, logger="riskops.serving.decision_log"):
        accepted = [log.submit(decision(i)) for i in range(5)]
        accepted.append(log.submit(decision(9, model="fraud-detection")))
    assert accepted == [True, True, True, False, False, False]
    assert log.depth() == 3
    assert log.dropped() == {MODEL: 2, "fraud-detection": 1}
    assert calls == [(MODEL, 1), (MODEL, 1), ("fraud-detection", 1)]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    # one line per model within the rate-limit window, naming what was lost and what to do
    assert len(messages) == 2
    assert "DROPPED 1 decision(s) of model credit-scoring" in messages[0]
    assert "queue is full" in messages[0] and "raise max_queue" in messages[0]
    assert "fraud-detection" in messages[1]
    assert log.flush(10)  # before start(): written in this thread
    assert log.written() == {MODEL: 3} and log.depth() == 0
    assert log.submit(decision(7))  # room again
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="riskops.serving.decision_log"):
        assert log.close(10)  # written although start() was never called
    # the drop the rate limit kept quiet is reported at close
    assert [r.getMessage() for r in caplog.records] == [
        "decision log DROPPED 1 more decision(s) of model credit-scoring (2 in all) since its "
        "last report (the ERRORs before it say why)"
    ]
    assert log.written() == {MODEL: 4}
    with pytest.raises(RuntimeError, match="closed"):
        log.start()
    assert len(read_decisions(lake, engine, MODEL)) == 4


def test_close_writes_everything_and_a_second_close_is_harmless(lake, engine, caplog):
    log = DecisionLog(lake, engine, flush_seconds=3600).start()
    for i in range(1200):
        assert log.submit(decision(i, at=T0 + dt.timedelta(hours=1)))
    time.sleep(0.2)
    assert log.written() == {} and log.depth() == 1200  # the writer waits for an hour...
    assert log.close(30)  # ...so only close() can write them
    assert log.written() == {MODEL: 1200} and log.depth() == 0
    assert [r.rows for r in index_rows(engine)] == [1200]
    assert log.close() is True
    with caplog.at_level(logging.ERROR):
        assert log.submit(decision(0)) is False
    assert log.dropped() == {MODEL: 1}
    assert "closed" in caplog.text
    assert len(read_decisions(lake, engine, MODEL)) == 1200


def test_a_failing_lake_loses_nothing_and_writes_each_batch_once(tmp_path, engine, caplog):
    lake = FlakyLake(tmp_path / "lake", failures=3)
    log = DecisionLog(lake, engine, flush_seconds=0.05, retry_max_seconds=0.2)
    sent = [decision(i, at=T0 + dt.timedelta(hours=1)) for i in range(50)]
    for d in sent:  # all queued before the writer starts: one batch however slow the machine
        assert log.submit(d)
    with caplog.at_level(logging.ERROR, logger="riskops.serving.decision_log"), log:
        assert log.flush(10)
    assert lake.attempts == 4 and lake.stored == 1  # three refusals, then one file
    assert log.dropped() == {} and log.written() == {MODEL: 50}
    assert len(lake_files(lake)) == 1 and len(index_rows(engine)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert all("connection refused (test)" in e and "kept and retried" in e for e in errors)
    assert set(read_decisions(lake, engine, MODEL)["decision_id"]) == {d.decision_id for d in sent}


def test_rows_being_retried_count_against_the_bound(tmp_path, engine):
    lake = FlakyLake(tmp_path / "lake", failures=10**6)
    log = DecisionLog(lake, engine, max_queue=10, flush_seconds=0.01, retry_max_seconds=0.05)
    assert all(log.submit(decision(i)) for i in range(10))  # before start: one drain takes all
    log.start()
    try:
        wait_until(lambda: lake.attempts >= 2)  # the writer holds them and retries
        assert log.depth() == 10
        assert log.flush(0.2) is False  # nothing is written while the lake refuses
        assert log.submit(decision(10)) is False
        assert log.dropped() == {MODEL: 1}
        lake.failures = 0
        assert log.flush(10)
    finally:
        assert log.close(10)
    assert log.written() == {MODEL: 10} and log.depth() == 0
    assert len(lake_files(lake)) == 2  # one file per hour of the boundary


def test_close_counts_and_reports_what_it_could_not_write(tmp_path, engine, caplog):
    lake = FlakyLake(tmp_path / "lake", failures=10**6)  # the lake never comes back
    calls: list[tuple[str, int]] = []
    log = DecisionLog(
        lake, engine, on_drop=lambda m, n: calls.append((m, n)), retry_max_seconds=0.1
    )
    log.start()
    for i in range(5):
        assert log.submit(decision(i, at=T0 + dt.timedelta(hours=1)))
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="riskops.serving.decision_log"):
        assert log.close(0.5) is False
    assert time.monotonic() - started < 5
    assert lake.attempts >= 2 and lake.stored == 0
    assert log.dropped() == {MODEL: 5} and calls == [(MODEL, 5)] and log.depth() == 0
    assert "DROPPED 5 decision(s) of model credit-scoring" in caplog.text
    assert "could not be written before the decision log closed" in caplog.text
    assert log.close() is False  # the second close repeats the answer, and does nothing else
    assert calls == [(MODEL, 5)]
    assert index_rows(engine) == []


def test_a_failing_index_is_retried_without_writing_the_file_again(tmp_path, engine, caplog):
    lake = FlakyLake(tmp_path / "lake", failures=0)
    failures = {"left": 2}

    def refuse_index_insert(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO DECISION_LOG_FILE"):
            if failures["left"] > 0:
                failures["left"] -= 1
                raise ConnectionError("platform DB unreachable (test)")

    event.listen(engine, "before_cursor_execute", refuse_index_insert)
    try:
        at = T0 + dt.timedelta(hours=1)
        with (
            caplog.at_level(logging.ERROR),
            DecisionLog(lake, engine, flush_seconds=0.05, retry_max_seconds=0.2) as log,
        ):
            for i in range(20):
                log.submit(decision(i, at=at))
            assert log.flush(10)
    finally:
        event.remove(engine, "before_cursor_execute", refuse_index_insert)
    assert failures["left"] == 0 and "platform DB unreachable (test)" in caplog.text
    assert lake.stored == 1 and len(lake_files(lake)) == 1  # the file was not rewritten
    [record] = index_rows(engine)
    assert record.key == lake_files(lake)[0] and record.rows == 20
    assert hashlib.sha256(lake.get_bytes(record.key)).hexdigest() == record.sha256


def test_concurrent_submitters_lose_and_duplicate_nothing(lake, engine):
    ids: list[list[str]] = [[] for _ in range(4)]

    def produce(n: int) -> None:
        for i in range(500):
            d = decision(i, at=T0 + dt.timedelta(hours=1, seconds=n))
            assert log.submit(d)
            ids[n].append(d.decision_id)

    with DecisionLog(lake, engine, batch_rows=300, flush_seconds=0.02) as log:
        threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    frame = read_decisions(lake, engine, MODEL)
    assert len(frame) == 2000 and frame["decision_id"].is_unique
    assert set(frame["decision_id"]) == {i for chunk in ids for i in chunk}
    assert sum(r.rows for r in index_rows(engine)) == 2000


RAW_IDS = ["4111111111111111", "CUST-00042", "A" * 64, pseudonym("x")[:63], pseudonym("x") + "0"]


@pytest.mark.parametrize("raw", RAW_IDS, ids=["pan", "customer", "upper", "short", "long"])
def test_a_raw_id_never_enters_the_log(raw):
    with pytest.raises(ValueError, match="entity must be the HMAC-SHA256 pseudonym"):
        decision(1, entity=raw)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decided_at": dt.datetime(2026, 12, 1, 10)}, "timezone-aware"),
        ({"score": 1.5}, "probability"),
        ({"score": float("nan")}, "probability"),
        ({"band": "maybe"}, "band"),
        ({"role": "challenger"}, "role"),
        ({"decision_id": "not-a-uuid"}, "decision_id"),
        ({"input_sha256": "abc"}, "input_sha256"),
        ({"features": {"flag": True}}, "feature 'flag'"),
        ({"reason_codes": [{"feature": "x", "contribution": 1.0}]}, "reason code"),
        ({"version": "7/../../x"}, "version"),
        ({"latency_ms": -1.0}, "latency_ms"),
    ],
)
def test_a_decision_refuses_what_does_not_belong_in_the_record(change, message):
    with pytest.raises(ValueError, match=message):
        decision(1, **change)


def test_a_decision_is_immutable_and_normalised_to_utc():
    paris = dt.timezone(dt.timedelta(hours=1))
    features = {"income": 1.0}
    d = decision(1, decided_at=dt.datetime(2026, 12, 1, 11, 30, tzinfo=paris), features=features)
    assert d.decided_at == dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC)
    assert d.decided_at.tzinfo is dt.UTC
    features["income"] = 2.0  # the caller's dict is not the logged one
    assert d.features == {"income": 1.0}
    with pytest.raises(AttributeError):
        d.score = 0.0  # type: ignore[misc]
    assert (
        canonical_sha256({"b": 1, "a": "é"})
        == hashlib.sha256('{"a":"é","b":1}'.encode()).hexdigest()
    )


def test_a_feature_whose_type_changes_is_kept_as_text(lake, engine, caplog):
    at = T0 + dt.timedelta(hours=1)
    numbers = decision(1, at=T0, features={"purpose": 3.5})  # 09h file: a number
    words = decision(2, at=at, features={"purpose": "car"})  # 10h file: text
    mixed = [
        decision(3, at=at + dt.timedelta(seconds=1), features={"grade": 2.0}),
        decision(4, at=at + dt.timedelta(seconds=2), features={"grade": "B"}),
    ]
    log = DecisionLog(lake, engine)
    for d in [numbers, words, *mixed]:
        log.submit(d)
    with caplog.at_level(logging.WARNING):
        assert log.close(10)
        frame = read_decisions(lake, engine, MODEL)
    assert frame["feature.purpose"].tolist() == ["3.5", "car", None, None]
    assert frame["feature.grade"].tolist() == [None, None, "2.0", "B"]
    assert "'grade' has numbers and text in one batch" in caplog.text
    assert "['feature.purpose'] differ in type between files" in caplog.text


def test_numpy_floats_are_accepted_and_stored_as_float64(lake, engine):
    np = pytest.importorskip("numpy")
    d = decision(1, features={"income": np.float64(1234.5), "n": np.float32(2.0).item()})
    with DecisionLog(lake, engine) as log:
        log.submit(d)
    frame = read_decisions(lake, engine, MODEL)
    assert frame["feature.income"].tolist() == [1234.5] and frame["feature.n"].tolist() == [2.0]
    with pytest.raises(ValueError, match="feature 'n'"):
        decision(1, features={"n": np.int64(3)})  # an integer type the record does not take


@pytest.fixture(scope="module")
def s3_lake() -> Iterator[S3Lake]:
    """An S3 lake on moto's S3 API over HTTP (the production backend)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket="riskops-decisions")
        yield S3Lake(client, "riskops-decisions", "lake")
    finally:
        server.stop()


@pytest.mark.s3
def test_the_log_round_trips_through_s3(s3_lake, engine):
    sent = [decision(i) for i in range(30)]
    with DecisionLog(s3_lake, engine, flush_seconds=0.05) as log:
        for d in sent:
            log.submit(d)
    records = index_rows(engine)
    assert {r.uri.split("/decisions/")[0] for r in records} == {"s3://riskops-decisions/lake"}
    for r in records:
        assert hashlib.sha256(s3_lake.get_bytes(r.key)).hexdigest() == r.sha256
    frame = read_decisions(s3_lake, engine, MODEL)
    assert list(frame["decision_id"]) == [d.decision_id for d in sent]
    assert frame["reason_codes"].tolist() == [d.reason_codes for d in sent]


def test_the_platform_pseudonym_is_accepted_and_logged_as_it_is(lake, engine):
    import pandas as pd

    from riskops.features.pandas_build import pseudonymise

    [entity] = pseudonymise(pd.Series(["C00042"]), KEY).tolist()
    assert entity == pseudonym("C00042")  # the helper above is the feature build's HMAC
    with DecisionLog(lake, engine) as log:
        log.submit(decision(42, entity=entity))
    frame = read_decisions(lake, engine, MODEL)
    assert frame["entity"].tolist() == [entity]
    table = pq.read_table(io.BytesIO(lake.get_bytes(index_rows(engine)[0].key)))
    assert "C00042" not in repr(table.to_pylist())  # the raw id is in no value of the file


def batch_of(decisions: list[Decision]) -> DecisionBatch:
    """One request's decisions as the service hands them over (shared fields from the first)."""
    d = decisions[0]
    return DecisionBatch(
        model=d.model, version=d.version, role=d.role, decided_at=d.decided_at,
        decision_ids=[x.decision_id for x in decisions], entities=[x.entity for x in decisions],
        input_sha256=[x.input_sha256 for x in decisions],
        features=[x.features for x in decisions], scores=[x.score for x in decisions],
        bands=[x.band for x in decisions], reason_codes=[x.reason_codes for x in decisions],
        latency_ms=d.latency_ms, endpoint=d.endpoint, request_id=d.request_id,
    )  # fmt: skip


def test_request_batches_over_many_chunks_round_trip_exactly(lake, engine):
    # 150 requests of 1-3 decisions: more than two encoding chunks, a feature that is all
    # null in some requests and absent from others, NaN as missing.
    sent, requests = [], []
    for r in range(150):
        group = [decision(3 * r + j, at=T0 - dt.timedelta(minutes=30)) for j in range(r % 3 + 1)]
        if r % 10 == 0:
            group = [
                decision(3 * r + j, at=group[0].decided_at, features={"income": float("nan")})
                for j in range(len(group))
            ]
        sent += [(d, group[0]) for d in group]  # shared fields come from the request
        requests.append(batch_of(group))
    log = DecisionLog(lake, engine)
    for request in requests:
        assert log.submit(request)
    assert log.depth() == len(sent)
    assert log.close(10) and log.written() == {MODEL: len(sent)}
    frame = read_decisions(lake, engine, MODEL).set_index("decision_id")
    assert len(index_rows(engine)) == 1 and len(frame) == len(sent)
    for d, first in sent:
        row = frame.loc[d.decision_id]
        income, logged = d.features["income"], row["feature.income"]
        assert pd.isna(logged) if math.isnan(income) else logged == income
        assert row["feature.purpose"] == d.features.get("purpose")
        assert row["reason_codes"] == d.reason_codes and row["score"] == d.score
        assert row["latency_ms"] == first.latency_ms and row["endpoint"] == first.endpoint


def test_a_raw_id_in_a_request_batch_is_refused_on_the_request_path(lake, engine):
    good = [decision(i) for i in range(3)]
    fields = {f: getattr(batch_of(good), f) for f in DecisionBatch.__dataclass_fields__}
    with pytest.raises(ValueError, match="decision 1: entity must be the HMAC-SHA256"):
        DecisionBatch(**{**fields, "entities": [good[0].entity, "CUST-00042", None]})
    with pytest.raises(ValueError, match="same number"):
        DecisionBatch(**{**fields, "scores": [0.5]})
    with pytest.raises(ValueError, match="model must be"):
        DecisionBatch(**{**fields, "model": "Not A Model"})
    log = DecisionLog(lake, engine)
    assert log.depth() == 0


def test_raw_request_fields_are_kept_by_name_and_an_id_beside_them_never(lake, engine):
    # A version with a feature plan: the writer keeps the request's raw number and category
    # fields it is told to (``input_fields``), across chunks; the id in the same record is not.
    fields = ("income", "purpose")
    requests, sent = [], []
    for r in range(130):
        group = [decision(2 * r + j, at=T0 - dt.timedelta(minutes=20)) for j in range(r % 2 + 1)]
        records = [{"customer_id": f"C{2 * r + j:05d}", "income": 10.5 * r + j,
                    "purpose": " Car " if r % 4 else None} for j in range(len(group))]  # fmt: skip
        full = batch_of(group)
        fields_of = {f: getattr(full, f) for f in DecisionBatch.__dataclass_fields__}
        requests.append(DecisionBatch(**{**fields_of, "inputs": records, "input_fields": fields}))
        sent += list(zip(group, records, strict=True))
    plain = batch_of([decision(999, at=T0 - dt.timedelta(minutes=20))])  # no plan: no inputs
    log = DecisionLog(lake, engine)
    for request in [*requests, plain]:
        assert log.submit(request)
    assert log.close(10)
    frame = read_decisions(lake, engine, MODEL).set_index("decision_id")
    assert {c for c in frame.columns if c.startswith("input.")} == {"input.income", "input.purpose"}
    assert not [c for c in frame.columns if "customer_id" in c]
    for d, record in sent:
        row = frame.loc[d.decision_id]
        assert row["input.income"] == record["income"] and row["has_inputs"]
        assert row["input.purpose"] == record["purpose"] or (
            record["purpose"] is None and pd.isna(row["input.purpose"])
        )
    assert pd.isna(frame.loc[plain.decision_ids[0], "input.income"])
    with pytest.raises(ValueError, match="same number"):
        DecisionBatch(**{**fields_of, "inputs": records[:1] * 5, "input_fields": fields})


def test_only_declared_feature_columns_may_be_kept_raw(all_specs):
    # A field whose kind was inferred as a number (a time the spec does not name as its
    # timestamp, an id used only by a derived feature) is not a declared feature: not kept.
    from riskops.serving.loader import raw_input_fields
    from riskops.serving.schema import Field, RequestSchema

    spec = all_specs["fraud-detection"]
    schema = RequestSchema(spec.name, [
        Field("amount", "number", True, True), Field("mcc", "category", True, True),
        Field("event_time", "number", True, True), Field("card_id", "category", True, True),
        Field("merchant_id", "number", True, True), Field("channel", "id", True, True),
    ])  # fmt: skip
    assert raw_input_fields(schema, spec) == ("amount", "mcc")


def test_reasons_owed_by_a_request_are_filled_in_before_the_write_and_a_failure_says_so(
    lake, engine, caplog
):
    # MLflow/V2 answers leave their reasons to the writer (served.DeferredReasons). A working
    # explainer fills them in; a failing one must neither hold the log up nor leave a decline
    # silently without reasons: the record carries a reason code saying they are unavailable.
    from types import SimpleNamespace

    import numpy as np

    from riskops.serving.reasons import Reason
    from riskops.serving.served import UNAVAILABLE, DeferredReasons

    def served(fail: bool) -> SimpleNamespace:
        def contributions(matrix):
            if fail:
                raise RuntimeError("tables gone")
            return matrix * 2.0

        return SimpleNamespace(
            name=MODEL, version="7", engine=SimpleNamespace(contributions=contributions),
            reasons=lambda row, features: [Reason("income", float(row[0]), "Income is low")],
        )  # fmt: skip

    batches = []
    for n, fail in ((0, False), (1, True)):
        group = [decision(10 * n + j, at=T0 - dt.timedelta(minutes=10)) for j in range(2)]
        fields = {f: getattr(batch_of(group), f) for f in DecisionBatch.__dataclass_fields__}
        owed = DeferredReasons(served(fail), [1], np.array([[0.25 + n]]), [{"income": 1.0}])
        batches.append(DecisionBatch(**{**fields, "reason_codes": [[], []], "deferred": owed}))
    log = DecisionLog(lake, engine)
    for batch in batches:
        assert log.submit(batch)
    with caplog.at_level("ERROR"):
        assert log.close(10) and log.written() == {MODEL: 4}
    frame = read_decisions(lake, engine, MODEL).set_index("decision_id")
    good, bad = batches
    assert frame.loc[good.decision_ids[0], "reason_codes"] == []  # nothing owed for row 0
    assert frame.loc[good.decision_ids[1], "reason_codes"] == [
        {"feature": "income", "contribution": 0.5, "text": "Income is low"}
    ]
    (code,) = frame.loc[bad.decision_ids[1], "reason_codes"]
    assert code["feature"] == UNAVAILABLE and "RuntimeError" in code["text"]
    assert "reason codes of 1 credit-scoring v7 decision(s) could not be computed" in caplog.text
