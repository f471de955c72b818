"""The decision log: every decision of the scoring service, the EU AI Act Article 12 record.

The request path calls :meth:`DecisionLog.submit` with one request's decisions as a
:class:`DecisionBatch` (or one :class:`Decision`), which only appends to a bounded in-memory
queue. One writer thread groups the queued decisions by (model, version, role, hour), writes each
group as a parquet file to the lake (layout in :mod:`riskops.serving.decision_files`) and indexes
it in the ``decision_log_file`` table. A failing lake or database keeps the batch and retries it
with backoff; the rows stay counted in :meth:`DecisionLog.depth`, so the queue bound applies to
them too. Only when the bound is reached are new decisions refused: ``submit`` returns False,
the drop is counted per model, ``on_drop`` is called and an ERROR is logged (rate-limited).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy.engine import Engine

from riskops.db import session_scope
from riskops.lake.base import Lake
from riskops.serving.decision import Decision, DecisionBatch, canonical_sha256, new_decision_id
from riskops.serving.decision_files import (
    decision_key,
    encode_batches,
    hour_of,
    index_file,
    read_decisions,
)
from riskops.serving.served import resolve_deferred

__all__ = [
    "Decision",
    "DecisionBatch",
    "DecisionLog",
    "canonical_sha256",
    "new_decision_id",
    "read_decisions",
]

logger = logging.getLogger(__name__)

_DROP_LOG_SECONDS = 10.0
_CLOSE_GRACE_SECONDS = 5.0
_LOST_AT_CLOSE = "they could not be written before the decision log closed"


@dataclass
class _Batch:
    """One group's rows on their way to one file; written once, indexed once, retried apart."""

    model: str
    version: str
    role: str
    hour: dt.datetime
    parts: list[DecisionBatch]
    rows: int = 0
    key: str = ""
    data: bytes = b""
    uri: str | None = None  # set once the file is in the lake

    def __post_init__(self) -> None:
        self.key = decision_key(self.model, self.hour, self.role, self.version, uuid.uuid4().hex)


class DropLedger:
    """Decisions dropped, per model: counted, passed to ``on_drop`` and logged as ERROR
    (at most once per model every 10 s; :meth:`report_unlogged` says what that kept quiet).
    Thread-safe: submitters may be several threads."""

    def __init__(self, on_drop: Callable[[str, int], None] | None, max_queue: int) -> None:
        self._on_drop, self._max_queue = on_drop, max_queue
        self._dropped: dict[str, int] = {}
        self._last_log: dict[str, tuple[float, int]] = {}  # model -> (time, count logged)
        self._lock = threading.Lock()

    def drop(self, model: str, n: int, why: str | None, always: bool = False) -> None:
        """Count ``n`` dropped decisions of ``model``; ``why`` None: the queue was full."""
        with self._lock:
            total = self._dropped[model] = self._dropped.get(model, 0) + n
            now = time.monotonic()
            last, logged = self._last_log.get(model, (-_DROP_LOG_SECONDS, 0))
            log = always or now - last >= _DROP_LOG_SECONDS
            if log:
                self._last_log[model] = (now, total)
        if log:
            logger.error(
                "decision log DROPPED %d decision(s) of model %s (%d in all): %s. These decisions "
                "have no Article 12 record; check that the lake and the platform DB are "
                "reachable, or raise max_queue",
                total - logged,
                model,
                total,
                why or f"the queue is full ({self._max_queue} decisions waiting for the writer)",
            )
        if self._on_drop is not None:
            try:
                self._on_drop(model, n)
            except Exception:
                logger.exception("decision log: on_drop(%r, %d) failed", model, n)

    def totals(self) -> dict[str, int]:
        """Decisions dropped so far, per model."""
        with self._lock:
            return dict(self._dropped)

    def report_unlogged(self) -> None:
        """Log the drops the rate limit kept quiet (at close)."""
        for model, total in self.totals().items():
            logged = self._last_log.get(model, (0.0, 0))[1]
            if total > logged:
                logger.error(
                    "decision log DROPPED %d more decision(s) of model %s (%d in all) since "
                    "its last report (the ERRORs before it say why)",
                    total - logged,
                    model,
                    total,
                )


class DecisionLog:
    """A bounded queue on the request path and one background writer to the lake and index.

    Args:
        max_queue: decisions held in memory at most (queued plus being written); beyond it
            ``submit`` drops and counts.
        batch_rows: rows per file (a file closes once it holds this many: one request's
            batch is never split); the writer wakes early when this many are queued.
        flush_seconds: how long a decision may wait in the queue before it is written.
        on_drop: called as ``on_drop(model, n)`` whenever ``n`` decisions of ``model`` are
            dropped (e.g. to increment a Prometheus counter); it must not block.
        retry_max_seconds: the ceiling of the backoff between retries of a failing write.
    """

    def __init__(
        self,
        lake: Lake,
        engine: Engine,
        *,
        max_queue: int = 100_000,
        batch_rows: int = 5_000,
        flush_seconds: float = 2.0,
        on_drop: Callable[[str, int], None] | None = None,
        retry_max_seconds: float = 30.0,
    ) -> None:
        if max_queue < 1 or batch_rows < 1 or flush_seconds <= 0:
            raise ValueError("max_queue and batch_rows must be >= 1 and flush_seconds > 0")
        self._lake, self._engine = lake, engine
        self._max_queue, self._batch_rows = max_queue, batch_rows
        self._flush_seconds, self._retry_max = flush_seconds, retry_max_seconds
        self._queue: deque[DecisionBatch] = deque()
        self._queued = 0  # decisions in the queue (a batch holds one request's decisions)
        self._submit_lock = threading.Lock()  # submitters may be several threads
        self._pending: list[_Batch] = []
        self._pending_rows = 0  # rows taken off the queue and not yet indexed
        self._drops = DropLedger(on_drop, max_queue)
        self._written: dict[str, int] = {}
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._cycles_started = 0
        self._cycles_clean = 0  # last cycle that ended with nothing left pending
        self._closing = False
        self._close_deadline = float("inf")
        self._closed: bool | None = None  # the answer of close(), once it returned
        self._thread: threading.Thread | None = None

    # --- request path -------------------------------------------------------------------
    def submit(self, decisions: DecisionBatch | Decision) -> bool:
        """Queue one request's decisions without blocking; False when they were dropped."""
        batch = DecisionBatch.of(decisions) if isinstance(decisions, Decision) else decisions
        n = len(batch)
        with self._submit_lock:
            refused = self._closing or self._queued + self._pending_rows + n > self._max_queue
            if not refused:
                self._queue.append(batch)
                self._queued += n
                # Wake the writer once, when a full file's worth is waiting (Event.set costs
                # more than the rest of submit: not on every submit past the mark).
                full = self._queued >= self._batch_rows > self._queued - n
        if refused:
            why = "the decision log is closed" if self._closing else None
            self._drops.drop(batch.model, n, why)
            return False
        if full:
            self._wake.set()
        return True

    # --- observation ----------------------------------------------------------------------
    def depth(self) -> int:
        """Decisions accepted and not yet indexed (queued plus being written)."""
        return self._queued + self._pending_rows

    def dropped(self) -> dict[str, int]:
        """Decisions dropped so far, per model."""
        return self._drops.totals()

    def written(self) -> dict[str, int]:
        """Decisions written to the lake and indexed so far, per model."""
        return dict(self._written)

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> DecisionLog:
        """Start the writer thread (once)."""
        if self._thread is not None or self._closing:
            raise RuntimeError("the decision log writer is already started, or closed")
        self._thread = threading.Thread(target=self._run, name="riskops-decision-log", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float = 30.0) -> bool:
        """Write every decision submitted before this call; False if that took over ``timeout``.

        Before :meth:`start` (or after :meth:`close`) it writes in the caller's thread, with
        one attempt and no retry.
        """
        if self._thread is None:
            return self._cycle()
        if not self._thread.is_alive():
            return self.depth() == 0
        with self._progress:
            target = self._cycles_started + 1
            self._wake.set()
            return self._progress.wait_for(lambda: self._cycles_clean >= target, timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Flush everything and stop the writer; True when nothing was lost.

        The writer retries until ``timeout`` ends, then gets 5 s more to finish a write in
        progress. Decisions still unwritten then are counted as dropped and logged; a second
        call returns the first call's answer.
        """
        if self._closed is not None:
            return self._closed
        deadline = self._close_deadline = time.monotonic() + timeout
        self._closing = True
        if self._thread is not None:
            self._wake.set()
            # The writer gives up at the deadline; the grace lets its last attempt end.
            self._thread.join(max(0.0, deadline - time.monotonic()) + _CLOSE_GRACE_SECONDS)
            if self._thread.is_alive():  # stuck in a lake or DB call: leave its rows alone
                logger.error(
                    "decision log writer is still inside a write %.0f s after close; the %d "
                    "decision(s) it holds may be lost (check the lake and the platform DB)",
                    timeout + _CLOSE_GRACE_SECONDS,
                    self.depth(),
                )
                self._closed = False
                return False
        else:
            self._cycle()  # never started: write what was submitted, once
        lost: dict[str, int] = {}
        for batch in self._pending:
            lost[batch.model] = lost.get(batch.model, 0) + batch.rows
        with self._submit_lock:
            while self._queue:
                queued = self._queue.popleft()
                lost[queued.model] = lost.get(queued.model, 0) + len(queued)
            self._queued = 0
        self._pending, self._pending_rows = [], 0
        for model, n in lost.items():
            self._drops.drop(model, n, _LOST_AT_CLOSE, always=True)
        self._drops.report_unlogged()
        self._closed = not lost
        return self._closed

    def __enter__(self) -> DecisionLog:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- writer -----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff, wait = 0.0, self._flush_seconds
        while True:
            self._wake.wait(wait)  # set by submit (a full batch), flush and close
            self._wake.clear()
            try:
                clean = self._cycle()
            except Exception:  # the writer must outlive any bug in one cycle
                logger.exception("decision log writer cycle failed; retrying")
                clean = False
            deadline = self._close_deadline
            if self._closing and ((clean and not self._queue) or time.monotonic() >= deadline):
                return
            if clean:
                backoff = 0.0
                wait = 0.0 if self._queued >= self._batch_rows else self._flush_seconds
            else:
                backoff = min(self._retry_max, max(0.1, backoff * 2))
                wait = backoff
            if self._closing:
                wait = 0.0 if clean else min(wait, max(0.0, deadline - time.monotonic()))

    def _cycle(self) -> bool:
        """Retry what is pending, then drain the queue; True when nothing is left pending."""
        with self._progress:
            self._cycles_started += 1
            cycle = self._cycles_started
        if not self._write_pending():
            return False
        groups: dict[tuple[str, str, str, dt.datetime], _Batch] = {}
        for i in range(len(self._queue)):
            if i % 256 == 255:
                time.sleep(0)  # the GIL back to the event loop now and then (see _array)
            with self._submit_lock:  # moved from queued to pending in one step: depth holds
                d = self._queue.popleft()
                self._queued -= len(d)
                self._pending_rows += len(d)
            group = (d.model, d.version, d.role, hour_of(d.decided_at))
            batch = groups.get(group)
            if batch is None or batch.rows >= self._batch_rows:
                batch = groups[group] = _Batch(*group, parts=[])
                self._pending.append(batch)
            batch.parts.append(d)
            batch.rows += len(d)
        if not self._write_pending():
            return False
        with self._progress:
            self._cycles_clean = cycle
            self._progress.notify_all()
        return True

    def _write_pending(self) -> bool:
        while self._pending:
            batch = self._pending[0]
            try:
                self._write(batch)
            except Exception as error:
                logger.error(
                    "decision log: cannot write %d decision(s) of %s v%s (%s) to %s: %s: %s; "
                    "they are kept and retried (%d waiting in all)",
                    batch.rows,
                    batch.model,
                    batch.version,
                    batch.role,
                    batch.key,
                    type(error).__name__,
                    error,
                    self.depth(),
                )
                return False
            self._pending.pop(0)
            with self._submit_lock:
                self._pending_rows -= batch.rows
            self._written[batch.model] = self._written.get(batch.model, 0) + batch.rows
        return True

    def _write(self, batch: _Batch) -> None:
        if not batch.data:
            if any(d.deferred is not None for d in batch.parts):
                resolve_deferred(batch.parts)
            batch.data = encode_batches(batch.parts, where=batch.key)
        if batch.uri is None:  # the file first; a retry after this point only redoes the index
            batch.uri = self._lake.put_bytes(batch.key, batch.data)
        times = [d.decided_at for d in batch.parts]
        with session_scope(self._engine) as session:
            # The insert may have committed before its acknowledgement was lost: found by key.
            index_file(
                session, key=batch.key, uri=batch.uri, data=batch.data, model=batch.model,
                version=batch.version, role=batch.role, hour=batch.hour, rows=batch.rows,
                first=min(times), last=max(times),
            )  # fmt: skip
