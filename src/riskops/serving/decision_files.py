"""Decision-log files: how a batch of decisions becomes one parquet object, and how it is read.

Layout in the lake (one file per (model, version, role, hour) group per flush, at most
``batch_rows`` rows each)::

  decisions/model=<model>/hour=<YYYY-MM-DDTHH>/<role>-<version>-<uuid>.parquet

Each file (zstd) has one row per decision: ``decision_id``, ``decided_at`` (timestamp[us, UTC]),
``model``, ``version``, ``role``, ``entity`` (HMAC pseudonym or null), ``input_sha256``,
``score``, ``band``, ``latency_ms``, ``endpoint``, ``request_id``, ``features`` (a struct with
one typed field per model input: numbers as float64, categories as string) and
``reason_codes`` (list<struct<feature: string, contribution: double, text: string>>).
Every file is indexed in the ``decision_log_file`` table with the SHA-256 of its bytes;
:func:`read_decisions` goes through that index and verifies each digest.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskops.db import insert_once
from riskops.hashing import sha256_bytes
from riskops.lake.base import Lake, LakeError, read_verified
from riskops.records import DecisionLogFile

if TYPE_CHECKING:
    from riskops.serving.decision import DecisionBatch

logger = logging.getLogger(__name__)

DECISIONS = "decisions"
FEATURE_PREFIX = "feature."
INPUT_PREFIX = "input."  # raw request fields of versions with a feature plan
HAS_INPUTS = "has_inputs"  # whether the row's file kept raw request fields
REASON_CODE = pa.struct(
    [("feature", pa.string()), ("contribution", pa.float64()), ("text", pa.string())]
)
_UTC_US = pa.timestamp("us", tz="UTC")
_BASE_COLUMNS = [
    "decision_id",
    "decided_at",
    "model",
    "version",
    "role",
    "entity",
    "input_sha256",
    "score",
    "band",
    "latency_ms",
    "endpoint",
    "request_id",
    "reason_codes",
]


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The UTC hour a decision belongs to (its partition)."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def decision_key(model: str, hour: dt.datetime, role: str, version: str, unique: str) -> str:
    """Lake key of one decision-log file."""
    return f"{DECISIONS}/model={model}/hour={hour:%Y-%m-%dT%H}/{role}-{version}-{unique}.parquet"


_SLICE = 512  # rows converted per step of the writer thread before it gives the GIL back


def _array(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    """``pa.array(values, kind)`` in slices, yielding the GIL between them: the writer thread
    shares it with the server's event loop, whose requests would otherwise wait for the whole
    batch (tens of milliseconds for a few thousand decisions). A float NaN becomes null."""
    nan_is_null = pa.types.is_floating(kind)
    if len(values) <= _SLICE:
        return pa.array(values, type=kind, from_pandas=nan_is_null)
    parts = []
    for start in range(0, len(values), _SLICE):
        parts.append(pa.array(values[start : start + _SLICE], type=kind, from_pandas=nan_is_null))
        time.sleep(0)
    return pa.concat_arrays(parts)


def _feature_array(name: str, values: Sequence[Any], where: str) -> pa.Array:
    first = next((v for v in values if v is not None), None)
    if isinstance(first, float):  # the common case: a numeric input, converted in C
        try:
            return _array(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass  # text among the numbers: the careful path below
    # A NaN is a missing value, as in the numeric case.
    values = [None if isinstance(v, float) and v != v else v for v in values]
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values))
    if kinds <= {str}:
        return _array(values, pa.string())
    if str not in kinds:
        return _array([None if v is None else float(v) for v in values], pa.float64())
    # One feature both numeric and text within a batch: keep every value, as text, and say so.
    logger.warning(
        "decision log %s: feature %r has numbers and text in one batch; stored as text "
        "(check the scoring service's feature types)",
        where,
        name,
    )
    return _array([None if v is None else str(v) for v in values], pa.string())


def _feature_columns(rows: list[Mapping[str, Any]]) -> dict[str, Sequence[Any]]:
    """Per feature name, its value in every row (None where a row lacks it)."""
    names = list(rows[0])
    if len(names) > 1:  # the common case, every row with the same inputs: one C call per row
        pick = itemgetter(*names)
        try:
            values = [pick(row) for row in rows]
        except KeyError:  # a row lacks a name
            values = []
        if values and all(len(row) == len(names) for row in rows):
            return dict(zip(names, zip(*values, strict=True), strict=True))
    every: dict[str, None] = {}
    for row in rows:
        every.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in every}


_CHUNK_REQUESTS = 64  # requests encoded per step of the writer before it gives the GIL back


_Chunk = tuple[dict[str, pa.Array], dict[str, pa.Array], dict[str, pa.Array]]


def _raw_inputs(parts: Sequence[DecisionBatch]) -> list[dict[str, Any]] | None:
    """Per decision, its raw request fields (``input_fields`` only); None when no part has any."""
    if all(part.inputs is None for part in parts):
        return None
    rows: list[dict[str, Any]] = []
    for part in parts:
        if part.inputs is None:
            rows.extend({} for _ in range(len(part)))
        else:
            fields = part.input_fields
            rows.extend({f: record.get(f) for f in fields} for record in part.inputs)
    return rows


def _chunk_columns(parts: Sequence[DecisionBatch], where: str) -> _Chunk:
    """The base columns, the feature columns and the raw input columns of ``parts``."""

    def each(column: str) -> list[Any]:
        return list(chain.from_iterable(getattr(part, column) for part in parts))

    # A field shared by one request's decisions: one value per request, repeated in C.
    owner = pa.array(np.repeat(np.arange(len(parts)), [len(part) for part in parts]))

    def shared(column: str, kind: pa.DataType) -> pa.Array:
        return pa.array([getattr(part, column) for part in parts], type=kind).take(owner)

    columns: dict[str, pa.Array] = {
        "decision_id": _array(each("decision_ids"), pa.string()),
        "decided_at": shared("decided_at", _UTC_US),
        "model": shared("model", pa.string()),
        "version": shared("version", pa.string()),
        "role": shared("role", pa.string()),
        "entity": _array(each("entities"), pa.string()),
        "input_sha256": _array(each("input_sha256"), pa.string()),
        "score": _array(each("scores"), pa.float64()),
        "band": _array(each("bands"), pa.string()),
        "latency_ms": shared("latency_ms", pa.float64()),
        "endpoint": shared("endpoint", pa.string()),
        "request_id": shared("request_id", pa.string()),
        "reason_codes": _array(each("reason_codes"), pa.list_(REASON_CODE)),
    }
    features = {
        name: _feature_array(name, values, where)
        for name, values in _feature_columns(each("features")).items()
    }
    raw = _raw_inputs(parts)
    inputs = (
        {}
        if not raw or not any(raw)
        else {
            name: _feature_array(name, values, where)
            for name, values in _feature_columns(raw).items()
        }
    )
    return columns, features, inputs


def _joined(
    chunks: list[tuple[dict[str, pa.Array], dict[str, pa.Array]]],
) -> dict[str, pa.Array] | None:
    """The chunks' struct fields end to end; None when a field's type differs between chunks
    (numbers in one, text in another: the caller encodes the file in one piece)."""
    names: dict[str, None] = {}
    for _, fields in chunks:
        names.update(dict.fromkeys(fields))
    out = {}
    for name in names:
        kinds = {
            f[name].type for _, f in chunks if name in f and not pa.types.is_null(f[name].type)
        }
        if len(kinds) > 1:
            return None
        kind = kinds.pop() if kinds else pa.null()
        out[name] = pa.concat_arrays(
            [
                f[name].cast(kind) if name in f else pa.nulls(len(c["decision_id"]), type=kind)
                for c, f in chunks
            ]
        )
    return out


def encode_batches(parts: Sequence[DecisionBatch], where: str = "") -> bytes:
    """Parquet bytes (zstd) of the decisions of ``parts``; one typed struct field per feature.

    Encoded a few dozen requests at a time, giving the GIL back in between: the writer thread
    shares it with the server's event loop, whose requests would otherwise wait behind it.
    """
    chunks = []
    for start in range(0, len(parts), _CHUNK_REQUESTS):
        chunks.append(_chunk_columns(parts[start : start + _CHUNK_REQUESTS], where))
        time.sleep(0)
    if len(chunks) == 1:
        return encode_columns(*chunks[0])
    features = _joined([(c, f) for c, f, _ in chunks])
    inputs = _joined([(c, i) for c, _, i in chunks]) if any(i for *_, i in chunks) else {}
    if features is None or inputs is None:
        return encode_columns(*_chunk_columns(parts, where))
    columns = {c: pa.concat_arrays([chunk[c] for chunk, *_ in chunks]) for c in chunks[0][0]}
    return encode_columns(columns, features, inputs)


def encode_columns(
    columns: dict[str, pa.Array],
    features: dict[str, pa.Array],
    inputs: dict[str, pa.Array] | None = None,
) -> bytes:
    """Parquet bytes (zstd) of the decision-log columns (``_BASE_COLUMNS``), the model inputs
    (struct ``features``) and, for a version with a feature plan, the raw request fields
    (struct ``inputs``)."""
    missing = [c for c in _BASE_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"decision-log columns missing: {missing}")
    table_columns = {c: columns[c] for c in _BASE_COLUMNS}
    for struct, fields in (("features", features), ("inputs", inputs or {})):
        if fields:  # parquet cannot store a struct without fields
            table_columns[struct] = pa.StructArray.from_arrays(
                list(fields.values()), names=list(fields)
            )
    table = pa.table(table_columns).replace_schema_metadata({"riskops.decision_log": "1"})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def index_file(
    session: Session,
    *,
    key: str,
    uri: str,
    data: bytes,
    model: str,
    version: str,
    role: str,
    hour: dt.datetime,
    rows: int,
    first: dt.datetime,
    last: dt.datetime,
) -> DecisionLogFile:
    """Index a written decision-log file once (a retry after a lost acknowledgement finds it)."""
    record = DecisionLogFile(
        model=model, version=version, role=role, hour=hour, key=key, uri=uri, rows=rows,
        size_bytes=len(data), sha256=sha256_bytes(data), first_decided_at=first,
        last_decided_at=last,
    )  # fmt: skip
    found = select(DecisionLogFile).where(DecisionLogFile.key == key)
    return insert_once(session, record, lambda: session.exec(found).first())


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:  # SQLite returns naive datetimes; we only ever store UTC
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def indexed_files(
    engine: Engine,
    model: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    role: str | None = "champion",
    version: str | None = None,
) -> list[DecisionLogFile]:
    """Index rows of the files that may hold decisions of ``model`` in [since, until)."""
    query = select(DecisionLogFile).where(DecisionLogFile.model == model)
    if since is not None:
        query = query.where(
            DecisionLogFile.hour >= hour_of(since), DecisionLogFile.last_decided_at >= since
        )
    if until is not None:
        query = query.where(DecisionLogFile.hour < until, DecisionLogFile.first_decided_at < until)
    if role is not None:
        query = query.where(DecisionLogFile.role == role)
    if version is not None:
        query = query.where(DecisionLogFile.version == version)
    query = query.order_by(col(DecisionLogFile.hour), col(DecisionLogFile.id))
    with Session(engine) as session:
        return list(session.exec(query))


def _read_file(lake: Lake, record: DecisionLogFile) -> pa.Table:
    data = read_verified(
        lake, record.key, record.sha256, what="decision-log file",
        remedy="the Article 12 record was altered; restore it from a backup before using it",
    )  # fmt: skip
    table = pq.read_table(io.BytesIO(data))
    if table.num_rows != record.rows:
        raise LakeError(f"{record.uri} holds {table.num_rows} rows, its index says {record.rows}")
    flat = table.flatten()  # features.<name> -> one column per feature, inputs.<name> too
    flat = flat.append_column(
        HAS_INPUTS, pa.array(np.full(flat.num_rows, "inputs" in table.column_names))
    )
    return flat.rename_columns([_flat_name(n) for n in flat.column_names])


def _flat_name(name: str) -> str:
    if name.startswith("features."):
        return FEATURE_PREFIX + name[len("features.") :]
    if name.startswith("inputs."):
        return INPUT_PREFIX + name[len("inputs.") :]
    return name


def _as_text_where_types_differ(model: str, tables: list[pa.Table]) -> list[pa.Table]:
    """A feature stored as numbers in one file and as text in another is read as text."""
    types: dict[str, set[pa.DataType]] = {}
    for table in tables:
        for schema_field in table.schema:
            if not pa.types.is_null(schema_field.type):
                types.setdefault(schema_field.name, set()).add(schema_field.type)
    mixed = sorted(name for name, found in types.items() if len(found) > 1)
    if not mixed:
        return tables
    logger.warning(
        "decision log of %s: %s differ in type between files; read as text", model, mixed
    )
    return [
        t.cast(pa.schema([f.with_type(pa.string()) if f.name in mixed else f for f in t.schema]))
        for t in tables
    ]


def read_decisions(
    lake: Lake,
    engine: Engine,
    model: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    role: str | None = "champion",
    version: str | None = None,
) -> pd.DataFrame:
    """Decisions of ``model`` made in [since, until), found through the index, oldest first.

    Args:
        role: "champion", "shadow", or None for both.
        version: only this model version, or None for all.

    Returns:
        One row per decision: the logged fields, ``decided_at`` as UTC, ``reason_codes`` as
        lists of dicts, every feature as a column named ``feature.<name>``, every raw request
        field kept (versions with a feature plan) as ``input.<name>``, and ``has_inputs``
        saying whether the row's file kept them (a batch-scored row does not).

    Raises:
        LakeError: an indexed file is missing or its bytes do not match the indexed digest.
    """
    since = None if since is None else _utc(since)
    until = None if until is None else _utc(until)
    tables = []
    for record in indexed_files(
        engine, model, since=since, until=until, role=role, version=version
    ):
        table = _read_file(lake, record)
        mask = None
        if since is not None:
            mask = pc.greater_equal(table["decided_at"], pa.scalar(since, type=_UTC_US))
        if until is not None:
            before = pc.less(table["decided_at"], pa.scalar(until, type=_UTC_US))
            mask = before if mask is None else pc.and_(mask, before)
        tables.append(table if mask is None else table.filter(mask))
    if not tables:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in _BASE_COLUMNS})
    # "default" promotion fills a feature absent from one file with nulls and unifies a
    # feature that was all-null (type null) in one batch with its type in the others.
    table = pa.concat_tables(_as_text_where_types_differ(model, tables), promote_options="default")
    table = table.sort_by([("decided_at", "ascending"), ("decision_id", "ascending")])
    reasons = table["reason_codes"].to_pylist()
    frame = table.drop_columns(["reason_codes"]).to_pandas()
    frame.insert(frame.columns.get_loc("request_id") + 1, "reason_codes", reasons)
    return frame
