"""The reload rules of the scoring service, on fakes: what is loaded, retried and announced."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from riskops.serving.metrics import ServiceMetrics
from riskops.serving.models import ServedModels
from riskops.serving.served import LoadRefused


class Registry:
    def __init__(self) -> None:
        self.aliases: dict[tuple[str, str], str] = {}
        self.loads: list[tuple[str, str, str]] = []
        self.broken: set[str] = set()
        self.down = False

    def resolve(self, name: str, role: str) -> str | None:
        if self.down:
            raise ConnectionError("registry unreachable")
        return self.aliases.get((name, role))

    def load(self, name: str, role: str, version: str) -> SimpleNamespace:
        self.loads.append((name, role, version))
        if version in self.broken:
            raise LoadRefused(f"{name} v{version}: the scorer artifact does not load")
        return SimpleNamespace(name=name, version=version, role=role, load_seconds=0.1)


def _models(registry: Registry, announced: list) -> ServedModels:
    return ServedModels(
        ["m"], registry.resolve, registry.load, ServiceMetrics(),
        lambda model, role, why: announced.append((model, role, why)),
    )  # fmt: skip


def test_a_served_version_is_not_loaded_again_and_a_refused_one_not_retried_by_polls():
    registry, announced = Registry(), []
    models = _models(registry, announced)
    registry.aliases[("m", "champion")] = "1"

    async def scenario() -> None:
        await models.load_all()
        assert models.ready() and models.champion("m").version == "1"
        await models.reload("m")  # a poll: nothing changed
        assert registry.loads == [("m", "champion", "1")]
        registry.aliases[("m", "champion")] = "2"
        registry.broken.add("2")
        await models.reload("m")
        await models.reload("m")  # the next poll: v2 already refused, not tried nor announced
        assert [v for _, _, v in registry.loads] == ["1", "2"]
        assert len(announced) == 1 and models.champion("m").version == "1"
        await models.reload("m", force=True)  # an operator asks: tried again
        assert [v for _, _, v in registry.loads] == ["1", "2", "2"] and len(announced) == 2
        registry.broken.clear()
        await models.reload("m", force=True)
        assert models.champion("m").version == "2" and models.states["m"].last_error == {}

    asyncio.run(scenario())


def test_a_registry_outage_keeps_the_champion_and_is_not_a_refusal():
    registry, announced = Registry(), []
    models = _models(registry, announced)
    registry.aliases[("m", "champion")] = "1"

    async def scenario() -> None:
        await models.load_all()
        registry.down = True
        await models.reload("m")
        assert models.champion("m").version == "1" and models.ready()
        assert "did not answer" in models.states["m"].last_error["champion"]
        assert announced == []

    asyncio.run(scenario())


def test_a_promoted_challenger_stops_shadowing_and_a_missing_champion_is_not_ready():
    registry, announced = Registry(), []
    models = _models(registry, announced)
    registry.aliases[("m", "champion")] = "1"
    registry.aliases[("m", "challenger")] = "2"

    async def scenario() -> None:
        await models.load_all()
        assert models.challenger("m").version == "2"
        registry.aliases[("m", "champion")] = "2"
        await models.reload("m")
        assert models.champion("m").version == "2" and models.challenger("m") is None
        fresh = _models(Registry(), [])
        fresh.resolve = lambda name, role: "3" if role == "champion" else None
        fresh.loader = lambda name, role, version: (_ for _ in ()).throw(LoadRefused("bad"))
        await fresh.load_all()
        assert not fresh.ready() and fresh.not_ready() == {"m": "bad"}

    asyncio.run(scenario())


def test_an_event_for_a_model_onboarded_later_adds_it():
    registry = Registry()
    models = ServedModels([], registry.resolve, registry.load, ServiceMetrics(),
                          discover=lambda: ["late"])  # fmt: skip
    registry.aliases[("late", "champion")] = "1"

    async def scenario() -> None:
        await models.load_all()
        assert models.ready() and models.champion("late") is None
        await models.reload("late")  # the promotion event of a model onboarded after start
        assert models.champion("late").version == "1"
        await models.reload("unknown")  # not onboarded: ignored
        assert "unknown" not in models.states

    asyncio.run(scenario())


def test_a_refusal_that_may_lift_is_retried_by_the_next_poll():
    """The alias moves just before the promotion record commits: the first look is refused
    ("records say"), the next poll serves it without an operator."""
    registry, announced = Registry(), []
    models = _models(registry, announced)
    registry.aliases[("m", "champion")] = "1"
    committed = {"2": False}

    def load(name: str, role: str, version: str) -> SimpleNamespace:
        if version == "2" and not committed["2"]:
            raise LoadRefused("the records say v1", retry=True)
        return registry.load(name, role, version)

    models.loader = load

    async def scenario() -> None:
        await models.load_all()
        registry.aliases[("m", "champion")] = "2"
        await models.reload("m")
        assert models.champion("m").version == "1" and len(announced) == 1
        await models.reload("m")  # the same refusal again: not announced twice
        assert len(announced) == 1
        committed["2"] = True
        await models.reload("m")
        assert models.champion("m").version == "2"

    asyncio.run(scenario())
