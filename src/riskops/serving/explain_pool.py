"""Exact TreeSHAP for the service's reason codes, in a worker process beside the event loop.

A refer or decline needs its reasons (about 0.3 ms of memory-bound table lookups per row, more
when the request path has just pushed the tables out of the cache), and in one Python process
that time is the event loop's: every other request waits behind it. :class:`ContributionPool`
hands the rows to a worker process instead, which holds the version's TreeSHAP tables and uses
the machine's other core; the request that asked awaits the answer and the loop serves the rest
meanwhile. The numbers are the same (the same tables, built from the same booster).

A version is *warm* once the worker has built its tables (at load, before the version is
swapped in). A version that is not warm, a broken worker or a slow answer falls back to the
engine's own in-process computation: reasons are never lost, only slower.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from riskops.serving.engines import LightGBMEngine
from riskops.serving.served import ServedModel

log = logging.getLogger(__name__)

_WORKER_CACHE = 4  # versions whose tables a worker keeps (champion and challenger of two)
_tables: OrderedDict[str, Any] = OrderedDict()  # in the worker process only


def _load(key: str, booster: str) -> int:
    """Build the tables of one version from its booster (LightGBM's model text); their bytes."""
    import lightgbm

    from riskops.serving.treeshap import TreeShap

    if key not in _tables:
        _tables[key] = TreeShap.from_booster(lightgbm.Booster(model_str=booster))
        while len(_tables) > _WORKER_CACHE:
            _tables.popitem(last=False)
    _tables.move_to_end(key)
    return int(_tables[key].table_bytes)


def _contributions(key: str, matrix: np.ndarray) -> np.ndarray:
    """Exact TreeSHAP per input (log-odds), the bias column dropped, as the engine computes."""
    explainer = _tables.get(key)
    if explainer is None:  # evicted, or a restarted worker: the caller computes it in-process
        raise LookupError(f"the explain worker holds no tables for {key}")
    return explainer.contributions(matrix)[:, :-1]


def _key(served: ServedModel) -> str:
    return f"{served.name}/{served.version}/{served.artifact_sha256}"


class ContributionPool:
    """Worker processes computing TreeSHAP contributions for served LightGBM versions.

    Args:
        workers: worker processes (each holds the tables of the versions it served).
        timeout: seconds a request waits for the worker before computing in-process.
    """

    def __init__(self, workers: int = 1, timeout: float = 2.0) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._workers = workers
        self._pool = self._executor()
        self._timeout = timeout
        self._warm: set[str] = set()
        self._rewarming: set[asyncio.Task[bool]] = set()

    def _executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")  # the service has threads: never fork
        return ProcessPoolExecutor(max_workers=self._workers, mp_context=context)

    @staticmethod
    def supports(served: ServedModel) -> bool:
        """Whether ``served`` is explained by TreeSHAP (a LightGBM booster)."""
        return isinstance(served.engine, LightGBMEngine)

    def warm(self, served: ServedModel, timeout: float = 300.0) -> bool:
        """Build ``served``'s tables in the worker (blocking: call it from a loader thread)."""
        if not self.supports(served):
            return False
        key = _key(served)
        try:
            booster = served.engine.booster.model_to_string()  # type: ignore[attr-defined]
            self._pool.submit(_load, key, booster).result(timeout=timeout)
        except Exception as error:  # the version is explained in-process instead
            log.warning("scoring: reasons of %s v%s stay in-process: the explain worker could "
                        "not load them (%s: %s)", served.name, served.version,
                        type(error).__name__, error)  # fmt: skip
            return False
        self._warm.add(key)
        return True

    def is_warm(self, served: ServedModel) -> bool:
        """Whether requests for ``served`` go to the worker."""
        return _key(served) in self._warm

    async def contributions(self, served: ServedModel, matrix: np.ndarray) -> np.ndarray:
        """``served.engine.contributions(matrix)``, computed by the worker when it can."""
        key = _key(served)
        if key not in self._warm:
            return served.engine.contributions(matrix)
        future = self._pool.submit(_contributions, key, matrix)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self._timeout)
        except (BrokenProcessPool, LookupError, TimeoutError, OSError) as error:
            if isinstance(error, BrokenProcessPool):  # a worker died: new workers, warmed again
                self._warm.clear()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._executor()
            if isinstance(error, BrokenProcessPool | LookupError):
                self._warm.discard(key)
                task = asyncio.create_task(asyncio.to_thread(self.warm, served))
                self._rewarming.add(task)
                task.add_done_callback(self._rewarming.discard)
            log.error("scoring: the explain worker failed for %s v%s (%s); reasons computed "
                      "in-process", served.name, served.version, type(error).__name__)  # fmt: skip
            return served.engine.contributions(matrix)

    def close(self) -> None:
        """Stop the workers (queued work is cancelled; requests already answered)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
