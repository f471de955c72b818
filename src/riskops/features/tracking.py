"""Progress of a long Spark action, read from Spark's status tracker, reported on our thread.

A local session reads its SparkContext's status tracker and cancels through a job group; a
Spark Connect client has no SparkContext, so it registers a progress handler (the server
streams stage progress with each operation) and cancels through an operation tag. Both give
the same numbers: finished and total tasks per stage.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pyspark import InheritableThread
from pyspark.sql import SparkSession

from riskops.features.session import is_connect

T = TypeVar("T")
Progress = Callable[[float, str], None]


class ConnectStages:
    """A Spark Connect progress handler keeping the latest task counts of every stage seen.

    Only operations run on the thread given by ``only_thread`` (its ident) count, when set.
    Use as a context manager: registered with the session on entry, removed on exit.
    """

    def __init__(self, spark: Any, only_thread: int | None = None) -> None:
        self.spark = spark
        self.only_thread = only_thread
        self._lock = threading.Lock()
        self._stages: dict[tuple[str | None, int], tuple[int, int, bool]] = {}

    def __call__(
        self,
        stages: Iterable[Any] | None,
        inflight_tasks: int,
        operation_id: str | None,
        done: bool,
    ) -> None:
        if self.only_thread is not None and threading.get_ident() != self.only_thread:
            return
        with self._lock:
            for stage in stages or ():
                key = (operation_id, stage.stage_id)
                self._stages[key] = (stage.num_completed_tasks, stage.num_tasks, stage.done)

    def __enter__(self) -> ConnectStages:
        self.spark.registerProgressHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.spark.removeProgressHandler(self)

    def shares(self) -> list[float]:
        """Per stage seen: the share of its tasks finished."""
        with self._lock:
            return [done / total for done, total, _ in self._stages.values() if total]

    def active(self) -> tuple[int, int]:
        """(finished, total) tasks of the stages still running."""
        with self._lock:
            running = [(d, t) for d, t, finished in self._stages.values() if not finished]
        return sum(d for d, _ in running), sum(t for _, t in running)


def active_tasks(spark: Any, connect_stages: ConnectStages | None = None) -> tuple[int, int]:
    """(finished, total) tasks of the active stages: from the status tracker of a local
    session, or from ``connect_stages`` (registered on the session) for a Connect client."""
    if connect_stages is not None:
        return connect_stages.active()
    tracker = spark.sparkContext.statusTracker()
    done = total = 0
    for stage_id in tracker.getActiveStageIds():
        info = tracker.getStageInfo(stage_id)
        if info is not None:
            done, total = done + info.numCompletedTasks, total + info.numTasks
    return done, total


def _local_shares(spark: SparkSession, group: str) -> list[float]:
    tracker = spark.sparkContext.statusTracker()
    shares = []
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else []:
            stage = tracker.getStageInfo(stage_id)
            if stage is not None and stage.numTasks:
                shares.append(stage.numCompletedTasks / stage.numTasks)
    return shares


def _done_share(shares: list[float], stages: int | None) -> float | None:
    """Share of the work done: each stage counts as one unit, done in the proportion of its
    finished tasks; ``stages`` is how many are expected in all."""
    if not shares:
        return None
    return sum(shares) / max(len(shares), stages or 0)


def run_tracked(
    spark: SparkSession,
    action: Callable[[], T],
    report: Progress,
    *,
    start: float,
    end: float,
    message: str,
    stages: int | None = None,
    every: float = 5.0,
) -> T:
    """Run ``action`` (Spark jobs) in a helper thread and report its share of finished tasks,
    mapped onto ``[start, end]``, from the calling thread every ``every`` seconds.

    Errors of the action are raised here; an interruption (Ctrl-C, a cancelled flow run)
    cancels the action's Spark jobs. ``stages`` is the number of stages the action is
    expected to run (Spark with adaptive execution submits them one after another); the share
    never goes back, and it is an estimate.
    """
    group = f"riskops-{uuid.uuid4().hex[:12]}"
    values: list[T] = []
    errors: list[BaseException] = []
    connect = is_connect(spark)
    handler: list[ConnectStages] = []
    ready = threading.Event()

    def work() -> None:
        try:
            if connect:
                spark.addTag(group)  # per thread on a Connect client
                handler.append(ConnectStages(spark, only_thread=threading.get_ident()))
                spark.registerProgressHandler(handler[0])
            else:
                spark.sparkContext.setJobGroup(group, message, interruptOnCancel=True)
            ready.set()
            values.append(action())
        except BaseException as error:  # handed to the caller's thread
            errors.append(error)
        finally:
            ready.set()
            if connect:
                spark.removeTag(group)
                if handler:
                    spark.removeProgressHandler(handler[0])

    def shares() -> list[float]:
        if connect:
            return handler[0].shares() if handler else []
        return _local_shares(spark, group)

    # InheritableThread pins a JVM thread to this Python thread (local) or carries the
    # session's thread-local state (Connect), and cleans up afterwards.
    thread = InheritableThread(target=work, name=group, daemon=True, session=spark)
    thread.start()
    ready.wait()
    best = 0.0
    try:
        while thread.is_alive():
            thread.join(every)
            share = _done_share(shares(), stages) if thread.is_alive() else None
            if share is not None and share > best:
                best = share
                report(start + (end - start) * best, f"{message}: {best:.0%} of tasks done")
    except BaseException:
        if connect:
            spark.interruptTag(group)
        else:
            spark.sparkContext.cancelJobGroup(group)
        thread.join()
        raise
    if errors:
        raise errors[0]
    return values[0]
