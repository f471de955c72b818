"""Batch scoring: an accepted dataset version scored by the champion on Spark.

The champion is loaded and checked exactly as the scoring service loads it
(:func:`riskops.serving.loader.load_version`: recorded champion, validation passed, signature,
holdout parity). Features are built by Spark with the champion's own plan and vocabulary (not
the new data's), then ``mapInPandas`` scores each Arrow batch with the same engine as the
service (vectorised: one ``booster.predict`` per batch) and explains every referred and declined
row with exact TreeSHAP. The scored rows go to the lake (``scores/<model>/<dataset>/v<n>/``) and
into the decision log (endpoint ``batch``, request id = dataset version), one indexed file per
chunk. For batch rows the input digest (HMAC-SHA256 under the pseudonym key) is over the model
inputs: the raw row is the dataset version's, whose sha256 is recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlmodel import col, select

from riskops import outbox
from riskops.db import session_scope
from riskops.events import DECISIONS_LOGGED, RiskopsEvent, dataset_resource, model_resource
from riskops.features.featureset import read_dataset
from riskops.features.online_store import InProcessStore
from riskops.features.session import is_connect, spark_session
from riskops.features.spark_build import build_features_spark
from riskops.features.tracking import ConnectStages, active_tasks
from riskops.platform import Platform
from riskops.records import DatasetVersion
from riskops.serving.decision import input_digest
from riskops.serving.decision_files import (
    REASON_CODE,
    decision_key,
    encode_columns,
    hour_of,
    index_file,
)
from riskops.serving.loader import load_version
from riskops.serving.reasons import Explainer
from riskops.serving.served import APPROVE, DECLINE, REFER, ServedModel

Progress = Callable[[float, str], None]
SCORES = "scores"
_CACHE: dict[str, Any] = {}  # per Python worker: artifact sha256 -> engine (rebuilt at most once)


class BatchScoringError(RuntimeError):
    """Batch scoring could not run (no champion, no dataset); says which and what to do."""


@dataclass(frozen=True)
class BatchScoringResult:
    """What a batch run scored, where it went and what it cost."""

    model: str
    version: str
    dataset_version: str
    rows: int
    bands: dict[str, int]
    scored_uri: str
    decision_files: int
    seconds: float
    rows_per_second: float
    peak_rss_mb: float
    chunk_rows: int
    timings: dict[str, float] = field(default_factory=dict)
    event_id: str | None = None  # riskops.decisions.logged in the outbox

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class _ChunkScorer:
    """What a Spark worker needs to score an Arrow batch (picklable: paths and plain data)."""

    files: dict[str, str]
    artifact_sha256: str
    low: float
    high: float
    groups: dict[str, str]
    reference: dict[str, Any]
    k: int
    keep: tuple[str, ...]  # passthrough columns kept in the output

    def engine(self) -> Any:
        from riskops.serving.engines import engine_for
        from riskops.training.scorers import load_scorer

        found = _CACHE.get(self.artifact_sha256)
        if found is None:
            _CACHE.clear()
            found = _CACHE[self.artifact_sha256] = engine_for(load_scorer(self.files))
        return found

    def __call__(self, batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        engine = self.engine()
        for frame in batches:
            matrix = engine.frame_matrix(frame)
            scores = engine.probabilities(matrix)
            bands = np.where(
                scores < self.low, APPROVE, np.where(scores >= self.high, DECLINE, REFER)
            )
            reasons = np.full(len(frame), "[]", dtype=object)
            explain_rows = np.flatnonzero(bands != APPROVE)
            if len(explain_rows):
                explain = Explainer(
                    engine.inputs, groups=self.groups, reference=self.reference,
                    categorical=engine.categorical, k=self.k,
                )  # fmt: skip
                contributions = engine.contributions(matrix[explain_rows])
                inputs = frame[engine.inputs].iloc[explain_rows].to_dict("records")
                for j, i in enumerate(explain_rows):
                    found = explain(contributions[j], inputs[j])
                    reasons[i] = json.dumps([r.to_dict() for r in found])
            out = frame[[*self.keep, *engine.inputs]].copy()
            out["decision_id"] = [uuid.uuid4().hex for _ in range(len(frame))]
            out["score"] = scores
            out["band"] = bands
            out["reason_codes"] = reasons
            yield out


def tree_rss_mb() -> float:
    """Resident memory of this process and its children (the JVM, Python workers), in MiB."""
    me = psutil.Process()
    rss = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            rss += child.memory_info().rss
        except psutil.Error:
            continue
    return rss / 2**20


class _Watch:
    """Spark task progress and the peak memory of this process and its children (the JVM of a
    local session; a Connect client has none: the server's memory is the server's)."""

    def __init__(self, spark: Any, report: Progress, start: float, span: float) -> None:
        self.spark, self.report, self.start, self.span = spark, report, start, span
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stages = ConnectStages(spark) if is_connect(spark) else None

    def __enter__(self) -> _Watch:
        if self._stages is not None:
            self._stages.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._stages is not None:
            self._stages.__exit__(*exc)
        self.sample()

    def sample(self) -> None:
        self.peak = max(self.peak, tree_rss_mb())

    def _run(self) -> None:
        last = -1.0
        while not self._stop.wait(1.0):
            self.sample()
            done, total = active_tasks(self.spark, self._stages)
            if total and done / total != last:
                last = done / total
                self.report(self.start + self.span * last, f"scoring tasks {done}/{total}")


def _dataset(platform: Platform, model: str, dataset_version: str | None) -> DatasetVersion:
    with session_scope(platform.engine) as session:
        if dataset_version:
            found = session.get(DatasetVersion, dataset_version)
        else:
            query = select(DatasetVersion).where(DatasetVersion.model == model)
            found = session.exec(query.order_by(col(DatasetVersion.created_at).desc())).first()
    if found is None or found.model != model:
        raise BatchScoringError(
            f"no accepted dataset version {dataset_version or '(latest)'} of {model}: land a "
            "file with `riskops land FILE --model NAME` first"
        )
    return found


def _decision_files(
    platform: Platform, served: ServedModel, folder: Path, dataset: DatasetVersion,
    chunk_rows: int, seconds_per_row: float, report: Progress,
) -> int:  # fmt: skip
    """Write the scored rows into the decision log, one indexed file per chunk."""
    files = sorted(folder.glob("*.parquet"))
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files) or 1
    now = dt.datetime.now(dt.UTC)
    hour = hour_of(now)
    entity = served.spec.entity_column
    written = done = 0
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas()
            n = len(frame)
            inputs = frame[list(served.engine.inputs)]
            digests = [
                input_digest(row, served.input_key)
                for row in inputs.astype(object).where(inputs.notna(), None).to_dict("records")
            ]
            codes = [json.loads(text) for text in frame["reason_codes"]]
            columns = {
                "decision_id": pa.array(frame["decision_id"], pa.string()),
                "decided_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
                "model": pa.array([served.name] * n, pa.string()),
                "version": pa.array([served.version] * n, pa.string()),
                "role": pa.array(["champion"] * n, pa.string()),
                "entity": pa.array(
                    frame[entity] if entity and entity in frame else [None] * n, pa.string()
                ),
                "input_sha256": pa.array(digests, pa.string()),
                "score": pa.array(frame["score"], pa.float64()),
                "band": pa.array(frame["band"], pa.string()),
                "latency_ms": pa.array([seconds_per_row * 1000.0] * n, pa.float64()),
                "endpoint": pa.array(["batch"] * n, pa.string()),
                "request_id": pa.array([dataset.id] * n, pa.string()),
                "reason_codes": pa.array(codes, pa.list_(REASON_CODE)),
            }
            features = {
                name: pa.array(
                    frame[name], pa.string() if name in served.engine.categorical else pa.float64()
                )
                for name in served.engine.inputs
            }
            data = encode_columns(columns, features)
            key = decision_key(served.name, hour, "champion", served.version, uuid.uuid4().hex)
            uri = platform.lake.put_bytes(key, data)
            with session_scope(platform.engine) as session:
                index_file(
                    session, key=key, uri=uri, data=data, model=served.name,
                    version=served.version, role="champion", hour=hour, rows=n, first=now,
                    last=now,
                )  # fmt: skip
            written += 1
            done += n
            report(0.85 + 0.15 * done / total, f"decision log: {done:,} of {total:,} rows")
    return written


def batch_score_stage(
    *,
    platform: Platform,
    model: str,
    dataset_version: str | None = None,
    chunk_rows: int | None = None,
    cache_dir: Path,
    progress: Progress | None = None,
) -> BatchScoringResult:
    """Score an accepted dataset version (default: the newest) with the champion of ``model``.

    ``chunk_rows`` (rows per Arrow batch and per decision-log file) defaults to the platform's
    ``batch_chunk_rows`` (``RISKOPS_SCORING_BATCH_CHUNK_ROWS``).
    """
    chunk_rows = chunk_rows or platform.batch_chunk_rows
    report = progress or (lambda share, message: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    report(0.0, f"loading the champion of {model}")
    served = load_version(platform, model, "champion", store=InProcessStore(), cache_dir=cache_dir)
    if served is None:
        raise BatchScoringError(
            f"{model} has no champion yet: batches are scored once a version is promoted"
        )
    plan, vocabulary = served.plan, served.vocabulary
    dataset = _dataset(platform, model, dataset_version)
    timings["load_seconds"] = round(time.perf_counter() - started, 2)
    files = dict(served.files)
    keep = tuple(
        c
        for c in (plan.passthrough if plan else ())
        if c not in (served.spec.target, *served.spec.protected_attributes)
    )
    scorer = _ChunkScorer(
        files=files, artifact_sha256=served.artifact_sha256, low=served.bands.approve_below,
        high=served.bands.decline_at_or_above, groups=dict(served.groups),
        reference=dict(served.reference), k=served.reason_count, keep=keep,
    )  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="riskops-batch-") as tmp,
        platform.lake.local_copy(platform.lake.key_of(dataset.uri)) as data_path,
        spark_session(app_name="riskops-batch-scoring", **platform.spark.session_options(),
                      conf={"spark.sql.execution.arrow.maxRecordsPerBatch": str(chunk_rows),
                            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS"}) as spark,
    ):  # fmt: skip
        nanos = [f.name for f in pq.read_schema(data_path) if pa.types.is_timestamp(f.type)
                 and f.type.unit == "ns"]  # fmt: skip
        source = read_dataset(spark, Path(data_path), nanos)
        if plan is not None:
            features, _ = build_features_spark(
                source, plan, vocabulary, pseudonym_key=platform.require_pseudonym_key()
            )
        else:
            features = source
        schema = features.select(*keep, *served.engine.inputs).schema
        for name, kind in (("decision_id", "string"), ("score", "double"), ("band", "string"),
                           ("reason_codes", "string")):  # fmt: skip
            schema = schema.add(name, kind)
        out = Path(tmp) / "scored"
        report(0.05, f"scoring {dataset.row_count:,} rows of {dataset.id} with v{served.version} "
                     f"on {platform.spark.describe()}")  # fmt: skip
        with _Watch(spark, report, 0.05, 0.8) as watch:
            features.mapInPandas(scorer, schema).write.parquet(str(out))
        timings["score_seconds"] = round(time.perf_counter() - started - timings["load_seconds"], 2)
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in out.glob("*.parquet"))
        tally = pc.value_counts(pq.read_table(out, columns=["band"]).column("band")).to_pylist()
        found = {item["values"]: item["counts"] for item in tally}
        counts = {b: int(found.get(b, 0)) for b in (APPROVE, REFER, DECLINE)}
        per_row = timings["score_seconds"] / max(rows, 1)
        written = _decision_files(platform, served, out, dataset, chunk_rows, per_row, report)
        prefix = f"{SCORES}/{model}/{dataset.id}/v{served.version}"
        uri = platform.lake.put_tree(prefix, out)
        watch.sample()
    seconds = time.perf_counter() - started
    report(1.0, f"{rows:,} rows scored in {seconds:.1f}s")
    result = BatchScoringResult(
        model=model, version=served.version, dataset_version=dataset.id, rows=rows,
        bands=counts, scored_uri=uri, decision_files=written, seconds=round(seconds, 2),
        rows_per_second=round(rows / seconds, 1) if seconds else 0.0,
        peak_rss_mb=round(watch.peak, 1), chunk_rows=chunk_rows, timings=timings,
    )  # fmt: skip
    return replace(result, event_id=_announce(platform, result, dataset.sha256))


def _announce(platform: Platform, result: BatchScoringResult, dataset_sha256: str) -> str:
    """``riskops.decisions.logged``: the batch's decisions are in the log (the monitor's cue)."""
    event = RiskopsEvent(
        DECISIONS_LOGGED, model_resource(result.model, result.version),
        {"model": result.model, "version": result.version, "rows": result.rows,
         "dataset_version": result.dataset_version, "decision_files": result.decision_files,
         "source": "batch-score"},
        related=((dataset_resource(result.model, dataset_sha256), "dataset"),),
    )  # fmt: skip
    with session_scope(platform.engine) as session:
        return outbox.enqueue(session=session, event=event)
