"""whylogs profiles of pandas frames, chunked inputs and Spark DataFrames, built fast.

The views are ordinary whylogs ``DatasetProfileView`` objects (whylogs' merge, serialize and
summaries read them), built by feeding whylogs' sketches whole arrays instead of logging rows
(see :mod:`riskops.monitoring.accumulators`). Differences from ``why.log(df).view()``, all on
purpose: only the columns of the :class:`ProfileSchema` are profiled; numeric columns carry no
frequent-items sketch (whylogs adds one to integer columns; drift uses the KLL); categorical
columns that hold integer codes are profiled as categories (frequent items), not numbers.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from riskops.monitoring.accumulators import CategoricalAccumulator, NumericAccumulator
from riskops.monitoring.schema import ProfileError, ProfileSchema
from riskops.monitoring.whylogs_compat import (
    WHYLOGS_VERSION,
    ColumnProfileView,
    DatasetProfileView,
    MetricConfig,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

DEFAULT_KLL_K = 1024  # whylogs' default (large_kll_k): PSI from sketches within ~0.003 of exact
DEFAULT_CHUNK_ROWS = 500_000


class _DatasetAccumulator:
    """One accumulator per schema column; ``update`` with frames, then ``view`` once."""

    def __init__(self, schema: ProfileSchema, kll_k: int) -> None:
        config = MetricConfig(kll_k=kll_k)
        self.schema = schema
        self.rows = 0
        self._columns: dict[str, NumericAccumulator | CategoricalAccumulator] = {
            **{c: NumericAccumulator(c, config) for c in schema.numeric},
            **{c: CategoricalAccumulator(c, config) for c in schema.categorical},
        }

    def update(self, frame: pd.DataFrame) -> None:
        missing = [c for c in self.schema.columns if c not in frame.columns]
        if missing:
            raise ProfileError(
                f"cannot profile: column(s) {missing} are not in the frame "
                f"(it has {list(frame.columns)[:20]}); check the schema or the data"
            )
        for name, acc in self._columns.items():
            acc.update(frame[name])
        self.rows += len(frame)

    def view(self, dataset_timestamp: dt.datetime | None) -> DatasetProfileView:
        now = dt.datetime.now(dt.UTC)
        columns: dict[str, ColumnProfileView] = {n: a.view() for n, a in self._columns.items()}
        metadata = {
            "whylogs.version": WHYLOGS_VERSION,
            "whylogs.creationTimestamp": str(int(now.timestamp() * 1000)),
            **self.schema.metadata(),
        }
        return DatasetProfileView(
            columns=columns,
            dataset_timestamp=(dataset_timestamp or now).astimezone(dt.UTC),
            creation_timestamp=now,
            metadata=metadata,
        )


def profile_frame(
    frame: pd.DataFrame,
    schema: ProfileSchema,
    *,
    dataset_timestamp: dt.datetime | None = None,
    kll_k: int = DEFAULT_KLL_K,
) -> DatasetProfileView:
    """Profile the schema's columns of one pandas frame.

    Args:
        frame: the rows; other columns are ignored.
        schema: columns by role; identifier columns were refused when it was built.
        dataset_timestamp: the time the data is about (window start); default now.
        kll_k: KLL accuracy parameter (whylogs' default 1024; 256 is 4x smaller, 3x less exact).
    """
    return profile_chunks([frame], schema, dataset_timestamp=dataset_timestamp, kll_k=kll_k)


def profile_chunks(
    chunks: Iterable[pd.DataFrame],
    schema: ProfileSchema,
    *,
    dataset_timestamp: dt.datetime | None = None,
    kll_k: int = DEFAULT_KLL_K,
) -> DatasetProfileView:
    """Profile frames one after the other into one view; memory is one chunk plus the sketches."""
    acc = _DatasetAccumulator(schema, kll_k)
    for chunk in chunks:
        acc.update(chunk)
    return acc.view(dataset_timestamp)


def iter_parquet_chunks(
    path: Path | str, columns: Sequence[str], *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Read only ``columns`` of a parquet file (or directory) as frames of ``chunk_rows`` rows."""
    import pyarrow.dataset as pads

    dataset = pads.dataset(str(path), format="parquet")
    for batch in dataset.to_batches(columns=list(columns), batch_size=chunk_rows):
        yield batch.to_pandas()


def profile_parquet(
    path: Path | str,
    schema: ProfileSchema,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    dataset_timestamp: dt.datetime | None = None,
    kll_k: int = DEFAULT_KLL_K,
) -> DatasetProfileView:
    """Profile a parquet file chunk by chunk (flat memory whatever its size)."""
    chunks = iter_parquet_chunks(path, schema.columns, chunk_rows=chunk_rows)
    return profile_chunks(chunks, schema, dataset_timestamp=dataset_timestamp, kll_k=kll_k)


def merge_views(views: Iterable[DatasetProfileView]) -> DatasetProfileView | None:
    """Merge views with whylogs' own merge (None when there are none)."""
    merged: DatasetProfileView | None = None
    for view in views:
        merged = view if merged is None else merged.merge(view)
    return merged


def _profile_partition(
    batches: Iterator[pd.DataFrame],
    *,
    numeric: tuple[str, ...],
    categorical: tuple[str, ...],
    kll_k: int,
    timestamp_ms: int,
) -> Iterator[pd.DataFrame]:
    """mapInPandas function: one serialized profile per Spark partition."""
    # Python workers are fresh processes: the numpy alias must be in place before whylogs
    # loads there too (STACK.md), so import through the compat module on the worker.
    from riskops.monitoring import whylogs_compat  # noqa: F401

    acc = _DatasetAccumulator(ProfileSchema(numeric=numeric, categorical=categorical), kll_k)
    for batch in batches:
        acc.update(batch)
    if acc.rows:
        moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC)
        yield pd.DataFrame({"profile": [acc.view(moment).serialize()]})


def profile_spark(
    frame: SparkDataFrame,
    schema: ProfileSchema,
    *,
    dataset_timestamp: dt.datetime | None = None,
    kll_k: int = DEFAULT_KLL_K,
) -> DatasetProfileView:
    """Profile a Spark DataFrame: one profile per partition (mapInPandas), merged on the driver.

    Only the serialized sketches (tens of KB per partition) travel to the driver.
    """
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise ProfileError(f"cannot profile: column(s) {missing} are not in the Spark DataFrame")
    moment = (dataset_timestamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    worker = functools.partial(
        _profile_partition,
        numeric=schema.numeric,
        categorical=schema.categorical,
        kll_k=kll_k,
        timestamp_ms=int(moment.timestamp() * 1000),
    )
    rows = frame.select(*schema.columns).mapInPandas(worker, schema="profile binary").collect()
    merged = merge_views(DatasetProfileView.deserialize(bytes(r["profile"])) for r in rows)
    if merged is None:  # no rows at all: an empty profile still records the schema
        return profile_frame(
            pd.DataFrame({c: pd.Series(dtype=_empty_dtype(schema, c)) for c in schema.columns}),
            schema,
            dataset_timestamp=moment,
            kll_k=kll_k,
        )
    merged.set_dataset_timestamp(moment)
    return merged


def _empty_dtype(schema: ProfileSchema, column: str) -> str:
    return "float64" if schema.role(column) == "numeric" else "object"
