"""Spark Connect: the remote setting, the client session, progress and cancellation on a Connect
server, and the stack's own Connect server as a managed process (`up`, `status`, `down`)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil
import pytest
from pydantic import ValidationError
from pyspark.sql import functions as F

from riskops.features.connect_server import server_env
from riskops.features.session import (
    CONNECT_MODE_FLAG,
    SparkConnectUnreachableError,
    is_connect,
    session_conf,
    spark_session,
)
from riskops.features.tracking import run_tracked
from riskops.settings import SparkSettings, load_settings
from riskops.stack import local, processes
from riskops.stack.environment import stack_env
from riskops.stack.ports import PortInUseError, free_port


def test_remote_setting_accepts_only_connect_urls(monkeypatch):
    monkeypatch.setenv("RISKOPS_SPARK_REMOTE", "sc://spark-connect.riskops.svc:15002")
    assert SparkSettings().remote == "sc://spark-connect.riskops.svc:15002"
    assert not SparkSettings().runs_local_connect()  # a remote is used, none is started
    monkeypatch.setenv("RISKOPS_SPARK_REMOTE", "spark://master:7077")
    with pytest.raises(ValidationError, match="sc://host:port"):
        SparkSettings()
    monkeypatch.setenv("RISKOPS_SPARK_REMOTE", "")
    assert SparkSettings().remote is None and SparkSettings().runs_local_connect()


def test_a_remote_session_gets_runtime_settings_only():
    local_conf = session_conf("local[2]", driver_memory="3g")
    remote_conf = session_conf("", driver_memory="3g", remote=True)
    assert local_conf["spark.driver.memory"] == "3g" and "spark.driver.memory" not in remote_conf
    assert all(key.startswith("spark.sql.") for key in remote_conf)
    assert remote_conf["spark.sql.session.timeZone"] == "UTC"


def test_an_unreachable_server_fails_fast_naming_the_url_and_the_setting():
    url = f"sc://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    expected = pytest.raises(SparkConnectUnreachableError, match=rf"{url}.*RISKOPS_SPARK_REMOTE")
    with expected, spark_session(remote=url):
        pass
    assert time.monotonic() - started < 5  # not the gRPC client's minutes of retries
    assert CONNECT_MODE_FLAG not in os.environ
    with pytest.raises(ValueError, match="sc://host:port"), spark_session(remote="sc://"):
        pass


def test_a_connect_session_is_a_client_and_switches_the_mode_only_while_open(spark_connect_url):
    assert CONNECT_MODE_FLAG not in os.environ
    with spark_session(remote=spark_connect_url) as spark:
        assert is_connect(spark) and os.environ[CONNECT_MODE_FLAG] == "1"
        assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
        assert spark.range(10).select(F.sum("id")).first()[0] == 45
        with pytest.raises(Exception, match=r"spark\.driver\.memory"):
            spark.conf.set("spark.driver.memory", "8g")  # the server's, not the client's
    assert CONNECT_MODE_FLAG not in os.environ  # a local session in this process still works


def test_a_static_setting_asked_of_a_remote_session_is_refused_by_name(spark_connect_url):
    refused = pytest.raises(Exception, match=r"spark\.executor\.memory")
    with refused, spark_session(remote=spark_connect_url, conf={"spark.executor.memory": "2g"}):
        pass


def _slow_action(spark, seconds: float = 0.4):
    """A count over 8 partitions (one batch each) that sleeps ``seconds`` per partition."""

    def slow(batches):
        for batch in batches:
            time.sleep(seconds)
            yield batch

    frame = spark.range(0, 8000, numPartitions=8)
    return lambda: frame.mapInPandas(slow, frame.schema).groupBy().count().first()[0]


def test_run_tracked_reports_connect_progress_and_raises_its_errors(spark_connect_url):
    with spark_session(remote=spark_connect_url) as spark:
        reports: list[tuple[float, str]] = []
        count = run_tracked(
            spark, _slow_action(spark), lambda s, m: reports.append((s, m)),
            start=0.2, end=0.6, message="slow job", stages=2, every=0.3,
        )  # fmt: skip
        assert count == 8000
        shares = [s for s, _ in reports]
        assert reports, "no progress was reported from the Connect server's stages"
        assert shares == sorted(shares) and all(0.2 < s <= 0.6 for s in shares)
        assert all(m.startswith("slow job: ") and m.endswith("of tasks done") for _, m in reports)
        assert not spark.getTags()  # the operation tag went with the helper thread

        def broken() -> None:
            spark.sql("SELECT * FROM no_such_table_anywhere").collect()

        with pytest.raises(Exception, match="no_such_table_anywhere"):
            run_tracked(spark, broken, lambda s, m: None, start=0, end=1, message="x")


def test_an_interrupted_action_is_cancelled_on_the_server(spark_connect_url):
    with spark_session(remote=spark_connect_url) as spark:
        interrupted: list[tuple[float, float]] = []

        def report(share: float, message: str) -> None:
            interrupted.append((share, time.monotonic()))
            raise KeyboardInterrupt  # what Ctrl-C or a cancelled flow run does

        with pytest.raises(KeyboardInterrupt):
            run_tracked(
                spark, _slow_action(spark, 1.0), report, start=0, end=1, message="m", every=0.3
            )
        ((share, at),) = interrupted
        # 8 partitions x 1 s on the server's one core: at most one had finished when the
        # interrupt came, so 6 s or more were left; run_tracked waits for the cancelled action
        assert share <= 0.25 and time.monotonic() - at < 2.0
        assert spark.range(3).count() == 3  # the session is still usable


def _stack_settings(home: Path, monkeypatch: pytest.MonkeyPatch, **extra: str):
    for key in list(os.environ):
        if key.startswith("RISKOPS_") and key != "RISKOPS_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("RISKOPS_HOME", str(home))
    monkeypatch.setenv("RISKOPS_SPARK_CONNECT_PORT", str(free_port()))
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_flow_runs_are_pointed_at_the_stacks_server_unless_switched_off(tmp_path, monkeypatch):
    settings = _stack_settings(tmp_path / "home", monkeypatch)
    port = settings.spark.connect_port
    assert stack_env(settings)["RISKOPS_SPARK_REMOTE"] == f"sc://127.0.0.1:{port}"
    argv = local._specs(settings)["spark-connect"].argv
    assert argv[0].endswith("bin/spark-submit")  # foreground: its pid is the JVM's
    assert "spark.connect.grpc.binding.address=127.0.0.1" in argv
    assert "spark.driver.bindAddress=127.0.0.1" in argv
    assert f"spark.connect.grpc.binding.port={port}" in argv
    assert "spark.log.level=WARN" in argv  # INFO would log plans with the pseudonym's pads
    env = local._specs(settings)["spark-connect"].env
    assert env["SPARK_LOG_DIR"] == str(settings.home_dir / "logs" / "spark")

    off = _stack_settings(tmp_path / "off", monkeypatch, RISKOPS_SPARK_CONNECT_SERVER="false")
    assert "RISKOPS_SPARK_REMOTE" not in stack_env(off)
    assert "spark-connect" not in {s.name for s in local.status(off)}
    cluster = "sc://spark-connect.riskops.svc:15002"
    far = _stack_settings(tmp_path / "far", monkeypatch, RISKOPS_SPARK_REMOTE=cluster)
    assert stack_env(far)["RISKOPS_SPARK_REMOTE"] == cluster


def test_server_env_lets_python_workers_import_this_riskops(tmp_path):
    env = server_env({"PYTHONPATH": "/elsewhere", "SPARK_CONNECT_MODE_ENABLED": "1"}, tmp_path)
    root = str(Path(local.__file__).resolve().parents[2])
    assert env["PYTHONPATH"].split(os.pathsep) == [root, "/elsewhere"]
    assert "SPARK_CONNECT_MODE_ENABLED" not in env and env["SPARK_LOG_DIR"] == str(tmp_path)


def test_a_taken_connect_port_is_named_with_its_setting(tmp_path, monkeypatch):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        _stack_settings(tmp_path / "home", monkeypatch)
        monkeypatch.setenv("RISKOPS_SPARK_CONNECT_PORT", str(port))
        settings = load_settings()
        spec = local._specs(settings)["spark-connect"]
        with pytest.raises(PortInUseError, match=rf"port {port} .*RISKOPS_SPARK_CONNECT_PORT"):
            local._start_server(settings, spec)
        assert processes.read_pid(spec.pid_file) is None


def test_the_stack_runs_its_connect_server_as_a_managed_process(tmp_path, monkeypatch):
    """What `riskops up` does for this component, then `status` and `down`."""
    settings = _stack_settings(
        tmp_path / "home", monkeypatch,
        RISKOPS_SPARK_CONNECT_MASTER="local[1]", RISKOPS_SPARK_CONNECT_DRIVER_MEMORY="1g",
    )  # fmt: skip
    spec = local._specs(settings)["spark-connect"]
    try:
        assert local._start_server(settings, spec)
        local._wait_healthy(settings, spec, timeout=90)
        row = {s.name: s for s in local.status(settings)}["spark-connect"]
        assert row.healthy and row.url == settings.spark.local_connect_url()
        jvm = psutil.Process(row.pid)
        assert "java" in jvm.name() and "SparkConnectServer" in " ".join(jvm.cmdline())
        listening = {c.laddr for c in jvm.net_connections() if c.status == psutil.CONN_LISTEN}
        assert all(addr.ip in {"127.0.0.1", "::ffff:127.0.0.1"} for addr in listening), listening
        with spark_session(remote=settings.spark.local_connect_url()) as spark:
            assert spark.range(5).count() == 5
    finally:
        stopped = local.down(settings)
    assert "spark-connect" in stopped
    assert not psutil.pid_exists(row.pid) or psutil.Process(row.pid).status() == "zombie"
    assert not processes.read_pid(spec.pid_file)
    assert (settings.home_dir / "logs" / "spark-connect.log").stat().st_size > 0


def test_the_platform_block_records_an_operators_remote_and_defers_to_the_run_env(monkeypatch):
    from blocks.platform import RiskopsPlatform
    from blocks.register import block_spark_remote

    monkeypatch.delenv("RISKOPS_SPARK_REMOTE", raising=False)
    cluster = "sc://riskops-spark-connect.riskops.svc:15002"
    block = RiskopsPlatform(database_url="sqlite://", spark_master="local[1]", spark_remote=cluster)
    assert block.spark_settings().remote == cluster
    assert block.spark_settings().master == "local[1]"
    unset = RiskopsPlatform(database_url="sqlite://")
    assert unset.spark_settings().remote is None  # a session-local Spark
    monkeypatch.setenv("RISKOPS_SPARK_REMOTE", "sc://127.0.0.1:15002")  # what stack_env sets
    assert unset.spark_settings().remote == "sc://127.0.0.1:15002"
    # registering: the stack's own server is not written into the block, a cluster's is
    assert block_spark_remote(load_settings()) is None
    monkeypatch.setenv("RISKOPS_SPARK_REMOTE", cluster)
    assert block_spark_remote(load_settings()) == cluster
