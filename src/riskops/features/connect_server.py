"""A local Spark Connect server: the command line, its environment, and a managed instance.

pyspark's wheel ships the server (``jars/spark-connect_*.jar``); ``sbin/start-connect-server.sh``
daemonises it through ``spark-daemon.sh``. Here ``bin/spark-submit`` runs the server class in
the foreground instead (it ``exec``\\ s into the JVM), so the process that starts it owns it:
`riskops up` tracks its pid like every other stack process and `riskops down` stops it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyspark

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


class ConnectServerError(RuntimeError):
    """A local Spark Connect server did not start; the message holds its log's last lines."""


def spark_home() -> Path:
    """The Spark distribution inside the pyspark wheel (bin/, jars/, sbin/)."""
    return Path(pyspark.__file__).resolve().parent


@dataclass(frozen=True)
class ConnectServerConfig:
    """How a local Connect server is started (the stack's settings or a test's choice)."""

    host: str = "127.0.0.1"
    port: int = 15002
    master: str = "local[2]"
    driver_memory: str = "2g"
    shuffle_partitions: int = 8
    work_dir: Path | None = None  # scratch (spark.local.dir) and warehouse; default: Spark's
    conf: tuple[tuple[str, str], ...] = ()  # more settings, applied last (a cluster's, say)

    @property
    def url(self) -> str:
        return f"sc://{self.host}:{self.port}"


def server_argv(config: ConnectServerConfig) -> list[str]:
    """``spark-submit`` running the Connect server in the foreground, bound to ``host`` only.

    The driver and its block manager bind to the same address, so no port of the server is
    reachable from other machines unless ``host`` says so.
    """
    conf = {
        "spark.connect.grpc.binding.address": config.host,
        "spark.connect.grpc.binding.port": str(config.port),
        "spark.driver.host": config.host,
        "spark.driver.bindAddress": config.host,
        "spark.driver.memory": config.driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # At INFO the server logs every plan it runs, literals included: the HMAC pads of the
        # pseudonym key (riskops.features.spark_build.pseudonym) would land in the log.
        "spark.log.level": "WARN",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(config.shuffle_partitions),
        "spark.sql.files.maxPartitionBytes": "32m",
        "spark.pyspark.python": sys.executable,
        # As for local sessions (riskops.features.session): no forked chmod per file written.
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    }
    if config.work_dir is not None:
        conf["spark.local.dir"] = str(config.work_dir / "scratch")
        conf["spark.sql.warehouse.dir"] = str(config.work_dir / "warehouse")
    conf.update(dict(config.conf))
    argv = [
        str(spark_home() / "bin" / "spark-submit"),
        "--class", SERVER_CLASS,
        "--name", "riskops-spark-connect",
        "--master", config.master,
    ]  # fmt: skip
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return argv


def server_env(base: dict[str, str], log_dir: Path) -> dict[str, str]:
    """``base`` plus what the server needs: its Spark home, its log folder, and Python workers
    (mapInPandas) that run this interpreter and import this riskops."""
    env = dict(base)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding riskops/
    paths = [package_root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env.update(
        {
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOG_DIR": str(log_dir),
            "PYSPARK_PYTHON": sys.executable,
            "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
            "SPARK_CONNECT_MODE": "0",  # as start-connect-server.sh: the server is classic
        }
    )
    env.pop("SPARK_REMOTE", None)
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    return env


def listening(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@contextmanager
def local_connect_server(
    config: ConnectServerConfig, log_dir: Path, *, timeout: float = 90.0
) -> Iterator[str]:
    """Run a Connect server for the block (tests, benchmarks); yields its ``sc://`` URL.

    Raises :class:`ConnectServerError` with the end of its log when it exits or does not
    listen within ``timeout`` seconds; the server is stopped (and waited for) on the way out.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "spark-connect.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            server_argv(config),
            env=server_env(dict(os.environ), log_dir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not listening(config.host, config.port):
            if process.poll() is not None:
                raise ConnectServerError(
                    f"the Spark Connect server for {config.url} exited with code "
                    f"{process.returncode}; last lines of {log}:\n{_tail(log)}"
                )
            if time.monotonic() > deadline:
                raise ConnectServerError(
                    f"the Spark Connect server for {config.url} did not listen within "
                    f"{timeout:.0f}s; last lines of {log}:\n{_tail(log)}"
                )
            time.sleep(0.25)
        yield config.url
    finally:
        _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (the JVM and its Python workers), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def config_from_args(argv: list[str]) -> tuple[ConnectServerConfig, Path]:
    """The server's configuration and log folder from a command line (see :func:`main`)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m riskops.features.connect_server")
    parser.add_argument("--host", default="127.0.0.1", help="gRPC (and driver) bind address")
    parser.add_argument("--port", type=int, default=15002)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp/spark-logs"))
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    extra = []
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--conf {item!r} is not KEY=VALUE")
        extra.append((key, value))
    config = ConnectServerConfig(
        host=args.host, port=args.port, master=args.master, driver_memory=args.driver_memory,
        work_dir=args.work_dir, conf=tuple(extra),
    )  # fmt: skip
    return config, args.log_dir


def main(argv: list[str] | None = None) -> None:
    """``python -m riskops.features.connect_server``: exec the server in this process (the
    container entry point of infra/k8s/spark-connect/); ``--conf KEY=VALUE`` adds settings."""
    config, log_dir = config_from_args(sys.argv[1:] if argv is None else argv)
    command = server_argv(config)
    os.execve(command[0], command, server_env(dict(os.environ), log_dir))


if __name__ == "__main__":
    main()
