"""A SparkSession with settings that suit feature builds, always stopped on the way out.

Two kinds of session, one function: a session-local Spark (a JVM started by this process, the
``master`` URL) or a Spark Connect client (``remote``, ``sc://host:port``): no JVM here, the
plan runs on a Connect server that is already up (`riskops up` starts one; in production a
cluster's endpoint).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import SparkSession

LOCAL_SHUFFLE_PARTITIONS = 8
# PySpark picks Classic or Connect implementations of `functions`, `Window` and `Column` by
# this process-wide flag (pyspark.sql.utils.is_remote); it is set while a Connect session is
# open and removed afterwards, so a local session in the same process keeps working.
CONNECT_MODE_FLAG = "SPARK_CONNECT_MODE_ENABLED"
DEFAULT_CONNECT_PORT = 15002


class SparkConnectUnreachableError(ConnectionError):
    """The Spark Connect server a remote session points at does not answer."""


def connect_address(remote: str) -> tuple[str, int]:
    """Host and port of a Spark Connect URL (``sc://host[:port][/;param=value...]``)."""
    parsed = urlparse(remote)
    if parsed.scheme != "sc" or not parsed.hostname:
        raise ValueError(
            f"Spark Connect URL {remote!r} is not of the form sc://host:port "
            "(check RISKOPS_SPARK_REMOTE)"
        )
    return parsed.hostname, parsed.port or DEFAULT_CONNECT_PORT


def check_reachable(remote: str, timeout: float = 3.0) -> None:
    """Fail fast, naming the URL, when nothing listens there (the gRPC client would retry for
    minutes before giving up)."""
    host, port = connect_address(remote)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as error:
        raise SparkConnectUnreachableError(
            f"no Spark Connect server answers at {remote} ({error}): start the local one with "
            "`riskops up`, point RISKOPS_SPARK_REMOTE at a running server, or unset it to use "
            "a local Spark session"
        ) from error


def is_connect(spark: Any) -> bool:
    """True for a Spark Connect client session (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def session_conf(
    master: str,
    *,
    driver_memory: str = "4g",
    shuffle_partitions: int | None = None,
    driver_cores: int | None = None,
    executor_memory: str | None = None,
    executor_cores: int | None = None,
    executor_instances: int | None = None,
    remote: bool = False,
) -> dict[str, str]:
    """The configuration :func:`spark_session` applies (exposed for inspection and tests).

    Sizes left at None are not set, so Spark's own defaults apply. With ``remote`` only
    runtime SQL settings are returned: a Connect client cannot change the server's static
    settings (driver memory, executor sizes, Python executable, file system), which belong to
    the server's own start-up (:mod:`riskops.features.connect_server`, or the cluster's).
    """
    local = master.startswith("local")
    sql = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Readers other than Spark (pandas, pyarrow) want int64 microseconds, not INT96.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.adaptive.enabled": "true",
    }
    if remote:
        if shuffle_partitions:
            sql["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
        return sql
    conf = {
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        **sql,
        "spark.pyspark.python": sys.executable,
    }
    partitions = shuffle_partitions or (LOCAL_SHUFFLE_PARTITIONS if local else None)
    if partitions:
        conf["spark.sql.shuffle.partitions"] = str(partitions)
    sizes = {
        "spark.driver.cores": driver_cores,
        "spark.executor.memory": executor_memory,
        "spark.executor.cores": executor_cores,
        "spark.executor.instances": executor_instances,
    }
    conf.update({key: str(value) for key, value in sizes.items() if value is not None})
    if local:  # no network needed, and no surprise from the machine's host name
        conf["spark.driver.host"] = "127.0.0.1"
        conf["spark.driver.bindAddress"] = "127.0.0.1"
        # Smaller input splits than the 128 MB default keep every core busy on one file.
        conf["spark.sql.files.maxPartitionBytes"] = "32m"
        # Without Hadoop's native library every file created on the local file system costs
        # a forked `chmod`; the raw file system skips the .crc side files and their forks.
        conf["spark.hadoop.fs.file.impl"] = "org.apache.hadoop.fs.RawLocalFileSystem"
    return conf


@contextmanager
def spark_session(
    master: str = "local[*]",
    app_name: str = "riskops-features",
    *,
    driver_memory: str = "4g",
    shuffle_partitions: int | None = None,
    driver_cores: int | None = None,
    executor_memory: str | None = None,
    executor_cores: int | None = None,
    executor_instances: int | None = None,
    conf: Mapping[str, str] | None = None,
    log_level: str = "ERROR",
    remote: str | None = None,
) -> Iterator[SparkSession]:
    """Start (or join) a SparkSession and stop it when the block ends, even on errors.

    With ``remote`` (``sc://host:port``) the session is a Spark Connect client of that server
    and ``master``, ``driver_memory``, the executor sizes and ``log_level`` do not apply (they
    are the server's); ``conf`` must then hold runtime (``spark.sql.*``) settings only. Without
    it, a local JVM session: ``driver_memory`` only takes effect when this process has not
    started a JVM yet, and ``shuffle_partitions`` defaults to 8 for ``local`` masters and to
    Spark's own otherwise. ``SparkSettings.session_options()`` gives every argument from
    settings.
    """
    if remote:
        with _connect_session(remote, app_name, shuffle_partitions, conf) as spark:
            yield spark
        return
    # Python workers (mapInPandas) run the interpreter PySpark finds in PYSPARK_PYTHON, not the
    # spark.pyspark.python setting: without this they would start a python without riskops.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = session_conf(
        master, driver_memory=driver_memory, shuffle_partitions=shuffle_partitions,
        driver_cores=driver_cores, executor_memory=executor_memory,
        executor_cores=executor_cores, executor_instances=executor_instances,
    )  # fmt: skip
    for key, value in {**settings, **(conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        spark.sparkContext.setLogLevel(log_level)
        yield spark
    finally:
        spark.stop()


@contextmanager
def _connect_session(
    remote: str, app_name: str, shuffle_partitions: int | None, conf: Mapping[str, str] | None
) -> Iterator[SparkSession]:
    # The Connect builder itself, not SparkSession.builder.remote(): the classic builder refuses
    # a remote session while this process also holds a local one (SESSION_ALREADY_EXIST) and
    # leaves the Connect flag set for good.
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    check_reachable(remote)
    flagged = CONNECT_MODE_FLAG not in os.environ
    os.environ[CONNECT_MODE_FLAG] = "1"
    spark = None
    try:
        builder = ConnectSession.builder.remote(remote).appName(app_name)
        settings = session_conf("", shuffle_partitions=shuffle_partitions, remote=True)
        spark = builder.getOrCreate()
        # Set one by one, not through the builder (which silently drops what it cannot set):
        # a static setting in `conf` is an error that names it.
        for key, value in {**settings, **(conf or {})}.items():
            spark.conf.set(key, value)
        yield spark  # type: ignore[misc]
    finally:
        try:
            if spark is not None:
                spark.stop()
        finally:
            if flagged:
                os.environ.pop(CONNECT_MODE_FLAG, None)
