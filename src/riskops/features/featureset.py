"""Versioned feature sets: a dataset version in, partitioned parquet and a manifest out."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from riskops.features.definitions import SincePrevious, Velocity
from riskops.features.manifest import DATA, MANIFEST, FeatureSetManifest, featureset_version
from riskops.features.plan import FeaturePlan, feature_plan
from riskops.features.spark_build import build_features_spark, epoch_day, epoch_us
from riskops.features.tracking import run_tracked
from riskops.specs import ModelSpec

__all__ = [
    "FeatureBuildError",
    "FeatureSetManifest",
    "build_feature_set",
    "featureset_version",
    "read_dataset",
]

Progress = Callable[[float, str], None]
DATE_PARTITION = "event_date"
HASH_PARTITION = "bucket"
HASH_BUCKETS = 16


class FeatureBuildError(RuntimeError):
    """A feature build failed; the message names the dataset and the underlying cause."""

    def __init__(self, dataset: str, path: Path | str, cause: str) -> None:
        self.dataset = dataset
        self.path = str(path)
        self.cause = cause
        super().__init__(f"feature build of dataset {dataset} ({path}) failed: {cause}")


def _parquet_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.parquet") if not p.name.startswith((".", "_")))
    return [path]


def _footer(path: Path) -> tuple[list[str], list[str]]:
    """(column names, columns stored as nanosecond timestamps) from the parquet footer."""
    files = _parquet_files(path)
    if not files:
        raise ValueError("no parquet files found")
    meta = pq.read_metadata(files[0])
    names = meta.schema.to_arrow_schema().names
    nanos = []
    for i in range(len(meta.schema)):
        column = meta.schema.column(i)
        logical = json.loads(column.logical_type.to_json() or "{}") if column.logical_type else {}
        if logical.get("Type") == "Timestamp" and logical.get("timeUnit") == "nanoseconds":
            nanos.append(column.path)
    return names, [n for n in nanos if n in names]


@contextmanager
def _conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Set SQL confs for the block, restoring what was there before."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _micros_from_nanos(column: str) -> Column:
    ns = F.col(f"`{column}`")
    return F.timestamp_micros(((ns - F.pmod(ns, F.lit(1000))) / F.lit(1000)).cast("long"))


def read_dataset(spark: SparkSession, path: Path, nanos: list[str]) -> DataFrame:
    """Read a dataset parquet; nanosecond timestamps (pandas' default) become microseconds."""
    df = spark.read.parquet(str(path))
    for column in nanos:
        df = df.withColumn(column, _micros_from_nanos(column))
    return df


def _partition(plan: FeaturePlan) -> tuple[str, Column]:
    if plan.timestamp_column:
        day = epoch_day(epoch_us(plan.timestamp_column)).cast("int")
        return DATE_PARTITION, F.date_from_unix_date(day)
    keys = [plan.id_column or plan.entity_column] if (plan.id_column or plan.entity_column) else []
    cols = [F.col(f"`{c}`") for c in (keys or plan.output_columns)]
    return HASH_PARTITION, F.pmod(F.xxhash64(*cols), F.lit(HASH_BUCKETS))


def _spark_message(error: BaseException) -> str:
    """The Java exception and its root cause, without stack frames."""
    java = getattr(error, "java_exception", None)
    text = str(error).split("JVM stacktrace:")[0]
    if java is not None:
        try:
            text, cause, root = java.toString(), java.getCause(), None
            for _ in range(20):
                if cause is None:
                    break
                root, cause = cause, cause.getCause()
            if root is not None:
                text += f" (root cause: {root.toString()})"
        except Py4JError:
            pass
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)[:2000] or type(error).__name__


def _load(path: Path) -> FeatureSetManifest | None:
    try:
        return FeatureSetManifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def build_feature_set(
    spark: SparkSession,
    dataset_path: Path,
    out_dir: Path,
    spec: ModelSpec,
    *,
    dataset_version: str,
    dataset_sha256: str,
    code_version: str,
    pseudonym_key: str,
    progress: Progress | None = None,
) -> FeatureSetManifest:
    """Build the feature set of one dataset version into ``out_dir`` (data/ + manifest.json).

    Idempotent: when ``out_dir`` already holds this version, it is returned as is. The set is
    written beside ``out_dir`` and renamed into place, so a reader never sees half of it.
    """
    dataset_path, out_dir = Path(dataset_path), Path(out_dir)
    report = progress or (lambda share, message: None)

    def fail(cause: str) -> FeatureBuildError:
        return FeatureBuildError(dataset_version, dataset_path, cause)

    report(0.0, f"planning features of {spec.name} for dataset {dataset_version}")
    try:
        columns, nanos = _footer(dataset_path)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise fail(f"cannot read the parquet footer: {error}") from error
    try:
        plan = feature_plan(spec, columns)
    except ValueError as error:
        raise fail(str(error)) from error
    definitions_hash = plan.definitions_hash()
    version = featureset_version(dataset_sha256, definitions_hash, code_version)
    existing = _load(out_dir / MANIFEST)
    if existing is not None and existing.version == version:
        report(1.0, f"feature set {version} already built")
        return existing

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        manifest = _build(
            spark, dataset_path, staging, plan, nanos, pseudonym_key, report,
            identity=(version, dataset_version, dataset_sha256, definitions_hash, code_version),
        )  # fmt: skip
        _swap_into_place(staging, out_dir)
    except (PySparkException, Py4JError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise fail(_spark_message(error)) from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report(1.0, f"feature set {version}: {manifest.row_count:,} rows")
    return manifest


def _build(
    spark: SparkSession,
    dataset_path: Path,
    staging: Path,
    plan: FeaturePlan,
    nanos: list[str],
    pseudonym_key: str,
    report: Progress,
    *,
    identity: tuple[str, str, str, str, str],
) -> FeatureSetManifest:
    version, dataset_version, dataset_sha256, definitions_hash, code_version = identity
    settings = {
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.legacy.parquet.nanosAsLong": "true" if nanos else "false",
    }
    with _conf(spark, settings):
        source = read_dataset(spark, dataset_path, nanos)
        report(0.05, "learning category vocabularies")
        features, vocabulary = run_tracked(
            spark,
            lambda: build_features_spark(source, plan, pseudonym_key=pseudonym_key),
            report, start=0.05, end=0.15, message="learning category vocabularies",
        )  # fmt: skip
        part_name, part_column = _partition(plan)
        features = features.withColumn(part_name, part_column)
        schema = {f.name: f.dataType.simpleString() for f in features.schema.fields}
        message = f"building and writing {len(plan.features)} features"
        report(0.15, message)
        # Dictionary encoding pays off for categories only; on ids, hashes and doubles it is
        # tried and dropped page after page, which costs a third of the write's CPU.
        writer = features.write.mode("error").option("parquet.enable.dictionary", "false")
        for column in plan.categorical:
            writer = writer.option(f"parquet.enable.dictionary#{column}", "true")
        writer = writer.partitionBy(part_name)
        target = str(staging / DATA)
        # One stage reads, one more per shuffle: each entity of the windowed features.
        windowed = [d for d in plan.derived if isinstance(d, Velocity | SincePrevious)]
        shuffles = {(d.entity, d.timestamp) for d in windowed}
        run_tracked(
            spark, lambda: writer.parquet(target), report,
            start=0.15, end=0.9, message=message, stages=1 + len(shuffles),
        )  # fmt: skip
        report(0.9, "counting rows")
        row_count = spark.read.parquet(str(staging / DATA)).count()
    manifest = FeatureSetManifest(
        model=plan.model,
        version=version,
        row_count=row_count,
        schema=schema,
        dataset_version=dataset_version,
        dataset_sha256=dataset_sha256,
        definitions_hash=definitions_hash,
        code_version=code_version,
        vocabulary=vocabulary,
        numeric_features=list(plan.numeric),
        categorical_features=list(plan.categorical),
        passthrough_columns=list(plan.passthrough),
        pseudonymised_columns=[plan.entity_column] if plan.entity_column else [],
        partition_by=part_name,
        skipped_features=[{"name": s.name, "missing": list(s.missing)} for s in plan.skipped],
        plan=plan.to_dict(),
        created_at=datetime.now(UTC).isoformat(),
    )
    body = json.dumps(manifest.to_dict(), indent=2, sort_keys=True)
    (staging / MANIFEST).write_text(body + "\n", encoding="utf-8")
    return manifest


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished staging folder to ``out_dir``, replacing an older build."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:8]}.old"
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
