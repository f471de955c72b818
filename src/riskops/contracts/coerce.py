"""Turn raw columns into the types the spec declares, remembering which cells did not fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

# In numeric and time columns these spellings mean "no value"; in text columns only "" does,
# because "NA" may be a real category (a region code, say).
NULL_TOKENS = frozenset({"", "NA", "N/A", "n/a", "null", "NULL", "None", "NaN", "nan", "-"})


def _textual(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def _as_text_with_nulls(series: pd.Series) -> pd.Series:
    text = series.astype("string")
    return text.mask(text.str.strip().isin(NULL_TOKENS))


def to_numeric(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(float64 values, mask of cells that held a value that is not a finite number)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("float64")
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.astype("float64")
        bad = pd.Series(np.isinf(values.to_numpy()), index=series.index)
        return values.where(~bad), bad
    text = _as_text_with_nulls(series)
    values = pd.to_numeric(text.str.strip(), errors="coerce").astype("float64")
    bad = text.notna() & (values.isna() | np.isinf(values.fillna(0)))
    return values.where(~bad), bad


def to_timestamp(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(UTC timestamps, mask of cells that held something that is not a time)."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series
        if getattr(values.dt, "tz", None) is None:
            values = values.dt.tz_localize("UTC")
        else:
            values = values.dt.tz_convert("UTC")
        return values, pd.Series(False, index=series.index)
    text = _as_text_with_nulls(series)
    values = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    return values, text.notna() & values.isna()


def to_category(series: pd.Series) -> pd.Series:
    """Categories as text; numbers in a categorical column are their text (e.g. MCC 5411)."""
    if _textual(series):
        return series.astype("string").astype(object).where(series.notna(), None)
    if pd.api.types.is_float_dtype(series.dtype):
        as_int = series.dropna()
        if (as_int == as_int.round()).all():
            series = series.astype("Int64")
    text = series.astype("string")
    return text.astype(object).where(series.notna(), None)


def to_label(series: pd.Series, allowed: list[object]) -> tuple[pd.Series, pd.Series]:
    """(labels in the spec's own type, mask of non-null cells that are not an allowed value)."""
    numeric = all(isinstance(a, int) and not isinstance(a, bool) for a in allowed)
    if numeric:
        values, bad = to_numeric(series)
        bad = bad | (values.notna() & ~values.isin([float(a) for a in allowed]))  # type: ignore[arg-type]
        return values.where(~bad).astype("Int64"), bad
    text = series.astype("string").str.strip() if _textual(series) else series.astype("string")
    allowed_text = {str(a) for a in allowed}
    bad = text.notna() & ~text.isin(allowed_text)
    return text.astype(object).where(text.notna() & ~bad, None), bad
