"""The decision log written by a child process: same records, same bounds, no silent loss.

The service's default writer (``RISKOPS_SCORING_DECISION_LOG_WRITER=process``). Real child
processes (fresh interpreters), a real local lake and the suite's database; the deferred
reason codes the child computes are checked end to end in test_serving.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from riskops.db import make_engine
from riskops.lake.local import LocalLake
from riskops.serving.decision_log import DecisionLog, read_decisions
from riskops.serving.decision_process import ProcessDecisionLog, decision_log_for, open_sinks
from riskops.settings import ScoringSettings
from tests.test_decision_log import MODEL, FlakyLake, decision, wait_until


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For the tests where the backend makes no difference: one backend, half the run time
    (the round trip and the replacement run on PostgreSQL too)."""
    return f"sqlite:///{tmp_path / 'writer.db'}"


def sinks(root: Path, url: str):
    return partial(open_sinks, partial(LocalLake, root), url)


def failing_sinks(root: Path, url: str, failures: int):
    """A lake whose first ``failures`` writes fail (opened in the child)."""
    return partial(open_sinks, partial(FlakyLake, root, failures), url)


def test_process_log_writes_what_the_thread_log_writes(tmp_path, database_url, engine):
    sent = [decision(i) for i in range(120)]
    lake = LocalLake(tmp_path / "lake")
    with ProcessDecisionLog(
        sinks(tmp_path / "lake", database_url), flush_seconds=0.05,
        send_requests=7,
    ) as log:  # fmt: skip
        assert all(log.submit(d) for d in sent)
        assert log.flush(30)
        assert log.written() == {MODEL: 120} and log.depth() == 0 and log.dropped() == {}
        child = log.pid
        assert child is not None and child != os.getpid()
    assert log.close() is True and log.pid is None
    found = read_decisions(lake, engine, MODEL)
    assert len(found) == 120
    by_id = found.set_index("decision_id")
    for d in sent:  # every field as the thread writer stores it
        row = by_id.loc[d.decision_id]
        assert row["score"] == d.score and row["band"] == d.band
        assert row["reason_codes"] == d.reason_codes
        assert row["feature.income"] == d.features["income"]
    other = tmp_path / "thread"
    with DecisionLog(LocalLake(other / "lake"), make_engine(f"sqlite:///{other}/db.sqlite")) as t:
        for d in sent:
            t.submit(d)
    theirs = read_decisions(LocalLake(other / "lake"), make_engine(f"sqlite:///{other}/db.sqlite"),
                            MODEL)  # fmt: skip
    assert sorted(theirs.columns) == sorted(found.columns)


def test_a_quiet_service_is_written_within_the_linger(tmp_path, sqlite_url):
    # Fewer requests than one send: the sender thread packs them after linger_seconds.
    log = ProcessDecisionLog(
        sinks(tmp_path / "lake", sqlite_url), flush_seconds=0.05,
        linger_seconds=0.05,
    ).start()  # fmt: skip
    try:
        assert log.submit(decision(1)) and log.submit(decision(2))
        wait_until(lambda: log.written() == {MODEL: 2}, timeout=60)
        assert log.depth() == 0
    finally:
        assert log.close()


def test_a_killed_writer_is_replaced_and_its_rows_counted_dropped(tmp_path, sqlite_url):
    drops: list[tuple[str, int]] = []
    # The child's lake fails its first 10,000 writes: what it receives stays in its memory.
    log = ProcessDecisionLog(
        failing_sinks(tmp_path / "lake", sqlite_url, 10_000), flush_seconds=0.05,
        retry_max_seconds=0.1, send_requests=1, on_drop=lambda m, n: drops.append((m, n)),
    ).start()  # fmt: skip
    try:
        for i in range(25):
            assert log.submit(decision(i))
        wait_until(lambda: log.pid is not None, timeout=30)
        first = log.pid
        time.sleep(1.0)  # the rows reach the child
        assert log.depth() == 25 and not log.flush(0.5)  # stuck on the lake: not written
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: log.restarts == 1 and log.pid not in (None, first), timeout=60)
        # Nothing lost silently: the 25 the dead child held are dropped, counted and reported.
        assert log.dropped() == {MODEL: 25} and drops == [(MODEL, 25)]
        assert log.depth() == 0
    finally:
        log.close(timeout=0.5)


def test_a_replacement_writer_writes_what_follows(tmp_path, database_url, engine):
    log = ProcessDecisionLog(
        sinks(tmp_path / "lake", database_url), flush_seconds=0.05,
        send_requests=1,
    ).start()  # fmt: skip
    try:
        for i in range(10):
            log.submit(decision(i))
        assert log.flush(30) and log.written() == {MODEL: 10}
        os.kill(log.pid, signal.SIGKILL)
        wait_until(lambda: log.restarts == 1 and log.pid is not None, timeout=60)
        for i in range(10, 30):
            log.submit(decision(i))
        assert log.flush(30)
        assert log.written() == {MODEL: 30} and log.dropped() == {}
    finally:
        assert log.close()
    assert len(read_decisions(LocalLake(tmp_path / "lake"), engine, MODEL)) == 30


def test_the_bound_counts_rows_in_the_child_and_close_reports_the_loss(tmp_path, sqlite_url):
    drops: list[tuple[str, int]] = []
    log = ProcessDecisionLog(
        failing_sinks(tmp_path / "lake", sqlite_url, 10_000), max_queue=10,
        flush_seconds=0.05, retry_max_seconds=0.1, send_requests=1,
        on_drop=lambda m, n: drops.append((m, n)),
    ).start()  # fmt: skip
    assert all(log.submit(decision(i)) for i in range(10))
    time.sleep(1.0)  # in the child now, still unwritten: the bound still holds them
    assert log.submit(decision(10)) is False
    assert log.dropped() == {MODEL: 1}
    assert log.close(timeout=0.5) is False  # the lake never came back: the ten are lost
    assert log.dropped() == {MODEL: 11} and sum(n for _, n in drops) == 11
    assert log.depth() == 0 and log.submit(decision(11)) is False


def test_signals_to_the_process_group_do_not_kill_the_writer(tmp_path, sqlite_url):
    log = ProcessDecisionLog(sinks(tmp_path / "lake", sqlite_url), flush_seconds=0.05).start()
    try:
        log.submit(decision(1))
        assert log.flush(30)
        child = log.pid
        os.kill(child, signal.SIGTERM)
        os.kill(child, signal.SIGINT)
        time.sleep(0.5)
        log.submit(decision(2))
        assert log.flush(30) and log.pid == child and log.restarts == 0
    finally:
        assert log.close()


def test_a_failing_opener_is_retried_in_the_child(tmp_path, sqlite_url):
    # The database is not there at first (a path whose parent is a file); it is waited for.
    blocker = tmp_path / "not-yet"
    blocker.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocker}/db.sqlite"
    log = ProcessDecisionLog(sinks(tmp_path / "lake", url), flush_seconds=0.05)
    log.start()
    try:
        log.submit(decision(1))
        assert not log.flush(1.0)
        blocker.unlink()
        assert log.flush(60) and log.written() == {MODEL: 1}
    finally:
        assert log.close()


@pytest.mark.parametrize("bad", [0, -1])
def test_settings_are_checked(tmp_path, bad):
    with pytest.raises(ValueError, match="must be >= 1"):
        ProcessDecisionLog(sinks(tmp_path, "sqlite://"), send_requests=bad)


def test_the_writer_runs_nicer_than_the_service(tmp_path, sqlite_url):
    log = ProcessDecisionLog(sinks(tmp_path / "lake", sqlite_url), nice=7).start()
    try:
        log.submit(decision(1))
        assert log.flush(30)
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, log.pid) == min(19, mine + 7)
    finally:
        assert log.close()
    with pytest.raises(ValueError, match="nice must be in"):
        ProcessDecisionLog(sinks(tmp_path, "sqlite://"), nice=20)


def test_the_service_writes_in_a_process_unless_the_sinks_cannot_be_reopened(
    tmp_path, sqlite_url, caplog
):
    settings = ScoringSettings()
    assert settings.decision_log_writer == "process"
    lake = LocalLake(tmp_path / "lake")
    chosen = decision_log_for(settings, lake, make_engine(sqlite_url), on_drop=lambda m, n: None)
    assert isinstance(chosen, ProcessDecisionLog)
    memory = decision_log_for(settings, lake, make_engine("sqlite://"), on_drop=lambda m, n: None)
    assert isinstance(memory, DecisionLog)
    assert "cannot be opened in a writer process" in caplog.text
    threaded = decision_log_for(
        ScoringSettings(decision_log_writer="thread"), lake, make_engine(sqlite_url),
        on_drop=lambda m, n: None,
    )  # fmt: skip
    assert type(threaded) is DecisionLog


def test_a_writer_killed_while_the_log_closes_is_written_off(tmp_path, sqlite_url):
    drops: list[tuple[str, int]] = []
    log = ProcessDecisionLog(
        failing_sinks(tmp_path / "lake", sqlite_url, 10_000), flush_seconds=0.05,
        retry_max_seconds=0.1, send_requests=1, on_drop=lambda m, n: drops.append((m, n)),
    ).start()  # fmt: skip
    for i in range(5):
        assert log.submit(decision(i))
    wait_until(lambda: log.pid is not None, timeout=30)
    time.sleep(1.0)  # in the child, unwritten (its lake fails)
    child = log.pid
    answer: list[bool] = []
    closing = threading.Thread(target=lambda: answer.append(log.close(timeout=20)))
    closing.start()
    time.sleep(0.5)
    os.kill(child, signal.SIGKILL)
    closing.join(30)
    assert answer == [False]
    assert log.dropped() == {MODEL: 5} and sum(n for _, n in drops) == 5
    assert log.depth() == 0 and log.restarts == 0


def test_a_writer_that_cannot_start_is_started_again(tmp_path, sqlite_url, monkeypatch):
    real = subprocess.Popen
    calls: list[int] = []

    def popen(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(24, "Too many open files (test)")
        return real(*args, **kwargs)

    monkeypatch.setattr("riskops.serving.decision_process.subprocess.Popen", popen)
    log = ProcessDecisionLog(sinks(tmp_path / "lake", sqlite_url), flush_seconds=0.05)
    log.start()  # does not raise: the decisions wait in memory for the writer
    try:
        assert log.submit(decision(1))
        wait_until(lambda: log.pid is not None, timeout=30)
        assert log.flush(30) and log.written() == {MODEL: 1} and len(calls) == 2
    finally:
        assert log.close()
