"""Shared pieces of the generators: the family record, block context and vectorised helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from riskops.synthetic.drift import Drift

US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR
TIMESTAMP = pa.timestamp("us", tz="UTC")

_MASK64 = (1 << 64) - 1
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class BlockContext:
    """Everything one block of rows needs; a block is a pure function of this record."""

    seed: int
    block: int
    row_offset: int  # global index of the block's first row
    n: int  # rows in this block
    total_rows: int
    start_us: int  # start of the whole generated period
    t0_us: int  # this block's time window [t0, t1)
    t1_us: int
    rng: np.random.Generator  # base data
    drift_rng: np.random.Generator  # only drift draws, so drift never perturbs the base data
    drift: Drift


@dataclass(frozen=True)
class Family:
    """One model family: its arrow schema, key columns and block generator."""

    name: str
    salt: int
    schema: pa.Schema
    id_column: str
    entity_column: str
    time_column: str
    target: str
    span_days: float
    label_delay_days: float
    new_category_column: str
    missing_column: str
    make_block: Callable[[BlockContext], pa.Table]

    @property
    def label_schema(self) -> pa.Schema:
        """Schema of the delayed-labels file."""
        keys = [self.schema.field(c) for c in (self.id_column, self.entity_column, self.target)]
        return pa.schema([*keys, pa.field("label_available_at", TIMESTAMP, nullable=False)])


def _mix_py(value: int) -> int:
    """splitmix64 finaliser on a Python int (seed mixing, no numpy overflow warnings)."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def hash_uniform(keys: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """Deterministic uniforms in [0, 1) per key: stable entity attributes without a lookup table."""
    offset = np.uint64(_mix_py((seed << 20) ^ salt))
    z = (np.asarray(keys).astype(np.uint64) + offset) * _M1
    z ^= z >> np.uint64(30)
    z *= _M2
    z ^= z >> np.uint64(27)
    z *= _M3
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def hash_normal(keys: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """Deterministic standard normals per key (Box-Muller on two hashed uniforms)."""
    u1 = hash_uniform(keys, seed, salt)
    u2 = hash_uniform(keys, seed, salt + 7919)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def choose(rng: np.random.Generator, probs: Sequence[float], n: int) -> np.ndarray:
    """Category indices drawn from one probability vector."""
    cum = np.cumsum(np.asarray(probs, dtype=np.float64))
    return np.minimum(np.searchsorted(cum / cum[-1], rng.random(n), side="right"), len(cum) - 1)


def choose_by_group(rng: np.random.Generator, table: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Category indices where row i draws from probability row ``table[group[i]]``."""
    cum = np.cumsum(np.asarray(table, dtype=np.float64), axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(group))
    return np.minimum((u[:, None] >= cum[group]).sum(axis=1), table.shape[1] - 1)


def pick_from_uniform(u: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """Category indices from given uniforms (for hashed, per-entity categories)."""
    cum = np.cumsum(np.asarray(probs, dtype=np.float64))
    return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(cum) - 1)


def cycle_times(
    rng: np.random.Generator, n: int, t0: int, t1: int, hourly: Sequence[float]
) -> np.ndarray:
    """``n`` sorted microsecond times in [t0, t1) following a 24-hour intensity profile."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    weights = np.asarray(hourly, dtype=np.float64)
    first = (t0 // US_PER_HOUR + 1) * US_PER_HOUR
    edges = np.concatenate(([t0], np.arange(first, t1, US_PER_HOUR, dtype=np.int64), [t1]))
    edges = np.unique(edges)
    if len(edges) < 2:
        return np.full(n, t0, dtype=np.int64)
    hours = (edges[:-1] // US_PER_HOUR) % 24
    cum = np.concatenate(([0.0], np.cumsum(weights[hours] * np.diff(edges))))
    u = np.sort(rng.random(n)) * cum[-1]
    times = np.interp(u, cum, edges.astype(np.float64)).astype(np.int64)
    return np.clip(times, t0, max(t0, t1 - 1))


def hour_of_day(times_us: np.ndarray) -> np.ndarray:
    """UTC hour of day (0-23) of microsecond timestamps."""
    return (times_us // US_PER_HOUR) % 24


def burst_offsets(sizes: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Offset of each event from its burst's first event, given per-event gaps (bursts concat)."""
    if len(gaps) == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    gaps = gaps.astype(np.int64).copy()
    gaps[starts] = 0
    total = np.cumsum(gaps)
    return total - np.repeat(total[starts], sizes)


def fixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """String ids ``prefix + zero-padded number`` built straight into an arrow buffer."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and (numbers.min() < 0 or numbers.max() >= 10**width):
        raise ValueError(f"id numbers do not fit in {width} digits")
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    size = len(head) + width
    buf = np.empty((len(numbers), size), dtype=np.uint8)
    buf[:, : len(head)] = head
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    buf[:, len(head) :] = (numbers[:, None] // powers) % 10 + ord("0")
    offsets = np.arange(len(numbers) + 1, dtype=np.int32) * size
    return pa.StringArray.from_buffers(
        len(numbers), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(buf).ravel())
    )


def strings(categories: Sequence[str], idx: np.ndarray) -> pa.Array:
    """Plain string column from category labels and indices."""
    return pa.array(list(categories), pa.string()).take(pa.array(np.asarray(idx, dtype=np.int64)))


def floats(values: np.ndarray, null: np.ndarray | None = None, decimals: int = 2) -> pa.Array:
    """float64 column rounded to ``decimals``, with optional null mask."""
    return pa.array(np.round(values, decimals), pa.float64(), mask=null)


def ints(values: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """int64 column with optional null mask."""
    return pa.array(np.asarray(values, dtype=np.int64), pa.int64(), mask=null)


def times(values_us: np.ndarray) -> pa.Array:
    """UTC timestamp column from microseconds since the epoch."""
    return pa.array(np.asarray(values_us, dtype=np.int64), TIMESTAMP)
