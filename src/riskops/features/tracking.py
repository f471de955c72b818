"""Progress of a long Spark action, read from Spark's status tracker, reported on our thread."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from pyspark import InheritableThread
from pyspark.sql import SparkSession

T = TypeVar("T")
Progress = Callable[[float, str], None]


def _done_share(spark: SparkSession, group: str, stages: int | None) -> float | None:
    """Share of the work done for a job group: each stage counts as one unit, done in the
    proportion of its finished tasks; ``stages`` is how many are expected in all."""
    tracker = spark.sparkContext.statusTracker()
    shares = []
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in job.stageIds if job else []:
            stage = tracker.getStageInfo(stage_id)
            if stage is not None and stage.numTasks:
                shares.append(stage.numCompletedTasks / stage.numTasks)
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

    Errors of the action are raised here. ``stages`` is the number of stages the action is
    expected to run (Spark with adaptive execution submits them one after another); the share
    never goes back, and it is an estimate.
    """
    group = f"riskops-{uuid.uuid4().hex[:12]}"
    values: list[T] = []
    errors: list[BaseException] = []

    def work() -> None:
        spark.sparkContext.setJobGroup(group, message, interruptOnCancel=True)
        try:
            values.append(action())
        except BaseException as error:  # handed to the caller's thread
            errors.append(error)

    # InheritableThread pins a JVM thread to this Python thread and cleans it up afterwards.
    thread = InheritableThread(target=work, name=group, daemon=True)
    thread.start()
    best = 0.0
    try:
        while thread.is_alive():
            thread.join(every)
            share = _done_share(spark, group, stages) if thread.is_alive() else None
            if share is not None and share > best:
                best = share
                report(start + (end - start) * best, f"{message}: {best:.0%} of tasks done")
    except BaseException:
        spark.sparkContext.cancelJobGroup(group)
        thread.join()
        raise
    if errors:
        raise errors[0]
    return values[0]
