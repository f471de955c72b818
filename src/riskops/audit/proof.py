"""Proofs a regulator can check without our database: chosen rows, linked to the chain's head.

A proof discloses the canonical content of the requested rows only. Every later row up to the
head appears as its content hash and row hash, which is enough to recompute the links, because
``row_hash = sha256_hex(prev_hash + content_hash)`` (see ``riskops.audit.chain``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from riskops.audit.chain import (
    GENESIS_HASH,
    HASH_RULE,
    canonical_json,
    content_hash,
    link_hash,
)
from riskops.audit.table import AuditRecord
from riskops.audit.trail import record_canonical

PROOF_VERSION = 1


def chain_proof(*, session: Session, seqs: list[int]) -> dict[str, Any]:
    """A JSON-ready proof that rows ``seqs`` are part of the chain ending at its current head.

    Its size grows with the number of rows between the oldest requested row and the head.
    Raises ValueError for an empty request and LookupError for a seq that is not stored.
    """
    wanted = sorted(set(seqs))
    if not wanted:
        raise ValueError("chain_proof needs at least one seq")
    # One statement, so the head and the rows come from the same snapshot.
    records = session.exec(
        select(AuditRecord)
        .where(col(AuditRecord.seq) >= wanted[0])
        .order_by(col(AuditRecord.seq))
        .execution_options(yield_per=1000)
    )
    requested = set(wanted)
    rows: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    last: tuple[int, str] | None = None
    for record in records:
        canonical = record_canonical(record)
        if record.seq in requested:
            rows.append(
                {
                    "seq": record.seq,
                    "canonical": canonical,
                    "prev_hash": record.prev_hash,
                    "row_hash": record.row_hash,
                }
            )
        else:
            links.append(
                {
                    "seq": record.seq,
                    "content_hash": content_hash(canonical),
                    "row_hash": record.row_hash,
                }
            )
        last = (record.seq, record.row_hash)
        session.expunge(record)
    missing = requested - {row["seq"] for row in rows}
    if missing or last is None:
        raise LookupError(f"no audit row with seq {sorted(missing or requested)}")
    return {
        "version": PROOF_VERSION,
        "hash_rule": HASH_RULE,
        "head": {"seq": last[0], "row_hash": last[1]},
        "rows": rows,
        "links": links,
    }


def _is_seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _entries(proof: Mapping[str, Any]) -> dict[int, tuple[str, str | None, str]] | None:
    """seq → (content_hash, disclosed prev_hash or None, row_hash); None when malformed."""
    entries: dict[int, tuple[str, str | None, str]] = {}
    for row in proof["rows"]:
        seq, canonical = row["seq"], row["canonical"]
        content = json.loads(canonical)
        # Only the canonical form is accepted: no duplicate keys or other re-encodings.
        if not _is_seq(seq) or seq in entries or canonical_json(content) != canonical:
            return None
        if not isinstance(content, dict) or content.get("seq") != seq:
            return None
        entries[seq] = (content_hash(canonical), str(row["prev_hash"]), str(row["row_hash"]))
    if not entries:
        return None
    for link in proof["links"]:
        seq = link["seq"]
        if not _is_seq(seq) or seq in entries:
            return None
        entries[seq] = (str(link["content_hash"]), None, str(link["row_hash"]))
    return entries


def verify_proof(proof: Mapping[str, Any]) -> bool:
    """Recompute a proof from its disclosed rows to its head (pure: no database needed)."""
    try:
        entries = _entries(proof)
        head_seq, head_hash = proof["head"]["seq"], proof["head"]["row_hash"]
        if entries is None or not _is_seq(head_seq):
            return False
        start = min(entries)
        if set(entries) != set(range(start, head_seq + 1)):
            return False
        prev_hash = entries[start][1]
        if prev_hash is None or (start == 1 and prev_hash != GENESIS_HASH):
            return False
        for seq in range(start, head_seq + 1):
            digest, disclosed_prev, stored = entries[seq]
            if disclosed_prev is not None and disclosed_prev != prev_hash:
                return False
            if link_hash(prev_hash, digest) != stored:
                return False
            prev_hash = stored
        return prev_hash == head_hash
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
