"""Read a landed file (CSV or parquet) without trusting its name, its encoding or its content."""

from __future__ import annotations

import codecs
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskops.contracts import violations as v
from riskops.contracts.violations import Violation

PARQUET_MAGIC = b"PAR1"


class UnreadableFile(Exception):
    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.message)
        self.violation = violation


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4)
        if head != PARQUET_MAGIC:
            return False
        handle.seek(-4, 2)
        return handle.read(4) == PARQUET_MAGIC


def _check_utf8(path: Path, name: str, chunk_bytes: int = 1 << 20) -> None:
    """Raise UnreadableFile naming the byte offset and line of the first non-UTF-8 byte."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset, line = 0, 1
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                where = offset + error.start
                line += chunk[: error.start].count(b"\n")
                raise UnreadableFile(
                    Violation(
                        v.ENCODING,
                        f"{name} is not UTF-8: byte 0x{chunk[error.start]:02x} at offset {where} "
                        f"(line {line}); re-export the file as UTF-8",
                        count=1,
                    )
                ) from None
            offset += len(chunk)
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise UnreadableFile(
                Violation(v.ENCODING, f"{name} ends inside a UTF-8 character (truncated?)")
            ) from None


def read_table(path: Path, name: str) -> pd.DataFrame:
    """Read CSV (every cell as text, so the contract can name bad cells) or parquet (typed).

    Raises UnreadableFile with the reason when the file cannot be a table at all.
    """
    size = path.stat().st_size
    if size == 0:
        raise UnreadableFile(Violation(v.EMPTY_FILE, f"{name} is empty (0 bytes)"))
    if _is_parquet(path):
        try:
            return pq.read_table(path).to_pandas()
        except (pa.ArrowException, OSError, ValueError) as error:
            raise UnreadableFile(
                Violation(v.UNREADABLE, f"{name} looks like parquet but cannot be read: {error}")
            ) from None
    if name.lower().endswith(".parquet"):
        raise UnreadableFile(
            Violation(v.UNREADABLE, f"{name} is named .parquet but is not a parquet file")
        )
    _check_utf8(path, name)
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",
            on_bad_lines="error",
        )
    except pd.errors.EmptyDataError:
        raise UnreadableFile(Violation(v.EMPTY_FILE, f"{name} has no header and no rows")) from None
    except (pd.errors.ParserError, ValueError) as error:
        message = str(error).strip().replace("\n", " ")
        raise UnreadableFile(
            Violation(v.UNREADABLE, f"{name} is not a well-formed CSV: {message}")
        ) from None
