"""Synthetic, spec-conformant data for the three model families, streamed to parquet or CSV.

Rows are made in fixed blocks of ``BLOCK_ROWS``, each seeded from ``(seed, family, block)``, and
regrouped into ``chunk_rows``-row chunks for writing; so a file depends only on the seed, the row
count, the drift and the start time, never on ``chunk_rows``, and memory never grows with rows.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from riskops.synthetic import credit, fraud, transfers, writer
from riskops.synthetic.common import US_PER_DAY, BlockContext, Family
from riskops.synthetic.drift import KINDS, Drift, as_drift, parse_drift_args

__all__ = [
    "BLOCK_ROWS",
    "DEFAULT_START",
    "FAMILIES",
    "KINDS",
    "Drift",
    "GenerationReport",
    "generate",
    "iter_blocks",
    "parse_drift_args",
    "resolve_family",
]

BLOCK_ROWS = 65_536
DEFAULT_CHUNK_ROWS = 250_000
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
FAMILIES: dict[str, Family] = {f.name: f for f in (credit.FAMILY, fraud.FAMILY, transfers.FAMILY)}


@dataclass(frozen=True)
class GenerationReport:
    """What one generate() call wrote and what it cost."""

    family: str
    rows: int
    path: Path
    seconds: float
    rows_per_second: float
    peak_rss_mb: float  # the process's high-water mark, measured after writing
    positives: int
    positive_rate: float
    chunks: int
    bytes: int
    seed: int
    drift: dict[str, float] = field(default_factory=dict)
    labels_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        out = asdict(self)
        out["path"] = str(self.path)
        out["labels_path"] = str(self.labels_path) if self.labels_path else None
        return out


def resolve_family(name: str) -> Family:
    """Family by name; model names with hyphens (``fraud-detection``) are accepted too."""
    key = name.strip().lower().replace("-", "_")
    if key not in FAMILIES:
        known = ", ".join(FAMILIES)
        raise ValueError(f"unknown family {name!r}; choose one of: {known}")
    return FAMILIES[key]


def _to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def iter_blocks(
    family: Family,
    rows: int,
    seed: int,
    drift: Drift | Mapping[str, float] | None = None,
    start: datetime = DEFAULT_START,
) -> Iterator[pa.Table]:
    """Yield the ``ceil(rows / BLOCK_ROWS)`` blocks of a data set, each made independently."""
    knobs = as_drift(drift)
    start_us = _to_us(start)
    span_us = int(family.span_days * US_PER_DAY)
    for block in range(math.ceil(rows / BLOCK_ROWS)):
        lo, hi = block * BLOCK_ROWS, min(rows, (block + 1) * BLOCK_ROWS)
        base, extra = np.random.SeedSequence([seed, family.salt, block]).spawn(2)
        yield family.make_block(
            BlockContext(
                seed=seed,
                block=block,
                row_offset=lo,
                n=hi - lo,
                total_rows=rows,
                start_us=start_us,
                t0_us=start_us + lo * span_us // rows,
                t1_us=start_us + hi * span_us // rows,
                rng=np.random.default_rng(base),
                drift_rng=np.random.default_rng(extra),
                drift=knobs,
            )
        )


def _peak_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _labels_projection(family: Family, delay_days: float) -> Callable[[pa.Table], pa.Table]:
    delay_us = round(delay_days * US_PER_DAY)
    schema = family.label_schema

    def project(chunk: pa.Table) -> pa.Table:
        at = pc.add(chunk[family.time_column].cast(pa.int64()), delay_us)
        columns = [chunk[family.id_column], chunk[family.entity_column], chunk[family.target]]
        return pa.Table.from_arrays([*columns, at.cast(schema.field(3).type)], schema=schema)

    return project


def generate(
    family: str,
    rows: int,
    seed: int,
    out_path: Path | str,
    *,
    drift: Drift | Mapping[str, float] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    labels_out: Path | str | None = None,
    label_delay_days: float | None = None,
    labels_only_separate: bool = False,
    start: datetime | None = None,
    progress: bool = True,
) -> GenerationReport:
    """Generate ``rows`` rows of ``family`` into ``out_path`` (.parquet, or .csv), streaming.

    ``labels_out`` also writes (id, entity, target, label_available_at = event time +
    ``label_delay_days``, default per family); ``labels_only_separate`` then drops the target
    from the main file, as when labels arrive later than the events.
    """
    fam = resolve_family(family)
    knobs = as_drift(drift)
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if labels_only_separate and labels_out is None:
        raise ValueError("labels_only_separate=True needs labels_out")
    delay = fam.label_delay_days if label_delay_days is None else float(label_delay_days)
    if not math.isfinite(delay) or delay < 0:
        raise ValueError(f"label_delay_days must be >= 0, got {label_delay_days}")
    out = Path(out_path)
    labels_path = Path(labels_out) if labels_out is not None else None
    if labels_path is not None and labels_path.resolve() == out.resolve():
        raise ValueError("labels_out must differ from out_path")

    main_schema = fam.schema
    if labels_only_separate:
        main_schema = main_schema.remove(main_schema.get_field_index(fam.target))
    positives = 0

    def count(chunk: pa.Table) -> None:
        nonlocal positives
        positives += int(pc.sum(chunk[fam.target]).as_py() or 0)

    began = time.perf_counter()
    with contextlib.ExitStack() as stack:
        main = stack.enter_context(writer.TableSink(out, main_schema))
        sinks = [(main, lambda t: t.select(main_schema.names))]
        if labels_path is not None:
            labels = stack.enter_context(writer.TableSink(labels_path, fam.label_schema))
            sinks.append((labels, _labels_projection(fam, delay)))
        blocks = iter_blocks(fam, rows, seed, knobs, start or DEFAULT_START)
        chunks = writer.stream(
            writer.rechunk(blocks, chunk_rows),
            sinks,
            total_rows=rows,
            description=f"{fam.name} → {out.name}",
            progress=progress,
            on_chunk=count,
        )
    seconds = time.perf_counter() - began
    return GenerationReport(
        family=fam.name,
        rows=rows,
        path=out,
        seconds=round(seconds, 3),
        rows_per_second=round(rows / seconds if seconds > 0 else float("inf"), 1),
        peak_rss_mb=round(_peak_rss_mb(), 1),
        positives=positives,
        positive_rate=positives / rows,
        chunks=chunks,
        bytes=out.stat().st_size,
        seed=seed,
        drift=knobs.active,
        labels_path=labels_path,
    )
