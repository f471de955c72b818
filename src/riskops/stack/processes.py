"""Background processes owned by riskops, tracked by pid files so `down` stops only those."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    run_dir: Path
    log_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"


def read_pid(pid_file: Path) -> psutil.Process | None:
    """The live process a pid file names, or None (stale files are removed).

    The recorded start time guards against a recycled pid belonging to something else.
    """
    try:
        record = json.loads(pid_file.read_text())
        process = psutil.Process(int(record["pid"]))
        if abs(process.create_time() - float(record["create_time"])) > 1.0:
            raise psutil.NoSuchProcess(int(record["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:
            raise psutil.NoSuchProcess(int(record["pid"]))
        return process
    except FileNotFoundError:
        return None
    except (psutil.Error, ValueError, KeyError, json.JSONDecodeError):
        pid_file.unlink(missing_ok=True)
        return None


def start(spec: ProcessSpec) -> psutil.Process:
    """Start ``spec`` detached in its own session, logging to its log file."""
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    spec.log_dir.mkdir(parents=True, exist_ok=True)
    with open(spec.log_file, "ab") as log:
        popen = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=spec.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = psutil.Process(popen.pid)
    spec.pid_file.write_text(
        json.dumps({"pid": popen.pid, "create_time": process.create_time(), "argv": spec.argv})
    )
    return process


def stop(pid_file: Path, timeout: float = 15.0) -> bool:
    """Stop the process group named by ``pid_file``; True if something was running."""
    process = read_pid(pid_file)
    if process is None:
        pid_file.unlink(missing_ok=True)
        return False
    try:
        pgid = os.getpgid(process.pid)
        targets = [process, *process.children(recursive=True)]
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, psutil.NoSuchProcess):
        pid_file.unlink(missing_ok=True)
        return True
    _gone, alive = psutil.wait_procs(targets, timeout=timeout)
    for survivor in alive:
        try:
            survivor.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    pid_file.unlink(missing_ok=True)
    return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"


def wait_until(predicate: object, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False
