"""The tamper-evident audit trail: an append-only, hash-chained log of who did what."""

from __future__ import annotations

from riskops.audit.anchor import anchor_head, collect_anchors, verify_anchored
from riskops.audit.chain import GENESIS_HASH, HASH_RULE
from riskops.audit.proof import chain_proof, verify_proof
from riskops.audit.table import AuditRecord
from riskops.audit.trail import (
    ChainHead,
    VerifyResult,
    append,
    head,
    rows_for_subject,
    verify,
)

__all__ = [
    "GENESIS_HASH",
    "HASH_RULE",
    "AuditRecord",
    "ChainHead",
    "VerifyResult",
    "anchor_head",
    "append",
    "chain_proof",
    "collect_anchors",
    "head",
    "rows_for_subject",
    "verify",
    "verify_anchored",
    "verify_proof",
]
