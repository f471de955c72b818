"""Platform records on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import threading

from riskops import ledger
from riskops.db import session_scope
from riskops.records import DatasetVersion


def test_spec_versions_are_stored_once_and_latest_wins(engine, credit_spec):
    with session_scope(engine) as session:
        _, created = ledger.register_spec(session=session, spec=credit_spec)
        _, again = ledger.register_spec(session=session, spec=credit_spec)
    assert created and not again
    changed = credit_spec.model_copy(update={"owner": "new-owner"})
    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=changed)
    with session_scope(engine) as session:
        assert ledger.current_spec(session=session, name="credit-scoring").owner == "new-owner"
        assert len(ledger.list_specs(session=session)) == 1


def test_landing_ledger_counts_sightings_once_per_content(engine):
    args = dict(model="m", sha256="a" * 64, uri="file:///x", filename="x.csv", size_bytes=3)
    results = []
    for _ in range(5):
        with session_scope(engine) as session:
            _row, first = ledger.record_landing(session=session, **args)
            results.append(first)
    assert results == [True, False, False, False, False]
    with session_scope(engine) as session:
        rows = ledger.list_landings(session=session)
        assert len(rows) == 1 and rows[0].times_seen == 5


def test_concurrent_watchers_insert_one_row(engine):
    args = dict(model="m", sha256="b" * 64, uri="file:///y", filename="y.csv", size_bytes=3)
    firsts: list[bool] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        with session_scope(engine) as session:
            firsts.append(ledger.record_landing(session=session, **args)[1])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(firsts) == [False, False, False, True]


def test_dataset_version_is_immutable(engine):
    def version(uri: str) -> DatasetVersion:
        return DatasetVersion(
            id="m-" + "c" * 16, model="m", sha256="c" * 64, uri=uri, source_uri=uri,
            row_count=10, columns=["a"], spec_hash="d" * 64,
        )  # fmt: skip

    with session_scope(engine) as session:
        ledger.add_dataset_version(session=session, version=version("file:///first"))
    with session_scope(engine) as session:
        kept = ledger.add_dataset_version(session=session, version=version("file:///second"))
        assert kept.uri == "file:///first"
        assert len(ledger.list_dataset_versions(session=session)) == 1


def test_failed_transaction_leaves_nothing(engine, credit_spec):
    try:
        with session_scope(engine) as session:
            ledger.register_spec(session=session, spec=credit_spec)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with session_scope(engine) as session:
        assert ledger.list_specs(session=session) == []


def test_first_write_through_a_savepoint_still_rolls_back(engine):
    """pysqlite used to commit on the release of a first savepoint; the whole block must undo."""
    args = dict(model="m", sha256="e" * 64, uri="file:///z", filename="z.csv", size_bytes=1)
    try:
        with session_scope(engine) as session:
            ledger.record_landing(session=session, **args)  # begin_nested inside
            raise RuntimeError("the action failed after the ledger write")
    except RuntimeError:
        pass
    with session_scope(engine) as session:
        assert ledger.list_landings(session=session) == []
