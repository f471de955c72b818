"""The decision log written by a child process, so the service's event loop never waits for it.

Any Python thread that burns CPU in the service process costs the event loop far more than its
own CPU time: every time the loop gives the GIL up for a socket call, the busy thread takes it
and the loop waits up to the switch interval to get it back. The decision log's writer thread
(grouping, Arrow conversion, parquet encoding, the deferred TreeSHAP of MLflow and V2 answers,
the index insert) did exactly that for a few hundred milliseconds at every file. Measured with
``benchmarks/serving.py`` on 2 cores, score path: p99 15 ms with the writer thread against
6 ms with no decision log at all, and 6 ms with this class.

:class:`ProcessDecisionLog` keeps the :class:`~riskops.serving.decision_log.DecisionLog`
contract (``submit`` never blocks and is bounded, drops are counted and alerted, ``flush``,
``close``) and moves the work into one child process, which runs an ordinary
:class:`DecisionLog` (retries, backoff and index included) on its own GIL:

- ``submit`` (the request path) appends the batch to a list; every ``send_requests`` batches
  the submitting thread pickles them as plain tuples (about 5 µs a request) and queues the
  bytes. One sender thread writes them to the child's socket (blocking I/O, GIL released);
  the same thread pickles what a quiet service leaves behind after ``linger_seconds``.
- The child computes the reason codes MLflow and V2 answers owed (it loads the version's
  scorer from the artifact files the service loaded it from) and hands everything to its
  writer.
- The child reports the decisions it wrote and dropped; the bound ``max_queue`` covers every
  decision accepted and not yet reported written.
- A child that dies is replaced (after 1 s, doubling to 60 s while replacements keep dying).
  The decisions it had received and not yet reported written are counted as dropped, with an
  ERROR: some may have reached the lake, none is counted twice as written, and no loss is
  silent. The same holds for a child that dies or hangs while the log closes.

The child is a fresh interpreter (``python -m riskops.serving.decision_process FD``): it
inherits no thread or lock of the service, and it opens the service's lake and database again
with ``opener`` (:func:`sinks_opener`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

from sqlalchemy.engine import Engine

from riskops.lake.base import Lake
from riskops.serving.decision import Decision, DecisionBatch
from riskops.serving.decision_log import _LOST_AT_CLOSE, DecisionLog, DropLedger
from riskops.settings import ScoringSettings

logger = logging.getLogger(__name__)

Opener = Callable[[], tuple[Lake, Engine]]
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_CLOSE_GRACE_SECONDS = 5.0
_PROGRESS_SECONDS = 0.2
_RESTART_PAUSE_SECONDS = 1.0
_RESTART_PAUSE_MAX = 60.0


def open_sinks(reopen_lake: Callable[[], Lake], database_url: str) -> tuple[Lake, Engine]:
    """The lake and the platform DB engine, opened again in the writer process."""
    from riskops.db import make_engine

    return reopen_lake(), make_engine(database_url)


def sinks_opener(lake: Lake, engine: Engine) -> Opener | None:
    """A picklable ``opener`` of ``lake`` and ``engine`` for the writer process; None when one
    of them cannot be opened in another process (a lake built by hand, an in-memory SQLite)."""
    url = engine.url
    if lake.reopen is None or (
        url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    ):
        return None
    return partial(open_sinks, lake.reopen, url.render_as_string(hide_password=False))


@dataclass(frozen=True)
class _Recipe:
    """How the child rebuilds a version's explanation: the scorer files and reason settings."""

    name: str
    version: str
    files: dict[str, str]
    groups: dict[str, str]
    reference: dict[str, Any]
    reason_count: int
    artifact_sha256: str  # the files must still be the ones the version was served from


@dataclass
class _Child:
    """One writer process and what the parent knows of it."""

    process: Any
    conn: Connection
    sock: socket.socket  # the parent's end, shut down to wake the threads blocked on it
    sent: dict[str, int] = field(default_factory=dict)  # rows handed to this child, per model
    written: dict[str, int] = field(default_factory=dict)  # as the child last reported
    dropped: dict[str, int] = field(default_factory=dict)
    recipes: set[int] = field(default_factory=set)  # recipe ids this child has
    dead: bool = False
    written_off: bool = False  # what it held is counted (once)
    started: float = field(default_factory=time.monotonic)
    reader: threading.Thread | None = None


class ProcessDecisionLog:
    """:class:`~riskops.serving.decision_log.DecisionLog`'s contract, written by a child process.

    Args:
        opener: picklable; called in the child to open the lake and the platform DB engine
            (:func:`sinks_opener`).
        max_queue, batch_rows, flush_seconds, on_drop, retry_max_seconds: as
            :class:`DecisionLog` (the bound counts every decision accepted and not yet
            reported written by the child).
        send_requests: requests pickled and sent together.
        linger_seconds: the longest a request waits before it is sent when fewer arrive.
        nice: the writer process's niceness above the service's (0: the same): the kernel
            then prefers the event loop when both want one core.
    """

    def __init__(
        self,
        opener: Opener,
        *,
        max_queue: int = 100_000,
        batch_rows: int = 5_000,
        flush_seconds: float = 2.0,
        on_drop: Callable[[str, int], None] | None = None,
        retry_max_seconds: float = 30.0,
        send_requests: int = 32,
        linger_seconds: float = 0.05,
        nice: int = 0,
    ) -> None:
        if max_queue < 1 or batch_rows < 1 or flush_seconds <= 0 or send_requests < 1:
            raise ValueError(
                "max_queue, batch_rows and send_requests must be >= 1 and flush_seconds > 0"
            )
        if not 0 <= nice <= 19:
            raise ValueError(f"nice must be in [0, 19], got {nice}")
        self._opener, self._nice = opener, nice
        self._options = {
            "max_queue": max_queue,
            "batch_rows": batch_rows,
            "flush_seconds": flush_seconds,
            "retry_max_seconds": retry_max_seconds,
        }
        self._max_queue, self._send_requests = max_queue, send_requests
        self._linger = linger_seconds
        self._drops = DropLedger(on_drop, max_queue)
        self._lock = threading.Lock()  # outbox, wire and the counters below
        self._pack_lock = threading.Lock()  # one packer at a time (see _pack)
        self._outbox: list[DecisionBatch] = []
        self._outbox_since = 0.0
        self._wire: deque[tuple[str, Any]] = deque()  # ("rows", (bytes, n)) or a control
        self._accepted = 0  # rows accepted by submit
        self._acked = 0  # rows reported written or dropped by children, or lost with one
        self._written: dict[str, int] = {}
        # id of a served version -> (weak reference to it, its recipe's number); a version is
        # an unhashable dataclass, and a new one may reuse a freed one's id, hence the check.
        self._recipes: dict[int, tuple[weakref.ref[Any], int]] = {}
        self._recipe_data: dict[int, _Recipe] = {}
        self._wake = threading.Event()
        self._acks = threading.Condition()
        self._flushed: dict[int, bool | None] = {}  # flushes waited for -> answer (None: none yet)
        self._flush_seq = 0
        self._closed_answer: bool | None = None  # the child's answer to "close"
        self._closing = False
        self._closed: bool | None = None
        self._child: _Child | None = None
        self._sender: threading.Thread | None = None
        self.restarts = 0  # children started after the first one died
        self._restart_pause = _RESTART_PAUSE_SECONDS
        self._stop = threading.Event()  # set by close()

    # --- request path -----------------------------------------------------------------------
    def submit(self, decisions: DecisionBatch | Decision) -> bool:
        """Queue one request's decisions without blocking; False when they were dropped."""
        batch = DecisionBatch.of(decisions) if isinstance(decisions, Decision) else decisions
        n = len(batch)
        with self._lock:
            refused = self._closing or self._accepted - self._acked + n > self._max_queue
            if not refused:
                if not self._outbox:
                    self._outbox_since = time.monotonic()
                self._outbox.append(batch)
                self._accepted += n
                full = len(self._outbox) >= self._send_requests
        if refused:
            why = "the decision log is closed" if self._closing else None
            self._drops.drop(batch.model, n, why)
            return False
        if full:
            self._pack()
        return True

    def _pack(self, marker: tuple[str, Any] | None = None) -> None:
        """Pickle the outbox (in the caller's thread) and queue it for the sender, then
        ``marker`` (flush, close) behind it. One packer at a time: rows taken off the outbox
        are queued before anything another thread queues after them."""
        with self._pack_lock:
            with self._lock:
                batches, self._outbox = self._outbox, []
            if batches:
                self._queue_rows(batches)
            if marker is not None:
                with self._lock:
                    self._wire.append(marker)
        self._wake.set()

    def _queue_rows(self, batches: list[DecisionBatch]) -> None:
        counts: dict[str, int] = {}
        for batch in batches:
            counts[batch.model] = counts.get(batch.model, 0) + len(batch)
        try:
            wire = []
            for batch in batches:
                owed = batch.deferred
                deferred = None
                if owed is not None and not owed.done:
                    deferred = (self._recipe(owed.served), owed.rows, owed.matrix, owed.features)
                wire.append((batch.to_wire(), deferred))
            data = pickle.dumps(("rows", wire), _PROTOCOL)
        except Exception as error:  # a bug, not a state: say so and keep the books right
            logger.exception("decision log: cannot pack %d request(s) for the writer", len(batches))
            with self._lock:
                self._acked += sum(counts.values())
            for model, n in counts.items():
                why = f"they could not be sent to the writer process ({type(error).__name__})"
                self._drops.drop(model, n, why, always=True)
            return
        with self._lock:
            self._wire.append(("rows", (data, counts)))

    def _recipe(self, served: Any) -> int:
        """The number of ``served``'s recipe (the sender gives each child the recipes it lacks
        before the rows that need them)."""
        known = self._recipes.get(id(served))
        if known is not None and known[0]() is served:
            return known[1]
        with self._lock:
            number = len(self._recipe_data) + 1
            self._recipes[id(served)] = (weakref.ref(served), number)
            self._recipe_data[number] = _Recipe(
                served.name, served.version, dict(served.files), dict(served.groups),
                dict(served.reference), served.reason_count, served.artifact_sha256,
            )  # fmt: skip
        return number

    # --- observation ------------------------------------------------------------------------
    def depth(self) -> int:
        """Decisions accepted and not yet reported written (in this process or the child)."""
        return self._accepted - self._acked

    def dropped(self) -> dict[str, int]:
        """Decisions dropped so far, per model (refused, lost with a child, or the child's)."""
        return self._drops.totals()

    def written(self) -> dict[str, int]:
        """Decisions the children reported written to the lake and indexed, per model."""
        with self._lock:
            return dict(self._written)

    @property
    def pid(self) -> int | None:
        """The writer process's pid (None when none runs)."""
        child = self._child
        return None if child is None or child.dead else child.process.pid

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> ProcessDecisionLog:
        """Start the writer process and the sender thread (once)."""
        if self._sender is not None or self._closing:
            raise RuntimeError("the decision log writer is already started, or closed")
        try:
            self._child = self._spawn()
        except OSError as error:  # the sender tries again (decisions wait in memory)
            logger.error(
                "decision log: cannot start the writer process (%s: %s); retrying",
                type(error).__name__, error,
            )  # fmt: skip
        self._sender = threading.Thread(
            target=self._send_loop, name="riskops-decision-log-sender", daemon=True
        )
        self._sender.start()
        return self

    def flush(self, timeout: float = 30.0) -> bool:
        """Write every decision submitted before this call; False if that took over
        ``timeout`` (or the writer process died meanwhile)."""
        if self._sender is None or not self._sender.is_alive():
            return self.depth() == 0
        with self._acks:
            self._flush_seq += 1
            seq = self._flush_seq
            self._flushed[seq] = None
        deadline = time.time() + timeout  # the child skips a flush whose caller gave up
        self._pack(("flush", (seq, timeout, deadline)))
        with self._acks:
            self._acks.wait_for(lambda: self._flushed[seq] is not None, timeout)
            return bool(self._flushed.pop(seq))

    def close(self, timeout: float = 30.0) -> bool:
        """Flush everything and stop the writer process; True when nothing was lost.

        Decisions the child has not reported written when it ends (or when ``timeout`` and a
        grace of 5 s have passed) are counted as dropped and logged."""
        if self._closed is not None:
            return self._closed
        with self._lock:
            self._closing = True
        self._stop.set()
        if self._sender is not None:
            self._pack(("close", timeout))
            self._sender.join(timeout + _CLOSE_GRACE_SECONDS)
            child = self._child
            if self._sender.is_alive():
                logger.error(
                    "decision log: the writer process (pid %s) had not finished %.0f s after "
                    "close; %d decision(s) not reported written are counted as dropped",
                    None if child is None else child.process.pid,
                    timeout + _CLOSE_GRACE_SECONDS, self.depth(),
                )  # fmt: skip
            if child is not None:
                self._end_child(child)
                self._write_off(child, "the writer process ended before writing them")
                self._child = None
            self._sender.join(_CLOSE_GRACE_SECONDS)  # woken by the child's end
            if child is not None and not self._sender.is_alive():
                _release(child)
        lost = self._unsent_rows()
        for model, n in lost.items():
            self._drops.drop(model, n, _LOST_AT_CLOSE, always=True)
        self._drops.report_unlogged()
        self._closed = bool(self._closed_answer) and not lost and self.depth() == 0
        return self._closed

    def __enter__(self) -> ProcessDecisionLog:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the writer process -----------------------------------------------------------------
    def _spawn(self) -> _Child:
        # A fresh interpreter running this module (not multiprocessing's spawn, which imports
        # the parent's __main__ again: a script without a main guard would start twice).
        mine, theirs = socket.socketpair()
        try:
            with theirs:
                process = subprocess.Popen(
                    [sys.executable, "-m", __name__, str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                )  # fmt: skip
        except BaseException:
            mine.close()
            raise
        conn = Connection(os.dup(mine.fileno()))
        child = _Child(process, conn, mine)
        try:
            setup = (self._opener, self._options, self._nice)
            conn.send_bytes(pickle.dumps(setup, _PROTOCOL))
        except (OSError, EOFError):
            child.dead = True
        child.reader = threading.Thread(
            target=self._read_loop, args=(child,), name="riskops-decision-log-reader",
            daemon=True,
        )  # fmt: skip
        child.reader.start()
        logger.info("decision log: writer process started (pid %s)", process.pid)
        return child

    def _send_loop(self) -> None:
        while True:
            try:
                if self._send_round():
                    return
            except Exception:  # the sender must outlive any bug in one round
                logger.exception("decision log: sender thread round failed; retrying in 1 s")
                time.sleep(1.0)

    def _send_round(self) -> bool:
        """Pack what lingers, replace a dead child, send what waits; True once closed."""
        self._wake.wait(self._linger)
        self._wake.clear()
        with self._lock:
            stale = self._outbox and time.monotonic() - self._outbox_since >= self._linger
        if stale:
            self._pack()
        if self._child_dead():
            if self._closing:
                return True  # close() counts what is left
            self._replace_child()
        while True:
            with self._lock:
                if not self._wire:
                    return False
                item = self._wire.popleft()
            if not self._deliver(item):  # the child is gone: the item waits for the next
                with self._lock:
                    self._wire.appendleft(item)
                if self._closing:
                    return True
                self._replace_child()
                continue
            if item[0] == "close":
                self._await_close(item[1])
                return True

    def _deliver(self, item: tuple[str, Any]) -> bool:
        """Send one item to the child; False when the child is gone (the item is not sent)."""
        child = self._child
        if child is None or child.dead:
            return False
        kind, payload = item
        try:
            if kind == "rows":
                data, counts = payload
                with self._lock:
                    missing = {k: v for k, v in self._recipe_data.items() if k not in child.recipes}
                if missing:
                    child.conn.send_bytes(pickle.dumps(("recipes", missing), _PROTOCOL))
                    child.recipes.update(missing)
                child.conn.send_bytes(data)
                with self._lock:  # what the child may now write, or lose if it dies
                    for model, n in counts.items():
                        child.sent[model] = child.sent.get(model, 0) + n
            else:
                child.conn.send_bytes(pickle.dumps((kind, payload), _PROTOCOL))
        except (OSError, EOFError):  # not received: sent again to the next child
            child.dead = True
            return False
        return True

    def _read_loop(self, child: _Child) -> None:
        while True:
            try:
                kind, *payload = pickle.loads(child.conn.recv_bytes())
            except (EOFError, OSError):
                child.dead = True
                self._wake.set()
                with self._acks:
                    self._acks.notify_all()
                return
            if kind == "progress":
                self._progress(child, *payload)
            elif kind == "flushed":
                seq, ok = payload
                with self._acks:
                    if seq in self._flushed:  # not a caller that gave up
                        self._flushed[seq] = ok
                    self._acks.notify_all()
            elif kind == "closed":
                with self._acks:
                    self._closed_answer = payload[0]
                    self._acks.notify_all()

    def _progress(
        self, child: _Child, written: Mapping[str, int], dropped: Mapping[str, int]
    ) -> None:
        """The child's cumulative totals: the increments are acknowledged rows."""
        new_drops = {m: n - child.dropped.get(m, 0) for m, n in dropped.items()}
        with self._lock:
            for model, total in written.items():
                delta = total - child.written.get(model, 0)
                self._written[model] = self._written.get(model, 0) + delta
                self._acked += delta
            self._acked += sum(new_drops.values())
            child.written, child.dropped = dict(written), dict(dropped)
        for model, n in new_drops.items():
            if n:  # the child logged why; count it here, where on_drop lives
                self._drops.drop(model, n, "the writer process could not write them")

    def _await_close(self, timeout: float) -> None:
        with self._acks:
            self._acks.wait_for(
                lambda: self._closed_answer is not None or self._child_dead(),
                timeout + _CLOSE_GRACE_SECONDS,
            )

    def _child_dead(self) -> bool:
        child = self._child
        return child is None or child.dead

    def _replace_child(self) -> None:
        """The child died (or never started): count what it held as dropped, fail pending
        flushes, and start a new one after a pause that doubles while new ones keep dying."""
        child = self._child
        if child is not None:
            self._end_child(child)
            self._write_off(child, "they were lost with the writer process")
            _release(child)  # this is the sender thread: nothing else uses the socket now
            self._child = None
            lived = time.monotonic() - child.started
            pause = _RESTART_PAUSE_SECONDS if lived > _RESTART_PAUSE_MAX else self._restart_pause
            self._restart_pause = min(_RESTART_PAUSE_MAX, pause * 2)
        else:  # never started (the start failed)
            pause = self._restart_pause
        with self._acks:  # flushes the dead child would have answered
            for seq, answer in self._flushed.items():
                if answer is None:
                    self._flushed[seq] = False
            self._acks.notify_all()
        if self._stop.wait(pause):  # close() does not wait for the pause
            return
        self.restarts += 1
        self._child = self._spawn()

    def _write_off(self, child: _Child, why: str) -> None:
        """Count, once, the rows ``child`` received and did not report written or dropped."""
        with self._lock:
            if child.written_off:
                return
            child.written_off = True
            lost = {
                model: n - child.written.get(model, 0) - child.dropped.get(model, 0)
                for model, n in child.sent.items()
            }
            lost = {model: n for model, n in lost.items() if n > 0}
            self._acked += sum(lost.values())
        code = child.process.returncode
        if lost or not self._closing:
            logger.error(
                "decision log: the writer process (pid %s) ended %s(%s); the %d decision(s) it "
                "held are counted as dropped (some may have reached the lake). Check the "
                "service log for the writer's own error and the machine for memory pressure "
                "(OOM killer)",
                child.process.pid, "" if self._closing else "unexpectedly ", _exit(code),
                sum(lost.values()),
            )  # fmt: skip
        for model, n in lost.items():
            self._drops.drop(model, n, why, always=True)

    def _end_child(self, child: _Child) -> int | None:
        """Make sure ``child`` has ended (shutting its socket, then killing it); its exit code."""
        process: subprocess.Popen[bytes] = child.process
        child.dead = True
        if not _ended(process, 0):
            with contextlib.suppress(OSError):
                child.sock.shutdown(socket.SHUT_RDWR)  # the child ends when its socket does
            if not _ended(process, 5.0):
                process.kill()
                _ended(process, 5.0)
        with contextlib.suppress(OSError):
            child.sock.shutdown(socket.SHUT_RDWR)  # wakes our reader (and a blocked send)
        if child.reader is not None and child.reader is not threading.current_thread():
            child.reader.join(timeout=5.0)
        return process.returncode

    def _unsent_rows(self) -> dict[str, int]:
        """Per model, the rows still in this process, taken off the books (at close)."""
        lost: dict[str, int] = {}
        with self._lock:
            batches, self._outbox = self._outbox, []
            items, self._wire = list(self._wire), deque()
            for batch in batches:
                lost[batch.model] = lost.get(batch.model, 0) + len(batch)
            for kind, payload in items:
                if kind == "rows":
                    for model, n in payload[1].items():
                        lost[model] = lost.get(model, 0) + n
            self._acked += sum(lost.values())
        return lost


# --- the child --------------------------------------------------------------------------------
def _release(child: _Child) -> None:
    """Close the parent's descriptors of ``child``'s socket."""
    for close in (child.conn.close, child.sock.close):
        with contextlib.suppress(OSError):
            close()


def _exit(code: int | None) -> str:
    if code is None:
        return "still running, killed"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _ended(process: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


class _Explaining:
    """What :func:`~riskops.serving.served.resolve_deferred` needs of a served version."""

    def __init__(self, recipe: _Recipe) -> None:
        from riskops.serving.engines import engine_for
        from riskops.serving.reasons import Explainer
        from riskops.training.scorers import artifact_digest, load_scorer

        self.name, self.version = recipe.name, recipe.version
        found = artifact_digest(recipe.files)
        if found != recipe.artifact_sha256:
            raise ValueError(
                f"its artifact files changed since the version was loaded (sha256 {found[:12]}, "
                f"served {recipe.artifact_sha256[:12]}): the reasons would come from another model"
            )
        self.engine = engine_for(load_scorer(recipe.files))
        self._explainer = Explainer(
            self.engine.inputs, groups=recipe.groups, reference=recipe.reference,
            categorical=self.engine.categorical, k=recipe.reason_count,
        )  # fmt: skip

    def reasons(self, contributions: Any, features: Mapping[str, Any]) -> Any:
        return self._explainer(contributions, features)


class _Unexplainable:
    """A version whose scorer did not load in the child: every explanation fails, so its
    decisions are written with the ``(unavailable)`` reason code and an ERROR says why."""

    def __init__(self, recipe: _Recipe, error: Exception) -> None:
        self.name, self.version, self._error = recipe.name, recipe.version, error
        self.engine = self

    def contributions(self, matrix: Any) -> Any:
        raise self._error


def _child_main(opener: Opener, conn: Connection, options: dict[str, Any]) -> None:
    """The writer process: open the sinks, then write what arrives until told to close."""
    # Ctrl-C or a SIGTERM to the process group is for the service, which then closes this
    # process's pipe: the decisions in memory are written first, not lost with the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(name)s [decision-log writer] %(levelname)s %(message)s",
    )
    from riskops.serving.served import DeferredReasons, resolve_deferred

    opened = _open(opener)
    if opened is None:  # the service went away while the sinks were down
        return
    lake, engine = opened
    log = DecisionLog(lake, engine, **options).start()
    send_lock = threading.Lock()
    explainers: dict[int, Any] = {}
    stop = threading.Event()

    def send(*message: Any) -> bool:
        try:
            with send_lock:
                conn.send_bytes(pickle.dumps(message, _PROTOCOL))
        except (OSError, EOFError):
            return False
        return True

    last: list[Any] = [None]

    def report(force: bool = True) -> None:
        # Snapshot and send under one lock: totals never arrive older than ones sent before.
        with send_lock:
            now = (log.written(), log.dropped())
            if force or now != last[0]:
                with contextlib.suppress(OSError, EOFError):
                    conn.send_bytes(pickle.dumps(("progress", *now), _PROTOCOL))
                last[0] = now

    def reporter() -> None:
        while not stop.wait(_PROGRESS_SECONDS):
            report(force=False)

    threading.Thread(target=reporter, name="progress", daemon=True).start()
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (OSError, EOFError):  # the service is gone: write what we have, then end
            log.close()
            return
        kind, payload = message
        if kind == "recipes":
            for number, recipe in payload.items():
                try:
                    explainers[number] = _Explaining(recipe)
                except Exception as error:
                    logger.error(
                        "decision log writer: cannot load %s v%s to explain its decisions "
                        "(%s: %s); its refer and decline decisions are written with the "
                        "(unavailable) reason code",
                        recipe.name, recipe.version, type(error).__name__, error,
                    )  # fmt: skip
                    explainers[number] = _Unexplainable(recipe, error)
        elif kind == "rows":
            batches = []
            for values, deferred in payload:
                batch = DecisionBatch.from_wire(values)
                if deferred is not None:
                    number, rows, matrix, features = deferred
                    owed = DeferredReasons(explainers[number], rows, matrix, features)
                    object.__setattr__(batch, "deferred", owed)
                batches.append(batch)
            resolve_deferred(batches, pause=0.0)  # no event loop shares this GIL
            for batch in batches:
                object.__setattr__(batch, "deferred", None)
                log.submit(batch)
        elif kind == "flush":
            seq, timeout, deadline = payload
            left = min(timeout, deadline - time.time())
            ok = left > 0 and log.flush(left)  # a caller that gave up is not waited for
            report()
            send("flushed", seq, ok)
        elif kind == "close":
            ok = log.close(payload)
            stop.set()
            report()
            send("closed", ok)
            return


def _open(opener: Opener) -> tuple[Lake, Engine] | None:
    """``opener()``, retried with backoff: a database or lake that is down at start is waited
    for (the service keeps accepting decisions up to its queue bound meanwhile). None when the
    service is gone meanwhile (this process was handed to init)."""
    backoff, parent = 0.5, os.getppid()
    while os.getppid() == parent:
        try:
            return opener()
        except Exception as error:
            logger.error(
                "decision log writer: cannot open the lake or the platform DB (%s: %s); "
                "retrying in %.0f s",
                type(error).__name__, error, backoff,
            )  # fmt: skip
            time.sleep(backoff)
            backoff = min(30.0, backoff * 2)
    return None


def decision_log_for(
    settings: ScoringSettings, lake: Lake, engine: Engine, on_drop: Callable[[str, int], None]
) -> DecisionLog | ProcessDecisionLog:
    """The service's decision log on ``lake`` and ``engine``, as ``settings`` ask: written by a
    child process, or by a thread of this one (also when the sinks cannot be reopened in a
    child, which is logged)."""
    options: dict[str, Any] = {
        "max_queue": settings.decision_log_queue,
        "batch_rows": settings.decision_log_batch_rows,
        "flush_seconds": settings.decision_log_flush_seconds,
        "on_drop": on_drop,
    }
    if settings.decision_log_writer == "process":
        opener = sinks_opener(lake, engine)
        if opener is not None:
            return ProcessDecisionLog(opener, nice=settings.decision_log_writer_nice, **options)
        logger.warning(
            "decision log: %r or the database %s cannot be opened in a writer process; the "
            "log is written by a thread of the service (expect a higher latency tail)",
            lake, engine.url,
        )  # fmt: skip
    return DecisionLog(lake, engine, **options)


__all__ = ["ProcessDecisionLog", "decision_log_for", "open_sinks", "sinks_opener"]


def _child_entry(fd: int) -> None:
    """``python -m riskops.serving.decision_process FD``: the writer process on socket FD."""
    conn = Connection(fd)
    try:
        opener, options, nice = pickle.loads(conn.recv_bytes())
    except (OSError, EOFError):
        return
    if nice:
        os.nice(nice)
    _child_main(opener, conn, options)


if __name__ == "__main__":  # the module proper, not this __main__ copy, holds the classes
    from riskops.serving import decision_process

    decision_process._child_entry(int(sys.argv[1]))
