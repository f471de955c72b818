"""The resource meter: CPU-seconds, peak resident memory and wall time of a block of code,
for this process and every process it starts (Spark's JVM and its Python workers).

CPU-seconds (user + system) are the sum of three kernel counters, each a delta over the block:

- this process (``getrusage(RUSAGE_SELF)``): every thread, Prefect's and the meter's included;
- children it started and waited for (``getrusage(RUSAGE_CHILDREN)``), which includes their
  own waited-for descendants; a child that was already running when the block began counts only
  its CPU after that (its earlier CPU, sampled at the start, is taken off);
- descendants still alive when the block ends (a local SparkSession's JVM outlives
  ``spark.stop()``: it is the py4j gateway of the Python process), through psutil: their own CPU
  plus their waited-for children's (the JVM's Python workers), minus what they had at the start.

Not counted: a descendant that was orphaned (its parent died without waiting for it, so it was
re-parented away from this tree) and any process that is not a descendant, such as a Spark
Connect server or a cluster's executors, an MLflow or Prefect server, or a database.

Peak memory is resident memory (RSS) of the process tree, sampled every ``interval`` seconds by
a background thread (psutil): the sum over the processes at the sample with the largest sum,
so pages shared between processes (forked workers) count once per process, and a peak shorter
than the interval can be missed. For this process alone the kernel's high-water mark
(``ru_maxrss``) is taken as well when it rose during the block: then the process reached a new
lifetime peak inside the block and the kernel saw it, however short. The kernel updates that
mark from per-thread counters lazily, so a sample can pass it by a little: the larger of the two
stands. When the mark did not rise (the process had been bigger before the block), only the
samples count (``peak_source`` says which).
"""

from __future__ import annotations

import resource
import threading
import time
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import psutil

_Key = tuple[int, float]  # (pid, create time): a pid alone can be reused


@dataclass(frozen=True)
class Usage:
    """What a block of code used."""

    wall_seconds: float
    cpu_self_seconds: float
    cpu_children_seconds: float
    peak_rss_bytes: int  # the process tree
    peak_rss_self_bytes: int  # this process
    sampled_peak_rss_self_bytes: int
    peak_source: str  # "kernel" (ru_maxrss rose during the block) or "sampled"
    samples: int
    live_descendants: int  # descendants still running at the end (e.g. a JVM)

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_self_seconds + self.cpu_children_seconds

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_seconds": self.cpu_seconds}


def _rusage_cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _process_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


class ResourceMeter:
    """Measure a ``with`` block; :attr:`usage` holds the figures once it has ended.

    Args:
        interval: seconds between two samples of the process tree's resident memory.
    """

    def __init__(self, interval: float = 0.25) -> None:
        if interval <= 0:
            raise ValueError(f"the sampling interval must be positive, got {interval}")
        self.interval = interval
        self.usage: Usage | None = None
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="riskops-cost-meter", daemon=True)
        self._start_cpu: dict[_Key, float] = {}
        self._start_children: set[_Key] = set()
        self._peak_tree = self._peak_self = self._samples = 0

    def __enter__(self) -> ResourceMeter:
        self._t0 = time.perf_counter()
        self._self0 = _rusage_cpu(resource.RUSAGE_SELF)
        self._children0 = _rusage_cpu(resource.RUSAGE_CHILDREN)
        self._maxrss0 = _maxrss_bytes()
        for process in self._process.children(recursive=True):
            try:
                key = (process.pid, process.create_time())
                self._start_cpu[key] = _process_cpu(process)
                if process.ppid() == self._process.pid:
                    self._start_children.add(key)
            except psutil.Error:
                continue
        self.sample()
        self._thread.start()
        return self

    def sample(self) -> dict[_Key, float]:
        """Take one memory sample now; returns the CPU of each live descendant."""
        own = self._process.memory_info().rss
        tree = own
        cpu: dict[_Key, float] = {}
        for process in self._process.children(recursive=True):
            try:
                with process.oneshot():
                    key = (process.pid, process.create_time())
                    rss = process.memory_info().rss
                    cpu[key] = _process_cpu(process)
            except psutil.Error:  # ended between the listing and the read
                continue
            tree += rss
        with self._lock:
            self._peak_self = max(self._peak_self, own)
            self._peak_tree = max(self._peak_tree, tree)
            self._samples += 1
        return cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except psutil.Error:  # never let the meter fail the measured work
                continue

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(max(5.0, 4 * self.interval))
        live = self.sample()  # the last sample also reads the live descendants' CPU
        wall = time.perf_counter() - self._t0
        own = _rusage_cpu(resource.RUSAGE_SELF) - self._self0
        reaped = _rusage_cpu(resource.RUSAGE_CHILDREN) - self._children0
        # A direct child already running at the start and waited for since then: its
        # RUSAGE_CHILDREN share covers its whole life; take off what it had used before.
        reaped -= sum(self._start_cpu[key] for key in self._start_children if key not in live)
        alive = sum(max(0.0, cpu - self._start_cpu.get(key, 0.0)) for key, cpu in live.items())
        maxrss = _maxrss_bytes()
        kernel = maxrss > self._maxrss0
        peak_self = max(self._peak_self, maxrss) if kernel else self._peak_self
        self.usage = Usage(
            wall_seconds=wall,
            cpu_self_seconds=own,
            cpu_children_seconds=max(0.0, reaped) + alive,
            peak_rss_bytes=max(self._peak_tree, peak_self),
            peak_rss_self_bytes=peak_self,
            sampled_peak_rss_self_bytes=self._peak_self,
            peak_source="kernel" if kernel else "sampled",
            samples=self._samples,
            live_descendants=len(live),
        )
