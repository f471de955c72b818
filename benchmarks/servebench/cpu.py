"""Where the machine's CPU went during a measured run: the server, wrk, and everything else.

The benchmark shares the machine with its load generator by design, and may share it with other
work by accident; the share used by other processes says whether a run's figures can be trusted.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICKS


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of one process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class CpuShares:
    """Shares of the whole machine (all cores) over a measured run."""

    server: float
    load_generator: float
    other: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in vars(self).items()}


class CpuMeter:
    """Start before the measured run, ``stop`` after: the machine's CPU shares in between.

    wrk's CPU is read from this process's reaped children, so nothing else may be started and
    reaped by this process in between.
    """

    def __init__(self, server_pgid: int) -> None:
        self.pgid = server_pgid
        self.began = time.monotonic()
        self.busy = _busy_seconds()
        self.server = group_cpu_seconds(server_pgid)
        self.children = _children_seconds()

    def stop(self) -> CpuShares:
        capacity = (time.monotonic() - self.began) * (os.cpu_count() or 1)
        busy = _busy_seconds() - self.busy
        server = group_cpu_seconds(self.pgid) - self.server
        wrk = _children_seconds() - self.children
        return CpuShares(server / capacity, wrk / capacity, max(busy - server - wrk, 0) / capacity)
