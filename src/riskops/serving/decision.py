"""One decision of the scoring service, as the Article 12 record keeps it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    problems = []
    if not (isinstance(d.decision_id, str) and _HEX32.fullmatch(d.decision_id)):
        problems.append("decision_id must be 32 lowercase hex digits (uuid4().hex)")
    if not isinstance(d.decided_at, dt.datetime) or d.decided_at.tzinfo is None:
        problems.append("decided_at must be a timezone-aware datetime")
    if not (isinstance(d.model, str) and _MODEL.fullmatch(d.model)):
        problems.append("model must be a lower-case model name")
    if not (isinstance(d.version, str) and _VERSION.fullmatch(d.version)):
        problems.append("version must be 1-32 letters, digits, '.' or '_'")
    if d.role not in ROLES:
        problems.append(f"role must be one of {sorted(ROLES)}")
    if d.entity is not None and not (isinstance(d.entity, str) and _HEX64.fullmatch(d.entity)):
        problems.append(
            "entity must be the HMAC-SHA256 pseudonym (64 lowercase hex digits) or None; "
            "raw ids never enter the decision log"
        )
    if not (isinstance(d.input_sha256, str) and _HEX64.fullmatch(d.input_sha256)):
        problems.append("input_sha256 must be 64 lowercase hex digits (input_digest)")
    features = d.features if isinstance(d.features, Mapping) else {"": d.features}
    # The common case in one C-level pass; the item loop only runs when something is off
    # (or a value is a float subclass such as numpy.float64, which is accepted).
    if not (_FEATURE_TYPES.issuperset(map(type, features.values())) and _names_are_text(features)):
        for name, value in features.items():
            if not isinstance(name, str) or not (
                value is None or isinstance(value, (str, float)) or type(value) is int
            ):
                problems.append(f"feature {name!r} must be a number, text or None, not {value!r}")
    if not (isinstance(d.score, float | int) and 0.0 <= d.score <= 1.0):
        problems.append(f"score must be a probability in [0, 1], not {d.score!r}")
    if d.band not in BANDS:
        problems.append(f"band must be one of {sorted(BANDS)}")
    for code in d.reason_codes:
        if not (
            isinstance(code, Mapping)
            and code.keys() == REASON_CODE_KEYS
            and isinstance(code["feature"], str)
            and isinstance(code["contribution"], float | int)
            and isinstance(code["text"], str)
        ):
            problems.append(f"reason code {code!r} must have exactly {sorted(REASON_CODE_KEYS)}")
    if not (isinstance(d.latency_ms, float | int) and d.latency_ms >= 0):
        problems.append("latency_ms must be a non-negative number")
    if not (isinstance(d.endpoint, str) and 0 < len(d.endpoint) <= 32):
        problems.append("endpoint must be a short name such as 'score'")
    if d.request_id is not None and not (
        isinstance(d.request_id, str) and len(d.request_id) <= 200
    ):
        problems.append("request_id must be text of at most 200 characters or None")
    return problems
