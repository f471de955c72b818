"""The hash chain's rules: canonical content, content hash and link hash (pure, no database).

A row's canonical content is the compact JSON (sorted keys, no whitespace, ASCII only) of
``{seq, occurred_at, actor, action, subject, payload}`` with ``occurred_at`` written as
``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC. Then::

    content_hash = sha256_hex(canonical)
    row_hash     = sha256_hex(prev_hash + content_hash)      # prev_hash of row 1 = 64 zeros

Hashing the content first lets a proof carry only the content hash of rows it does not disclose
and still be recomputed all the way to the head of the chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

GENESIS_HASH = "0" * 64
HASH_RULE = (
    "row_hash = sha256_hex(prev_hash + sha256_hex(canonical)); prev_hash of row 1 = '0' * 64; "
    "canonical = JSON of {seq, occurred_at, actor, action, subject, payload}, sorted keys, "
    "separators (',', ':'), ASCII escapes, occurred_at as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC)"
)


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_utc(value: dt.datetime) -> dt.datetime:
    """The same instant in UTC; a naive value (SQLite hands those back) is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def format_timestamp(value: dt.datetime) -> str:
    """The fixed timestamp form used in canonical content: always microseconds, always ``Z``."""
    return to_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_json(value: Any) -> str:
    """Compact, key-sorted, ASCII JSON; NaN and infinities are refused (not portable JSON)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def normalize_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload exactly as it will read back from either database (tuples become lists).

    Raises TypeError for values JSON cannot hold (convert datetimes, Decimals, paths first)
    and ValueError for NaN or infinity.
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping, not {type(payload).__name__}")
    if any(not isinstance(key, str) for key in payload):
        raise TypeError("payload keys must be strings")
    return json.loads(canonical_json(dict(payload)))


def canonical_content(
    *,
    seq: int,
    occurred_at: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    payload: Mapping[str, Any],
) -> str:
    """The canonical text of one row's content (what its hash covers)."""
    return canonical_json(
        {
            "seq": seq,
            "occurred_at": format_timestamp(occurred_at),
            "actor": actor,
            "action": action,
            "subject": subject,
            "payload": payload,
        }
    )


def content_hash(canonical: str) -> str:
    """SHA-256 (hex) of a row's canonical content."""
    return _sha256_hex(canonical)


def link_hash(prev_hash: str, content_digest: str) -> str:
    """A row's hash from the previous row's hash and its own content hash."""
    return _sha256_hex(prev_hash + content_digest)


def row_hash(prev_hash: str, canonical: str) -> str:
    """A row's hash from the previous row's hash and its own canonical content."""
    return link_hash(prev_hash, content_hash(canonical))
