"""The contract check: every rule of the spec, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from riskops.contracts import coerce
from riskops.contracts import violations as v
from riskops.contracts.reader import UnreadableFile, read_table
from riskops.contracts.violations import ContractResult, Violation, describe_rows, row_numbers
from riskops.specs import ModelSpec


def _rows_violation(
    code: str, column: str | None, mask: pd.Series, what: str, limit: int
) -> Violation | None:
    rows, count = row_numbers(mask, limit)
    if not count:
        return None
    where = f"column {column!r}: " if column else ""
    return Violation(
        code, f"{where}{count} {what} ({describe_rows(rows, count)})", column, rows, count
    )


class _Checker:
    def __init__(self, spec: ModelSpec, raw: pd.DataFrame, default_null_rate: float, limit: int):
        self.spec = spec
        self.raw = raw
        self.limit = limit
        self.default_null_rate = default_null_rate
        self.found: list[Violation] = []
        self.typed: dict[str, pd.Series] = {}
        self.bad: dict[str, pd.Series] = {}  # cells already reported as the wrong type/value

    def add(self, violation: Violation | None) -> None:
        if violation is not None:
            self.found.append(violation)

    def columns_present(self) -> None:
        missing = [c for c in self.spec.required_columns if c not in self.raw.columns]
        for column in missing:
            self.add(
                Violation(
                    v.MISSING_COLUMN,
                    f"required column {column!r} is missing (file has: "
                    f"{', '.join(map(str, self.raw.columns[:20]))})",
                    column,
                )
            )
        dupes = self.raw.columns[self.raw.columns.duplicated()].tolist()
        for column in dupes:
            self.add(Violation(v.UNREADABLE, f"column {column!r} appears twice in the header"))

    def coerce_all(self) -> None:
        spec = self.spec
        numeric = set(spec.features.numeric) | {
            c
            for c in spec.protected_attributes
            if spec.columns.get(c) and _is_numeric_rule(spec, c)
        }
        for column in spec.required_columns:
            if column not in self.raw.columns:
                continue
            series = self.raw[column]
            if column == spec.target:
                values, bad = coerce.to_label(series, spec.resolved_target_values)
                allowed = ", ".join(repr(x) for x in spec.resolved_target_values)
                self.add(
                    _rows_violation(
                        v.TARGET_VALUES, column, bad, f"values not in {{{allowed}}}", self.limit
                    )
                )
            elif column == spec.timestamp_column:
                values, bad = coerce.to_timestamp(series)
                self.add(
                    _rows_violation(
                        v.TYPE_MISMATCH, column, bad, "values are not ISO-8601 times", self.limit
                    )
                )
            elif column in numeric:
                values, bad = coerce.to_numeric(series)
                self.add(
                    _rows_violation(
                        v.TYPE_MISMATCH, column, bad, "values are not finite numbers", self.limit
                    )
                )
            else:
                values, bad = coerce.to_category(series), None
            self.typed[column] = values
            if bad is not None:
                self.bad[column] = bad

    def ranges(self) -> None:
        for column, rule in self.spec.columns.items():
            values = self.typed.get(column)
            if values is None:
                continue
            if rule.min is not None and pd.api.types.is_numeric_dtype(values.dtype):
                self.add(
                    _rows_violation(
                        v.OUT_OF_RANGE,
                        column,
                        values < rule.min,
                        f"values below the minimum {rule.min:g}",
                        self.limit,
                    )
                )
            if rule.max is not None and pd.api.types.is_numeric_dtype(values.dtype):
                self.add(
                    _rows_violation(
                        v.OUT_OF_RANGE,
                        column,
                        values > rule.max,
                        f"values above the maximum {rule.max:g}",
                        self.limit,
                    )
                )
            if rule.allowed is not None:
                bad = values.notna() & ~values.isin(rule.allowed)
                unseen = sorted(map(str, values[bad].unique()))[:5]
                self.add(
                    _rows_violation(
                        v.NOT_ALLOWED,
                        column,
                        bad,
                        f"values outside {rule.allowed} (e.g. {unseen})",
                        self.limit,
                    )
                )

    def nulls(self) -> None:
        spec = self.spec
        must_have = {spec.target, spec.entity_column, spec.timestamp_column, spec.data.id_column}
        for column, values in self.typed.items():
            missing = values.isna()
            if column in self.bad:
                missing = missing & ~self.bad[column]
            if column in must_have:
                self.add(
                    _rows_violation(
                        v.REQUIRED_NULL, column, missing, "rows have no value", self.limit
                    )
                )
                continue
            rule = spec.columns.get(column)
            limit = next(
                x
                for x in (
                    rule.max_null_rate if rule else None,
                    spec.data.max_null_rate,
                    self.default_null_rate,
                )
                if x is not None
            )
            rate = float(missing.mean()) if len(values) else 0.0
            if rate > limit:
                rows, count = row_numbers(missing, self.limit)
                self.add(
                    Violation(
                        v.NULL_RATE,
                        f"column {column!r}: {rate:.1%} nulls exceeds the limit {limit:.1%} "
                        f"({describe_rows(rows, count)})",
                        column,
                        rows,
                        count,
                    )
                )

    def duplicates(self) -> None:
        if not self.spec.data.allow_duplicate_rows:
            dup = self.raw.duplicated(keep="first")
            self.add(
                _rows_violation(
                    v.DUPLICATE_ROWS, None, dup, "rows repeat an earlier row exactly", self.limit
                )
            )
        id_column = self.spec.data.id_column
        if id_column and id_column in self.typed:
            ids = self.typed[id_column]
            dup = ids.notna() & ids.duplicated(keep="first")
            self.add(
                _rows_violation(
                    v.DUPLICATE_IDS, id_column, dup, "ids repeat an earlier row", self.limit
                )
            )

    def frame(self) -> pd.DataFrame:
        extra = [c for c in self.raw.columns if c not in self.typed]
        typed = pd.DataFrame(self.typed, index=self.raw.index)
        return pd.concat([typed, self.raw[extra]], axis=1) if extra else typed


def _is_numeric_rule(spec: ModelSpec, column: str) -> bool:
    rule = spec.columns[column]
    return rule.min is not None or rule.max is not None


def check_frame(
    spec: ModelSpec, raw: pd.DataFrame, *, default_null_rate: float = 0.2, max_rows_listed: int = 10
) -> ContractResult:
    """Check a table against ``spec``; returns the verdict and, if readable, the typed frame."""
    checker = _Checker(spec, raw, default_null_rate, max_rows_listed)
    result = ContractResult(spec.name, checker.found, len(raw), [str(c) for c in raw.columns])
    if len(raw) < spec.data.min_rows:
        what = "no data rows" if len(raw) == 0 else f"only {len(raw)} rows"
        checker.add(
            Violation(
                v.NO_ROWS,
                f"file has {what}; the spec needs at least {spec.data.min_rows}",
                count=len(raw),
            )
        )
    checker.columns_present()
    checker.coerce_all()
    if len(raw):
        checker.ranges()
        checker.nulls()
        checker.duplicates()
    result.frame = checker.frame()
    return result


def check_file(
    spec: ModelSpec,
    path: Path,
    name: str,
    *,
    default_null_rate: float = 0.2,
    max_rows_listed: int = 10,
) -> ContractResult:
    """Read ``path`` and check it; an unreadable file is one violation, never an exception."""
    try:
        raw = read_table(path, name)
    except UnreadableFile as error:
        return ContractResult(spec.name, [error.violation])
    return check_frame(
        spec, raw, default_null_rate=default_null_rate, max_rows_listed=max_rows_listed
    )
