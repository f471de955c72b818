"""The scoring service's own SLO tracker: multi-window burn rates per model, off the request path.

Where no Prometheus and Alertmanager watch the service (the embedded defaults), the service
announces ``riskops.sla.breached`` itself. Per request it does a clock read and two or three
integer increments in the current time bucket of the model (:meth:`SloTracker.observe`, on the
event loop, no lock: the evaluation runs on the same loop). Every ``evaluate_seconds`` a
background task sums the buckets of the long and the short window and, as the SRE workbook's
multi-window multi-burn-rate alert does, breaches when both windows burn the budget faster than
``burn_rate`` times the sustainable rate:

* errors: bad = a 5xx answer; burn = (bad / requests) / (1 - availability_objective);
* latency: bad = an answer (not a 5xx) slower than ``latency_threshold_ms``;
  burn = (slow / answered) / (1 - latency_objective);

and the short window holds at least ``min_requests``. A breach is announced at most once per
model and SLO per ``cooldown_seconds``, from a worker thread. Windows are whole buckets (a fifth
of the short window each), so the long window is exact to one bucket. When the champion of a
model changes, its counts start again: a breach names the version that burnt the budget.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from riskops.slo.breach import breach_payload, duration_text
from riskops.slo.settings import SloSettings
from riskops.specs import Slo

if TYPE_CHECKING:
    from riskops.serving.app import ScoringService

log = logging.getLogger(__name__)
SHORT_BUCKETS = 5  # buckets per short window
Announce = Callable[[dict[str, Any]], None]  # a breach payload -> emitted (in a worker thread)


class _Counts:
    """Ring buffers of request, error and slow counts of one model, one slot per bucket."""

    __slots__ = (
        "bucket", "errors", "size", "slot", "slow", "slow_after", "tick", "total", "until",
        "version",
    )  # fmt: skip

    def __init__(self, size: int, bucket: float, slow_after: float, version: str | None) -> None:
        self.size = size
        self.bucket = bucket  # seconds per bucket
        self.total = [0] * size
        self.errors = [0] * size
        self.slow = [0] * size
        self.tick = 0  # the current bucket's number (clock / bucket)
        self.slot = 0  # its index in the rings
        self.until = 0.0  # clock time at which the current bucket ends
        self.slow_after = slow_after  # seconds
        self.version = version

    def advance(self, now: float) -> None:
        """Move to the bucket of ``now``, emptying the buckets skipped since the last one."""
        tick = int(now / self.bucket)
        gap = tick - self.tick
        if gap > 0:
            for step in range(1, min(gap, self.size) + 1):
                slot = (self.tick + step) % self.size
                self.total[slot] = self.errors[slot] = self.slow[slot] = 0
            self.tick = tick
        self.slot = self.tick % self.size
        self.until = (self.tick + 1) * self.bucket

    def window(self, buckets: int) -> tuple[int, int, int]:
        """(requests, errors, slow) of the last ``buckets`` buckets up to the current one."""
        total = errors = slow = 0
        for back in range(min(buckets, self.size)):
            slot = (self.tick - back) % self.size
            total += self.total[slot]
            errors += self.errors[slot]
            slow += self.slow[slot]
        return total, errors, slow


@dataclass(frozen=True)
class Burn:
    """One SLO of one model over both windows."""

    slo: str
    long_bad: int
    long_total: int
    short_bad: int
    short_total: int
    objective: float

    def rate(self, bad: int, total: int) -> float:
        return (bad / total) / (1.0 - self.objective) if total else 0.0

    @property
    def long_rate(self) -> float:
        return self.rate(self.long_bad, self.long_total)

    @property
    def short_rate(self) -> float:
        return self.rate(self.short_bad, self.short_total)


class SloTracker:
    """Burn rates of every served model's latency and error SLOs (see the module docstring)."""

    def __init__(
        self,
        settings: SloSettings,
        announce: Announce,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.announce = announce
        self.clock = clock
        self.bucket_seconds = settings.short_window_seconds / SHORT_BUCKETS
        self.short_buckets = SHORT_BUCKETS
        self.long_buckets = max(
            SHORT_BUCKETS + 1, math.ceil(settings.long_window_seconds / self.bucket_seconds)
        )
        self.models: dict[str, _Counts] = {}
        self.slos: dict[str, Slo] = {}
        self._announced: dict[tuple[str, str], float] = {}  # (model, slo) -> clock time

    # --- the request path --------------------------------------------------------------------
    def observe(self, model: str, status: int, seconds: float) -> None:
        """Count one answered request of ``model`` (a model not tracked yet is skipped)."""
        counts = self.models.get(model)
        if counts is None:
            return
        now = self.clock()
        if now >= counts.until:  # once per bucket
            counts.advance(now)
        slot = counts.slot
        counts.total[slot] += 1
        if status >= 500:
            counts.errors[slot] += 1
        elif seconds > counts.slow_after:
            counts.slow[slot] += 1

    # --- off the request path ----------------------------------------------------------------
    def track(self, model: str, slo: Slo, version: str | None) -> None:
        """Track ``model`` with ``slo``; a new served ``version`` starts its counts again."""
        counts = self.models.get(model)
        slow_after = slo.latency_threshold_ms / 1000.0
        self.slos[model] = slo
        if counts is None or counts.version != version:
            fresh = _Counts(self.long_buckets, self.bucket_seconds, slow_after, version)
            now = self.clock()
            fresh.tick = int(now / self.bucket_seconds)
            fresh.advance(now)
            self.models[model] = fresh  # one assignment: a request in flight counts in either
        else:
            counts.slow_after = slow_after

    def burns(self, model: str) -> list[Burn]:
        """The error and latency burn of ``model`` now."""
        counts, slo = self.models[model], self.slos[model]
        counts.advance(self.clock())
        long_total, long_errors, long_slow = counts.window(self.long_buckets)
        short_total, short_errors, short_slow = counts.window(self.short_buckets)
        return [
            Burn("errors", long_errors, long_total, short_errors, short_total,
                 slo.availability_objective),
            Burn("latency", long_slow, long_total - long_errors, short_slow,
                 short_total - short_errors, slo.latency_objective),
        ]  # fmt: skip

    def breaching(self, burn: Burn) -> bool:
        """Both windows burn faster than the factor, on enough requests."""
        factor = self.settings.burn_rate
        return (
            burn.short_total >= self.settings.min_requests
            and burn.long_rate > factor
            and burn.short_rate > factor
        )

    def evaluate(self) -> list[dict[str, Any]]:
        """The breaches to announce now (each model and SLO at most once per cooldown)."""
        found = []
        now = self.clock()
        for model in list(self.models):
            for burn in self.burns(model):
                if not self.breaching(burn):
                    continue
                last = self._announced.get((model, burn.slo))
                if last is not None and now - last < self.settings.cooldown_seconds:
                    continue
                self._announced[(model, burn.slo)] = now
                found.append(self._payload(model, burn))
        return found

    def _payload(self, model: str, burn: Burn) -> dict[str, Any]:
        counts, slo, s = self.models[model], self.slos[model], self.settings
        what = (
            "5xx answers" if burn.slo == "errors"
            else f"answers slower than {slo.latency_threshold_ms:g} ms"
        )  # fmt: skip
        windows = {"long": duration_text(s.long_window_seconds),
                   "short": duration_text(s.short_window_seconds)}  # fmt: skip
        summary = (
            f"{model} v{counts.version}: {burn.short_bad} of {burn.short_total} requests were "
            f"{what} in the last {windows['short']} ({burn.long_bad} of {burn.long_total} in "
            f"{windows['long']}); the {burn.slo} budget burns {burn.long_rate:.1f}x / "
            f"{burn.short_rate:.1f}x (limit {s.burn_rate:g}x)"
        )
        return breach_payload(
            model=model, slo=burn.slo, severity="page", source="service", version=counts.version,
            detected_at=dt.datetime.now(dt.UTC),
            burn_rates={"long": round(burn.long_rate, 3), "short": round(burn.short_rate, 3)},
            windows=windows, objective=burn.objective,
            counts={"long": {"bad": burn.long_bad, "total": burn.long_total},
                    "short": {"bad": burn.short_bad, "total": burn.short_total}},
            summary=summary,
            extra={"burn_rate_limit": s.burn_rate,
                   "threshold_ms": slo.latency_threshold_ms if burn.slo == "latency" else None},
        )  # fmt: skip

    def follow(self, champions: Mapping[str, tuple[Slo, str] | None]) -> None:
        """Track each model's served champion (``None``: nothing served, counts kept)."""
        for model, served in champions.items():
            if served is not None:
                self.track(model, served[0], served[1])

    async def watch(self, service: ScoringService) -> None:
        """The background task: follow the champions, evaluate, announce in a worker thread."""
        while True:
            try:
                self.follow(
                    {
                        name: (state.champion.spec.slo, state.champion.version)
                        if state.champion else None
                        for name, state in service.models.states.items()
                    }
                )  # fmt: skip
                for payload in self.evaluate():
                    log.error("scoring: SLO breached: %s", payload["summary"])
                    try:
                        await asyncio.to_thread(self.announce, payload)
                    except Exception as error:  # announced again at the next evaluation
                        self._announced.pop((payload["model"], payload["slo"]), None)
                        log.error("scoring: announcing the breach of %s failed: %s; it is "
                                  "tried again", payload["model"], error)  # fmt: skip
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scoring: the SLO tracker failed; it tries again")
            await asyncio.sleep(self.settings.evaluate_seconds)
