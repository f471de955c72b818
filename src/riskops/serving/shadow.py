"""Shadow scoring: the challenger scores the champion's requests off the hot path.

The request handler hands the validated records to a bounded queue and returns; one worker
thread scores them with the challenger (its features computed without recording the event a
second time) and writes the outcomes to the decision log with role ``shadow``. Nothing a
shadow computes is ever returned to a client. A full queue drops the shadow scoring (counted),
never the request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from riskops.serving.served import Outcome, ServedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """Records a challenger should score."""

    challenger: ServedModel
    records: Sequence[Mapping[str, Any]]
    raw: Sequence[Mapping[str, Any]]
    endpoint: str
    request_id: str | None


Sink = Callable[[ServedModel, list[Outcome], float, str, str | None], None]


class ShadowScorer:
    """One worker thread behind a bounded queue."""

    def __init__(
        self,
        sink: Sink,
        *,
        capacity: int,
        on_drop: Callable[[str], None],
        on_error: Callable[[str], None],
    ) -> None:
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(maxsize=capacity)
        self._sink = sink
        self._on_drop = on_drop
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name="riskops-shadow", daemon=True)
        self.scored = 0

    def start(self) -> None:
        """Start the worker."""
        self._thread.start()

    def submit(self, job: ShadowJob) -> bool:
        """Queue a job without waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(job)
            return True
        except queue.Full:
            self._on_drop(job.challenger.name)
            return False

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                self._queue.task_done()
                return
            started = time.perf_counter()
            try:
                outcomes = job.challenger.decide(job.records, job.raw, record_events=False)
                latency = (time.perf_counter() - started) * 1000.0
                self._sink(job.challenger, outcomes, latency, job.endpoint, job.request_id)
                self.scored += len(outcomes)
            except Exception as error:
                self._on_error(job.challenger.name)
                log.error("scoring: shadow scoring by %s v%s failed: %s", job.challenger.name,
                          job.challenger.version, error)  # fmt: skip
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until the queued jobs are scored (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish queued jobs, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
