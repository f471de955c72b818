"""A SparkSession with settings that suit feature builds, always stopped on the way out."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pyspark.sql import SparkSession

LOCAL_SHUFFLE_PARTITIONS = 8


def session_conf(
    master: str,
    *,
    driver_memory: str = "4g",
    shuffle_partitions: int | None = None,
    driver_cores: int | None = None,
    executor_memory: str | None = None,
    executor_cores: int | None = None,
    executor_instances: int | None = None,
) -> dict[str, str]:
    """The configuration :func:`spark_session` applies (exposed for inspection and tests).

    Sizes left at None are not set, so Spark's own defaults apply.
    """
    local = master.startswith("local")
    conf = {
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Readers other than Spark (pandas, pyarrow) want int64 microseconds, not INT96.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.adaptive.enabled": "true",
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
) -> Iterator[SparkSession]:
    """Start (or join) a SparkSession and stop it when the block ends, even on errors.

    ``driver_memory`` only takes effect when this process has not started a JVM yet.
    ``shuffle_partitions`` defaults to 8 for ``local`` masters and to Spark's own otherwise.
    ``SparkSettings.session_options()`` gives every sizing argument from settings.
    """
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
