"""Test helpers shared by several modules (not fixtures)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from riskops.events import RiskopsEvent


class CollectingSender:
    """Stands in for the Prefect events client in library tests; can be told to fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[RiskopsEvent, str | None]] = []
        self.fail = False

    def __call__(self, batch: list[tuple[RiskopsEvent, str | None]]) -> list[str]:
        if self.fail:
            raise ConnectionError("prefect server unreachable")
        self.sent.extend(batch)
        return [event_id or "x" for _, event_id in batch]

    @property
    def names(self) -> list[str]:
        return [event.name for event, _ in self.sent]


class AppClient:
    """Calls the app in-process through httpx's ASGI transport (starlette's TestClient
    deprecates httpx, and pytest turns that warning into an error)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


def high_water_mark_bytes() -> int:
    """This process's peak resident memory so far, as the kernel keeps it (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")
