"""Stream arrow tables chunk by chunk into a parquet or CSV file, with a rich progress bar."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

CSV_SUFFIXES = (".csv",)


def is_csv(path: Path) -> bool:
    """True when the path asks for CSV output (``.csv``); anything else is parquet."""
    return path.suffix.lower() in CSV_SUFFIXES


class TableSink:
    """One output file: written to a hidden ``.part`` file, renamed into place on success.

    Landing watchers therefore never see a half-written file.
    """

    def __init__(self, path: Path | str, schema: pa.Schema, *, compression: str = "snappy") -> None:
        self.path = Path(path)
        self.schema = schema
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._part = self.path.with_name(f".{self.path.name}.part")
        self._writer: pq.ParquetWriter | pacsv.CSVWriter
        if is_csv(self.path):
            self._writer = pacsv.CSVWriter(str(self._part), schema)
        else:
            strings = [f.name for f in schema if pa.types.is_string(f.type)]
            # Ids are unique: dictionary-encoding them only costs time; categories compress well.
            categorical = [name for name in strings if not name.endswith("_id")]
            self._writer = pq.ParquetWriter(
                str(self._part), schema, compression=compression, use_dictionary=categorical
            )

    def write(self, table: pa.Table) -> None:
        """Append one chunk (one parquet row group)."""
        if isinstance(self._writer, pq.ParquetWriter):
            self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        else:
            self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self, *, keep: bool = True) -> None:
        """Finish the file and move it into place, or delete it when ``keep`` is false."""
        self._writer.close()
        if keep:
            os.replace(self._part, self.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                self._part.unlink()

    def __enter__(self) -> TableSink:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(keep=kind is None)


def rechunk(tables: Iterable[pa.Table], chunk_rows: int) -> Iterator[pa.Table]:
    """Regroup a stream of tables into tables of exactly ``chunk_rows`` rows (the last may be
    shorter), holding at most one chunk plus one incoming table in memory."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    pending: list[pa.Table] = []
    buffered = 0
    for table in tables:
        pending.append(table)
        buffered += table.num_rows
        while buffered >= chunk_rows:
            merged = pa.concat_tables(pending)
            yield merged.slice(0, chunk_rows)
            rest = merged.slice(chunk_rows)
            pending, buffered = ([rest] if rest.num_rows else []), rest.num_rows
    if buffered:
        yield pa.concat_tables(pending)


def progress_bar(enabled: bool) -> Progress:
    """A rich progress bar counting rows, drawn on stderr so stdout stays machine-readable."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def stream(
    chunks: Iterable[pa.Table],
    sinks: list[tuple[TableSink, Callable[[pa.Table], pa.Table]]],
    *,
    total_rows: int,
    description: str,
    progress: bool = True,
    on_chunk: Callable[[pa.Table], None] | None = None,
) -> int:
    """Write every chunk to every sink (each through its projection); returns chunks written."""
    count = 0
    with progress_bar(progress) as bar:
        task = bar.add_task(description, total=total_rows)
        for chunk in chunks:
            if on_chunk is not None:
                on_chunk(chunk)
            for sink, project in sinks:
                sink.write(project(chunk))
            count += 1
            bar.advance(task, chunk.num_rows)
    return count
