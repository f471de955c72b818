"""What a contract check reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

# Machine-readable codes (stable: scripts and dashboards group by them).
UNKNOWN_MODEL = "unknown_model"
EMPTY_FILE = "empty_file"
ENCODING = "encoding"
UNREADABLE = "unreadable"
NO_ROWS = "no_rows"
MISSING_COLUMN = "missing_column"
TYPE_MISMATCH = "type_mismatch"
OUT_OF_RANGE = "out_of_range"
NOT_ALLOWED = "value_not_allowed"
NULL_RATE = "null_rate"
REQUIRED_NULL = "required_value_missing"
DUPLICATE_ROWS = "duplicate_rows"
DUPLICATE_IDS = "duplicate_ids"
TARGET_VALUES = "target_values"


@dataclass(frozen=True)
class Violation:
    """One broken rule: what, where (column and 1-based data rows, header excluded), how many."""

    code: str
    message: str
    column: str | None = None
    rows: list[int] = field(default_factory=list)
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ContractResult:
    """The verdict on one file; ``frame`` is the typed data when it was readable."""

    model: str
    violations: list[Violation]
    row_count: int = 0
    columns: list[str] = field(default_factory=list)
    frame: pd.DataFrame | None = None

    @property
    def accepted(self) -> bool:
        return not self.violations

    def reasons(self) -> list[dict[str, Any]]:
        return [v.to_dict() for v in self.violations]

    def summary(self) -> str:
        if self.accepted:
            return f"accepted: {self.row_count} rows, {len(self.columns)} columns"
        head = "; ".join(v.message for v in self.violations[:3])
        more = f" (+{len(self.violations) - 3} more)" if len(self.violations) > 3 else ""
        return f"rejected: {head}{more}"


def row_numbers(mask: pd.Series, limit: int) -> tuple[list[int], int]:
    """1-based row numbers where ``mask`` is true (at most ``limit``), and how many there are."""
    positions = mask.to_numpy().nonzero()[0]
    return [int(p) + 1 for p in positions[:limit]], len(positions)


def describe_rows(rows: list[int], count: int) -> str:
    listed = ", ".join(str(r) for r in rows)
    return f"rows {listed}" + (f" and {count - len(rows)} more" if count > len(rows) else "")
