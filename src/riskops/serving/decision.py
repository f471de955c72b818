"""One decision of the scoring service, as the Article 12 record keeps it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from riskops.hashing import sha256_bytes

ROLES = frozenset({"champion", "shadow"})
BANDS = frozenset({"approve", "refer", "decline"})
REASON_CODE_KEYS = frozenset({"feature", "contribution", "text"})
_FEATURE_TYPES = frozenset({float, int, str, type(None)})
_TEXT = frozenset({str})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_MODEL = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_VERSION = re.compile(r"[A-Za-z0-9._]{1,32}")


def new_decision_id() -> str:
    """A fresh decision id (uuid4, 32 lowercase hex digits)."""
    return uuid.uuid4().hex


def canonical_sha256(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a request record in canonical form: JSON, keys sorted, no spaces, UTF-8."""
    return sha256_bytes(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))


def input_digest(record: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256 (hex) of the canonical request record under the pseudonym key.

    Keyed, because a request record holds raw ids: an unkeyed hash of a record whose other
    fields sit in the log beside it could be reversed by guessing the ids. The platform, which
    holds the key, can still match a request to its decision.
    """
    return hmac.new(
        key, orjson.dumps(record, option=orjson.OPT_SORT_KEYS), hashlib.sha256
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision as the Article 12 record keeps it; refuses values that do not belong there.

    ``entity`` must be the HMAC-SHA256 pseudonym (64 lowercase hex digits) or None: a raw
    customer or card id is refused. ``features`` are the model inputs (numbers, text or None);
    ``reason_codes`` are dicts with exactly ``feature``, ``contribution`` and ``text``.
    """

    decision_id: str
    decided_at: dt.datetime
    model: str
    version: str
    role: str
    entity: str | None
    input_sha256: str
    features: dict[str, float | str | None]
    score: float
    band: str
    reason_codes: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0
    endpoint: str = "score"
    request_id: str | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ValueError(
                f"decision {self.decision_id!r} of {self.model!r} refused: " + "; ".join(problems)
            )
        set_ = object.__setattr__
        set_(self, "decided_at", self.decided_at.astimezone(dt.UTC))
        set_(self, "features", dict(self.features))
        set_(self, "reason_codes", [dict(code) for code in self.reason_codes])


def _names_are_text(features: Mapping[Any, Any]) -> bool:
    return _TEXT.issuperset(map(type, features))


def _problems(d: Decision) -> list[str]:
    problems = _row_problems(
        d.decision_id, d.entity, d.input_sha256, d.features, d.score, d.band, d.reason_codes
    )
    return problems + _shared_problems(
        d.decided_at, d.model, d.version, d.role, d.latency_ms, d.endpoint, d.request_id
    )


def _shared_problems(
    decided_at: Any,
    model: Any,
    version: Any,
    role: Any,
    latency_ms: Any,
    endpoint: Any,
    request_id: Any,
) -> list[str]:
    """The fields one request's decisions share."""
    problems = []
    if not isinstance(decided_at, dt.datetime) or decided_at.tzinfo is None:
        problems.append("decided_at must be a timezone-aware datetime")
    if not (isinstance(model, str) and _MODEL.fullmatch(model)):
        problems.append("model must be a lower-case model name")
    if not (isinstance(version, str) and _VERSION.fullmatch(version)):
        problems.append("version must be 1-32 letters, digits, '.' or '_'")
    if role not in ROLES:
        problems.append(f"role must be one of {sorted(ROLES)}")
    if not (isinstance(latency_ms, float | int) and latency_ms >= 0):
        problems.append("latency_ms must be a non-negative number")
    if not (isinstance(endpoint, str) and 0 < len(endpoint) <= 32):
        problems.append("endpoint must be a short name such as 'score'")
    if request_id is not None and not (isinstance(request_id, str) and len(request_id) <= 200):
        problems.append("request_id must be text of at most 200 characters or None")
    return problems


def _row_problems(
    decision_id: Any,
    entity: Any,
    input_sha256: Any,
    features: Any,
    score: Any,
    band: Any,
    reason_codes: Any,
) -> list[str]:
    """The fields of one decision."""
    problems = []
    if not (isinstance(decision_id, str) and _HEX32.fullmatch(decision_id)):
        problems.append("decision_id must be 32 lowercase hex digits (uuid4().hex)")
    if entity is not None and not (isinstance(entity, str) and _HEX64.fullmatch(entity)):
        problems.append(
            "entity must be the HMAC-SHA256 pseudonym (64 lowercase hex digits) or None; "
            "raw ids never enter the decision log"
        )
    if not (isinstance(input_sha256, str) and _HEX64.fullmatch(input_sha256)):
        problems.append("input_sha256 must be 64 lowercase hex digits (input_digest)")
    features = features if isinstance(features, Mapping) else {"": features}
    # The common case in one C-level pass; the item loop only runs when something is off
    # (or a value is a float subclass such as numpy.float64, which is accepted).
    if not (_FEATURE_TYPES.issuperset(map(type, features.values())) and _names_are_text(features)):
        for name, value in features.items():
            if not isinstance(name, str) or not (
                value is None or isinstance(value, (str, float)) or type(value) is int
            ):
                problems.append(f"feature {name!r} must be a number, text or None, not {value!r}")
    if not (isinstance(score, float | int) and 0.0 <= score <= 1.0):
        problems.append(f"score must be a probability in [0, 1], not {score!r}")
    if band not in BANDS:
        problems.append(f"band must be one of {sorted(BANDS)}")
    for code in reason_codes if isinstance(reason_codes, Sequence) else [reason_codes]:
        if not (
            isinstance(code, Mapping)
            and code.keys() == REASON_CODE_KEYS
            and isinstance(code["feature"], str)
            and isinstance(code["contribution"], float | int)
            and isinstance(code["text"], str)
        ):
            problems.append(f"reason code {code!r} must have exactly {sorted(REASON_CODE_KEYS)}")
    return problems


@dataclass(frozen=True, slots=True)
class DecisionBatch:
    """The decisions of one request, column by column (one model version, role, time, endpoint).

    What the request path hands to the decision log instead of one :class:`Decision` per
    record: the per-decision sequences are taken as they are, not copied (the caller hands them
    over and must not change them), and checked with the same rules as :class:`Decision`, so a
    raw id is refused on the request path, not later in the writer. A NaN feature is a missing
    value and is stored as null.
    """

    model: str
    version: str
    role: str
    decided_at: dt.datetime
    decision_ids: Sequence[str]
    entities: Sequence[str | None]
    input_sha256: Sequence[str]
    features: Sequence[Mapping[str, float | str | None]]
    scores: Sequence[float]
    bands: Sequence[str]
    reason_codes: Sequence[Sequence[Mapping[str, Any]]]
    latency_ms: float = 0.0
    endpoint: str = "score"
    request_id: str | None = None
    # The validated request records, of which the writer keeps only ``input_fields`` (the raw
    # number and category fields of a version with a feature plan; never an id): None when the
    # model inputs are the request fields themselves (no plan), so nothing is stored twice.
    inputs: Sequence[Mapping[str, Any]] | None = None
    input_fields: tuple[str, ...] = ()
    # Reason codes still owed (``served.DeferredReasons``; MLflow and V2 answers carry none):
    # the writer fills the empty ``reason_codes`` entries of refer and decline rows before it
    # writes the batch, so the record is complete when it reaches the lake.
    deferred: Any = None

    def __post_init__(self) -> None:
        n = len(self.decision_ids)
        columns = (self.entities, self.input_sha256, self.features, self.scores, self.bands)
        lengths = (*columns, self.reason_codes, *(() if self.inputs is None else (self.inputs,)))
        if n == 0 or any(len(c) != n for c in lengths):
            raise ValueError(
                f"decisions of {self.model!r} refused: every per-decision field must hold the "
                f"same number (at least one) of values; decision_ids holds {n}"
            )
        problems = _shared_problems(
            self.decided_at, self.model, self.version, self.role, self.latency_ms,
            self.endpoint, self.request_id,
        )  # fmt: skip
        for i, row in enumerate(zip(self.decision_ids, *columns, self.reason_codes, strict=True)):
            problems.extend(f"decision {i}: {p}" for p in _row_problems(*row))
        if problems:
            raise ValueError(
                f"decisions of {self.model!r} refused ({n} in the batch): "
                + "; ".join(problems[:20])
            )
        if self.decided_at.tzinfo is not dt.UTC:
            object.__setattr__(self, "decided_at", self.decided_at.astimezone(dt.UTC))

    def __len__(self) -> int:
        return len(self.decision_ids)

    @classmethod
    def of(cls, decision: Decision) -> DecisionBatch:
        """The batch of one decision (checked already when it was made: not checked again)."""
        d, batch, set_ = decision, object.__new__(cls), object.__setattr__
        for name in _SHARED:
            set_(batch, name, getattr(d, name))
        for name, column in _COLUMNS:
            set_(batch, column, (getattr(d, name),))
        for name, default in _OPTIONAL.items():  # no raw fields kept, no reasons owed
            set_(batch, name, default)
        return batch

    def to_wire(self) -> tuple[Any, ...]:
        """The batch as a tuple of plain values (its fields in order, without ``deferred``),
        which pickles at half the cost of the dataclass: for the decision-log writer process."""
        return tuple(getattr(self, name) for name in _WIRE)

    @classmethod
    def from_wire(cls, values: tuple[Any, ...]) -> DecisionBatch:
        """The batch :meth:`to_wire` gave (checked when it was made: not checked again)."""
        batch, set_ = object.__new__(cls), object.__setattr__
        for name, value in zip(_WIRE, values, strict=True):
            set_(batch, name, value)
        set_(batch, "deferred", None)
        return batch


_SHARED = ("model", "version", "role", "decided_at", "latency_ms", "endpoint", "request_id")
_COLUMNS = (
    ("decision_id", "decision_ids"),
    ("entity", "entities"),
    ("input_sha256", "input_sha256"),
    ("features", "features"),
    ("score", "scores"),
    ("band", "bands"),
    ("reason_codes", "reason_codes"),
)
_WIRE = tuple(f.name for f in fields(DecisionBatch) if f.name != "deferred")
_OPTIONAL = {  # the fields with defaults: a new one needs no change to ``of``
    f.name: f.default
    for f in fields(DecisionBatch)
    if f.name not in _SHARED and f.name not in {c for _, c in _COLUMNS}
}
