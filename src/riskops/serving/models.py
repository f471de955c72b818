"""What the service serves right now, and how a new version replaces it without a dropped request.

Each model has a champion (answers) and optionally a challenger (shadow only). A reload builds
the new :class:`ServedModel` in a worker thread while the old one keeps answering, then swaps
the dict entry in one assignment: a request that already took the old object finishes on it.
A version that fails to load is refused: the previous one stays, the failure is counted and
announced (``riskops.model.load-failed``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from riskops.serving.metrics import ServiceMetrics
from riskops.serving.served import LoadRefused, ServedModel

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
Resolver = Callable[[str, str], "str | None"]  # (model, role) -> the version its alias names
Loader = Callable[[str, str, str], ServedModel]  # (model, role, version) -> loaded and checked
Announce = Callable[[str, str, str], None]  # (model, role, why) -> emit load-failed


@dataclass
class ModelState:
    """Served versions and load status of one model."""

    champion: ServedModel | None = None
    challenger: ServedModel | None = None
    champion_expected: bool = False  # the registry has a champion for it
    last_error: dict[str, str] = field(default_factory=dict)  # role -> why the last load failed
    refused: dict[str, str] = field(default_factory=dict)  # role -> version refused (not retried)


class ServedModels:
    """The models of one service and their reloads."""

    def __init__(
        self,
        names: list[str],
        resolve: Resolver,
        loader: Loader,
        metrics: ServiceMetrics,
        announce: Announce | None = None,
        discover: Callable[[], list[str]] | None = None,
    ) -> None:
        self.discover = discover  # the onboarded models now (for a model onboarded later)
        self.resolve = resolve
        self.loader = loader
        self.metrics = metrics
        self.announce = announce
        self.states = {name: ModelState() for name in names}
        self._locks = {name: asyncio.Lock() for name in names}
        self.started = False

    def ensure(self, name: str) -> None:
        """Serve ``name`` too (a model onboarded after the service started)."""
        if name not in self.states:
            self.states[name] = ModelState()
            self._locks[name] = asyncio.Lock()

    async def discover_models(self) -> None:
        """Add the models onboarded since the service started (off the event loop)."""
        if self.discover is None:
            return
        try:
            for found in await asyncio.to_thread(self.discover):
                self.ensure(found)
        except Exception as error:
            log.warning("scoring: listing the onboarded models failed: %s", error)

    def champion(self, name: str) -> ServedModel | None:
        """The champion answering for ``name`` (None: unknown or not loaded)."""
        state = self.states.get(name)
        return state.champion if state else None

    def challenger(self, name: str) -> ServedModel | None:
        """The challenger shadowing ``name``."""
        state = self.states.get(name)
        return state.challenger if state else None

    def ready(self) -> bool:
        """Started, and every model whose registry has a champion serves one."""
        return self.started and all(
            s.champion is not None for s in self.states.values() if s.champion_expected
        )

    def not_ready(self) -> dict[str, str]:
        """Models that should serve but do not, and why."""
        return {
            name: s.last_error.get(CHAMPION, "loading")
            for name, s in self.states.items()
            if s.champion_expected and s.champion is None
        }

    async def reload(
        self, name: str, roles: tuple[str, ...] = (CHAMPION, CHALLENGER), *, force: bool = False
    ) -> None:
        """Load what the registry names for ``name`` now, off the event loop, and swap it in.

        A version already served is not loaded again; a version already refused is not tried
        again (nor announced again) unless ``force`` (an operator's reload)."""
        if name not in self.states:  # onboarded after the service started?
            await self.discover_models()
        if name not in self.states:
            log.warning("scoring: reload asked for %r, which is not onboarded", name)
            return
        async with self._locks[name]:
            for role in roles:
                await self._reload_role(name, role, force)

    async def _reload_role(self, name: str, role: str, force: bool) -> None:
        state = self.states[name]
        current = state.champion if role == CHAMPION else state.challenger
        try:
            version = await asyncio.to_thread(self.resolve, name, role)
        except Exception as error:  # the registry is down: keep serving what is loaded
            state.last_error[role] = f"the registry did not answer: {type(error).__name__}: {error}"
            log.warning("scoring: cannot look up the %s of %s (%s); %s keeps serving", role,
                        name, error, f"v{current.version}" if current else "nothing")  # fmt: skip
            return
        if role == CHAMPION:
            state.champion_expected = version is not None or current is not None
        if version is None:
            if role == CHALLENGER and current is not None:
                state.challenger = None
                self.metrics.current_version.labels(name, role).set(0)
            elif role == CHAMPION and current is not None:
                log.error("scoring: the registry has no champion of %s any more; v%s keeps "
                          "serving until one is named", name, current.version)  # fmt: skip
            return
        if role == CHALLENGER and state.champion and version == state.champion.version:
            state.challenger = None  # the challenger was promoted: nothing to shadow
            self.metrics.current_version.labels(name, role).set(0)
            return
        if current is not None and current.version == version:
            state.last_error.pop(role, None)
            return
        if not force and state.refused.get(role) == version:
            return
        try:
            fresh = await asyncio.to_thread(self.loader, name, role, version)
        except LoadRefused as error:
            if not error.retry:
                state.refused[role] = version
            self._refused(name, role, str(error), force)
            return
        except Exception as error:  # artifact store down: tried again on the next poll
            self._refused(name, role, f"{type(error).__name__}: {error}", force)
            return
        if role == CHAMPION:
            state.champion = fresh  # the swap: one assignment
        else:
            state.challenger = fresh
        if self.started:  # as load_all does: the new version's objects out of the collector's way
            gc.freeze()
        state.last_error.pop(role, None)
        state.refused.pop(role, None)
        self.metrics.load_seconds.labels(name, fresh.version, role).set(fresh.load_seconds)
        self.metrics.current_version.labels(name, role).set(_number(fresh.version))
        log.info("scoring: %s of %s is now v%s (loaded in %.2fs)", role, name,
                 fresh.version, fresh.load_seconds)  # fmt: skip
        if role == CHAMPION:
            self.metrics.ready.labels(name).set(1)

    def _refused(self, name: str, role: str, why: str, force: bool = False) -> None:
        state = self.states[name]
        repeated = state.last_error.get(role) == why
        state.last_error[role] = why
        if role == CHAMPION:
            state.champion_expected = True
        self.metrics.load_failures.labels(name, role).inc()
        kept = state.champion if role == CHAMPION else state.challenger
        still = f"v{kept.version} keeps serving" if kept else "nothing is served for it"
        log.error("scoring: the new %s of %s was refused: %s; %s", role, name, why, still)
        if self.announce is not None and (force or not repeated):  # not once per poll
            try:
                self.announce(name, role, why)
            except Exception as error:
                log.error("scoring: announcing the refused %s of %s failed: %s", role, name, error)

    async def load_all(self) -> None:
        """Initial load of every model; the service is ready when this returns."""
        for name in list(self.states):
            await self.reload(name)
        self.started = True
        # The loaded models (trees, tables, vocabularies) live as long as the process: keep them
        # out of the collector's generations, so a collection does not walk them per request.
        gc.collect()
        gc.freeze()
        for name, state in self.states.items():
            self.metrics.ready.labels(name).set(1 if state.champion else 0)


def _number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return -1.0
