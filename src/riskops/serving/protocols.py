"""Request bodies of the three protocols, turned into a list of records (dicts).

* riskops: ``{...fields...}`` (one record) or ``{"records": [{...}, ...]}``;
* MLflow scoring protocol (``mlflow models serve``): ``dataframe_split``, ``dataframe_records``,
  ``inputs`` (records or columns) and ``instances``;
* Open Inference Protocol V2 (KServe, MLServer, Triton): ``inputs`` as named tensors, one per
  column (MLServer's pandas codec, KServe's InferInput) or one 2-D tensor whose columns are the
  model's request fields in schema order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_V2_TYPES = {
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
}  # fmt: skip


class ProtocolError(ValueError):
    """The body does not follow the protocol (HTTP 400 or 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _records_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(f"{where} must be an array of records")
    return value


def riskops_records(body: Any) -> tuple[list[Any], bool]:
    """(records, batch?) of a riskops score request."""
    if isinstance(body, dict) and "records" in body:
        extra = sorted(set(body) - {"records"})
        if extra:
            raise ProtocolError(f"a batch body holds only 'records'; unexpected keys {extra}")
        return _records_list(body["records"], "records"), True
    if isinstance(body, dict):
        return [body], False
    raise ProtocolError('the body must be a JSON object (one record) or {"records": [...]}')


def _columns_to_records(columns: Sequence[Any], data: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ProtocolError(f"{where}.columns must be an array of column names")
    if len(set(columns)) != len(columns):
        raise ProtocolError(f"{where}.columns names a column twice")
    if not isinstance(data, list):
        raise ProtocolError(f"{where}.data must be an array of rows")
    out = []
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ProtocolError(f"{where}.data[{i}] must be an array of {len(columns)} values")
        out.append(dict(zip(columns, row, strict=True)))
    return out


def _columnar(mapping: dict[str, Any], where: str) -> list[dict[str, Any]]:
    lengths = {k: len(v) for k, v in mapping.items() if isinstance(v, list)}
    if len(lengths) != len(mapping) or len(set(lengths.values())) > 1:
        raise ProtocolError(f"{where}: every column must be an array of the same length")
    n = next(iter(lengths.values()), 0)
    return [{k: mapping[k][i] for k in mapping} for i in range(n)]


def mlflow_records(body: Any) -> list[Any]:
    """Records of an MLflow ``/invocations`` body."""
    if not isinstance(body, dict):
        raise ProtocolError("the body must be a JSON object with one of dataframe_split, "
                            "dataframe_records, inputs or instances", 400)  # fmt: skip
    keys = [k for k in ("dataframe_split", "dataframe_records", "inputs", "instances") if k in body]
    if len(keys) != 1:
        raise ProtocolError(
            "the body must have exactly one of dataframe_split, dataframe_records, inputs, "
            f"instances (got {sorted(body)})",
            400,
        )
    extra = sorted(set(body) - {keys[0], "params"})
    if extra:
        raise ProtocolError(f"unexpected keys {extra} beside {keys[0]}", 400)
    value = body[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(value, dict):
            raise ProtocolError("dataframe_split must be an object with columns and data")
        return _columns_to_records(value.get("columns"), value.get("data"), "dataframe_split")
    if isinstance(value, dict):
        return _columnar(value, keys[0])
    return _records_list(value, keys[0])


def v2_records(body: Any, fields: Sequence[str]) -> tuple[list[dict[str, Any]], str | None]:
    """(records, request id) of a V2 ``/infer`` body."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise ProtocolError("a V2 inference request is an object with an 'inputs' array", 400)
    request_id = body.get("id")
    if request_id is not None and (
        not isinstance(request_id, str) or not 0 < len(request_id) <= 200
    ):
        raise ProtocolError("'id' must be a string of 1 to 200 characters")
    tensors = body["inputs"]
    columns: dict[str, list[Any]] = {}
    for i, tensor in enumerate(tensors):
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise ProtocolError(f"{where} must be an object (name, shape, datatype, data)")
        name, shape, dtype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
        data = tensor.get("data")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"{where}.name must be a non-empty string")
        if not isinstance(dtype, str) or dtype not in _V2_TYPES:
            raise ProtocolError(f"{where}.datatype {dtype!r} is not a V2 datatype")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(s, int) and s >= 0 for s in shape)
        ):
            raise ProtocolError(f"{where}.shape must be a list of non-negative integers")
        flat = _flatten(data, where)
        size = 1
        for s in shape:
            size *= s
        if size != len(flat):
            raise ProtocolError(f"{where}: shape {shape} holds {size} values, data has {len(flat)}")
        if len(tensors) == 1 and len(shape) == 2 and name not in fields:
            if shape[1] != len(fields):
                raise ProtocolError(
                    f"{where}: a 2-D tensor needs one column per request field ({len(fields)}: "
                    f"{list(fields)}), got {shape[1]}"
                )
            width = shape[1]
            rows = [flat[r * width : (r + 1) * width] for r in range(shape[0])]
            return [dict(zip(fields, row, strict=True)) for row in rows], request_id
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise ProtocolError(f"{where}: a named input must have shape [n] or [n, 1]")
        if name in columns:
            raise ProtocolError(f"{where}: input {name!r} is given twice")
        columns[name] = flat
    return _columnar(columns, "inputs"), request_id


def _flatten(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise ProtocolError(f"{where}.data must be an array")
    if data and isinstance(data[0], list):
        out: list[Any] = []
        for row in data:
            if not isinstance(row, list):
                raise ProtocolError(f"{where}.data mixes nested and flat values")
            out.extend(row)
        return out
    return data
