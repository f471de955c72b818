"""`riskops cost report`: the runs' usage and cost summed by model and stage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.engine import Engine

from riskops.cost.table import RunCost, run_costs
from riskops.db import session_scope


@dataclass(frozen=True)
class CostLine:
    """The runs of one (model, stage): sums, except memory (the largest peak of any run)."""

    model: str
    stage: str
    runs: int
    failed: int
    cpu_seconds: float
    wall_seconds: float
    max_peak_rss_mib: float
    rows: int  # rows of the runs that report them
    runs_without_rows: int
    cost: float
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CostReportError(ValueError):
    """Rows priced in different currencies cannot be summed."""


def summarise(rows: Iterable[RunCost]) -> list[CostLine]:
    """One line per (model, stage), sorted by model then stage."""
    groups: dict[tuple[str, str], list[RunCost]] = {}
    for row in rows:
        groups.setdefault((row.model, row.stage), []).append(row)
    lines = []
    for (model, stage), runs in sorted(groups.items()):
        currencies = sorted({r.currency for r in runs})
        if len(currencies) > 1:
            raise CostReportError(
                f"runs of {model}/{stage} are priced in {', '.join(currencies)}: report a period "
                "priced in one currency (--since) or reprice the rows"
            )
        counted = [r.rows for r in runs if r.rows is not None]
        lines.append(
            CostLine(
                model=model,
                stage=stage,
                runs=len(runs),
                failed=sum(r.status != "completed" for r in runs),
                cpu_seconds=sum(r.cpu_seconds for r in runs),
                wall_seconds=sum(r.wall_seconds for r in runs),
                max_peak_rss_mib=max(r.peak_rss_mib for r in runs),
                rows=sum(counted),
                runs_without_rows=len(runs) - len(counted),
                cost=sum(r.cost for r in runs),
                currency=currencies[0],
            )
        )
    return lines


def cost_report(engine: Engine, *, since: dt.datetime | None = None) -> list[CostLine]:
    """The report over the runs that started at or after ``since`` (all runs when None)."""
    with session_scope(engine) as session:
        return summarise(run_costs(session=session, since=since))
