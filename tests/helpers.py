"""Test helpers shared by several modules (not fixtures)."""

from __future__ import annotations

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
