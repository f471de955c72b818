"""Compile a feature plan to Spark: the batch feature build (native expressions, no UDFs)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from riskops.features.definitions import (
    EPOCH_WEEKDAY,
    MISSING,
    UNSEEN,
    US_PER_DAY,
    US_PER_HOUR,
    WHITESPACE,
    Bucket,
    DayOfWeek,
    Definition,
    HourOfDay,
    Log1p,
    Normalised,
    Ratio,
    SincePrevious,
    Velocity,
)
from riskops.features.plan import FeaturePlan, check_columns, check_vocabulary


def _col(name: str) -> Column:
    return F.col(f"`{name}`")


def epoch_us(timestamp: str) -> Column:
    """UTC epoch microseconds of a timestamp column (independent of the session time zone)."""
    return F.unix_micros(_col(timestamp))


def epoch_day(us: Column) -> Column:
    """Whole UTC days since the epoch, by exact integer arithmetic."""
    return ((us - F.pmod(us, F.lit(US_PER_DAY))) / F.lit(US_PER_DAY)).cast("long")


SHA256_BLOCK = 64  # bytes; HMAC pads (or first hashes) the key to one block of the hash


def _hmac_pads(key: str) -> tuple[bytes, bytes]:
    """The key XOR ipad and key XOR opad blocks of HMAC-SHA256 (RFC 2104, section 2)."""
    secret = key.encode("utf-8")
    if len(secret) > SHA256_BLOCK:
        secret = hashlib.sha256(secret).digest()
    secret = secret.ljust(SHA256_BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in secret), bytes(b ^ 0x5C for b in secret)


def pseudonym(column: Column, key: str) -> Column:
    """Keyed hash HMAC-SHA256(key, value) as hex; null stays null.

    Spark SQL has sha2 but no HMAC, so HMAC is built from sha2 exactly as RFC 2104 defines it:
    ``sha256((K ^ opad) || sha256((K ^ ipad) || value))``, the pads as binary literals.
    """
    inner_pad, outer_pad = _hmac_pads(key)
    message = column.cast("string").cast("binary")  # UTF-8 bytes, as Python's str.encode
    inner = F.unhex(F.sha2(F.concat(F.lit(bytearray(inner_pad)), message), 256))
    return F.sha2(F.concat(F.lit(bytearray(outer_pad)), inner), 256)


def normalised_raw(column: str) -> Column:
    """Stripped, lower-cased text; null for null or blank (before the vocabulary)."""
    text = F.lower(F.btrim(_col(column).cast("string"), F.lit(WHITESPACE)))
    return F.when(text != F.lit(""), text)


def _normalise(column: str, vocabulary: Sequence[str]) -> Column:
    if not vocabulary:
        return F.when(normalised_raw(column).isNull(), F.lit(MISSING)).otherwise(F.lit(UNSEEN))
    raw = _col(column).cast("string")
    text = normalised_raw(column)
    known = list(vocabulary)
    # Fast path: a value already equal to a vocabulary entry is its own normal form.
    return (
        F.when(raw.isin(known), raw)
        .when(text.isNull(), F.lit(MISSING))
        .when(text.isin(known), text)
        .otherwise(F.lit(UNSEEN))
    )


def _double(name: str) -> Column:
    return _col(name).cast("double")


def _scalar(definition: Definition) -> Column:
    if isinstance(definition, Ratio):
        den = _double(definition.denominator)
        return F.when(den != F.lit(0.0), _double(definition.numerator) / den)
    if isinstance(definition, Log1p):
        return F.log1p(_double(definition.column))  # null for x <= -1
    if isinstance(definition, Bucket):
        x = _double(definition.column)
        index = sum((F.when(x >= F.lit(e), 1).otherwise(0) for e in definition.edges), F.lit(0))
        return F.when(x.isNotNull(), index)
    if isinstance(definition, HourOfDay):
        us = epoch_us(definition.timestamp)
        return F.floor(F.pmod(us, F.lit(US_PER_DAY)) / F.lit(US_PER_HOUR))
    if isinstance(definition, DayOfWeek):
        return F.pmod(epoch_day(epoch_us(definition.timestamp)) + EPOCH_WEEKDAY, F.lit(7))
    raise TypeError(f"not a scalar definition: {definition!r}")


def _windowed(definition: Velocity | SincePrevious) -> Column:
    entity, ts = _col(definition.entity), _col(definition.timestamp)
    us = epoch_us(definition.timestamp)
    # Null times get their own partition so they never enter anyone's range frame. The hash
    # leads the key because ids share long prefixes ("CARD-000…") and Spark sorts on a key
    # prefix: it makes the shuffle sort a third cheaper, and the entity keeps groups exact.
    base = Window.partitionBy(F.xxhash64(entity), entity, ts.isNull()).orderBy(us)
    if isinstance(definition, SincePrevious):
        previous = F.max(us).over(base.rangeBetween(Window.unboundedPreceding, -1))
        value = (us - previous) / F.lit(1_000_000.0)
    else:
        frame = base.rangeBetween(-definition.window_us, -1)
        column = _col(definition.column) if definition.column else None
        if definition.agg == "count":
            value = F.count(column if column is not None else F.lit(1)).over(frame)
        elif definition.agg == "sum":
            value = F.coalesce(F.sum(column.cast("double")).over(frame), F.lit(0.0))
        elif definition.agg == "max":
            value = F.max(column.cast("double")).over(frame)
        else:
            value = F.size(F.collect_set(column).over(frame))
    return F.when(entity.isNotNull() & ts.isNotNull(), value)


def compile_definition(definition: Definition) -> Column:
    """The Spark column of one derived numeric feature, cast to double."""
    if isinstance(definition, Velocity | SincePrevious):
        column = _windowed(definition)
    else:
        column = _scalar(definition)
    return column.cast("double").alias(definition.name)


def learn_vocabulary_spark(df: DataFrame, plan: FeaturePlan) -> dict[str, list[str]]:
    """Per categorical feature: normalised values seen >= ``plan.min_category_count`` times,
    at most ``plan.max_categories`` of the most frequent (ties by value), sorted."""
    if not plan.categorical:
        return {}
    pairs = [
        F.struct(F.lit(c).alias("c"), _col(c).cast("string").alias("raw")) for c in plan.categorical
    ]
    # Count raw values first, so that the (costly) normalisation runs once per distinct value.
    raw_counts = df.select(F.explode(F.array(*pairs)).alias("p")).groupBy("p.c", "p.raw").count()
    counts = (
        raw_counts.select("c", normalised_raw("raw").alias("v"), "count")
        .where(F.col("v").isNotNull())
        .groupBy("c", "v")
        .agg(F.sum("count").alias("n"))
        .where(F.col("n") >= plan.min_category_count)
        .collect()
    )
    return vocabulary_from_counts(plan, [(r["c"], r["v"], int(r["n"])) for r in counts])


def vocabulary_from_counts(
    plan: FeaturePlan, counts: Sequence[tuple[str, str, int]]
) -> dict[str, list[str]]:
    """Apply the plan's cap to (column, value, count) rows already filtered by min count."""
    vocabulary: dict[str, list[str]] = {}
    for column in plan.categorical:
        rows = sorted((-n, v) for c, v, n in counts if c == column)
        vocabulary[column] = sorted(v for _, v in rows[: plan.max_categories])
    return vocabulary


def build_features_spark(
    df: DataFrame,
    plan: FeaturePlan,
    vocabulary: Mapping[str, Sequence[str]] | None = None,
    *,
    pseudonym_key: str,
) -> tuple[DataFrame, dict[str, list[str]]]:
    """Build the plan's columns from ``df`` (lazily); returns (features, vocabulary used).

    The vocabulary is learned from ``df`` when not given (that runs one Spark job).
    """
    if not pseudonym_key:
        raise ValueError("pseudonym_key must not be empty")
    check_columns(df.columns, plan, "the Spark DataFrame")
    if vocabulary is None:
        vocab = learn_vocabulary_spark(df, plan)
    else:
        check_vocabulary(vocabulary, plan)
        vocab = {c: sorted(set(vocabulary[c])) for c in plan.categorical}
    passthrough = [c for c in plan.passthrough if c in set(df.columns)]
    # Windows first, over the raw columns only; everything else is computed after the
    # shuffles, so that the shuffled rows stay narrow.
    windowed = [d for d in plan.derived if isinstance(d, Velocity | SincePrevious)]
    raw = list(dict.fromkeys([*passthrough, *plan.required_inputs]))
    staged = df.select(*[_col(c) for c in raw], *[compile_definition(d) for d in windowed])
    columns: list[Column] = []
    for name in passthrough:
        if name == plan.entity_column:
            columns.append(pseudonym(_col(name), pseudonym_key).alias(name))
        else:
            columns.append(_col(name))
    columns += [_double(c).alias(c) for c in plan.spec_numeric]
    columns += [_col(d.name) if d in windowed else compile_definition(d) for d in plan.derived]
    columns += [
        _normalise(d.column, vocab[d.column]).alias(d.column)
        for d in plan.definitions
        if isinstance(d, Normalised)
    ]
    return staged.select(*columns), vocab
