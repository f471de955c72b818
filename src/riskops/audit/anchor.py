"""Anchor the chain's head in the MLflow registry, so truncation is caught without a kept head.

The platform database and the MLflow registry are separate stores with separate writers: a
head written as a model-version tag after every promotion or rollback survives someone who
rewrites or cuts the audit table, and ``riskops audit verify`` reads every anchor back.
The head is one tag (JSON ``{"seq", "row_hash", "at"}``), written in one call, so a crash can
never leave a sequence number paired with another head's hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from riskops.audit.chain import format_timestamp
from riskops.audit.table import AuditRecord
from riskops.audit.trail import ChainHead, VerifyResult, head, verify
from riskops.records import utcnow

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

HEAD_TAG = "riskops.audit.head"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PAGE = 1000


def anchor_head(*, session: Session, client: MlflowClient, model: str, version: str) -> ChainHead:
    """Write the chain's current head as a tag on ``model`` ``version``; appends no audit row."""
    tip = head(session=session)
    anchored = ChainHead(tip.seq, tip.row_hash, format_timestamp(utcnow()))
    value = json.dumps({"seq": anchored.seq, "row_hash": anchored.row_hash, "at": anchored.at})
    client.set_model_version_tag(model, str(version), HEAD_TAG, value)
    return anchored


def anchor_from_tags(tags: Mapping[str, str], where: str) -> ChainHead | None:
    """The anchor held in a version's tags; None when it has none.

    Raises ValueError naming ``where`` for a malformed anchor: an anchor that cannot be read
    is evidence of tampering, never something to skip.
    """
    raw = tags.get(HEAD_TAG)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        seq, row_hash, at = data["seq"], data["row_hash"], data.get("at")
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{where}: tag {HEAD_TAG} is not a readable anchor ({error})") from None
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError(f"{where}: tag {HEAD_TAG} has seq {seq!r}, not a whole number >= 0")
    if not isinstance(row_hash, str) or not _HEX64.match(row_hash):
        raise ValueError(f"{where}: tag {HEAD_TAG} has row_hash {row_hash!r}, not 64 hex digits")
    return ChainHead(seq, row_hash, str(at) if at is not None else None)


def _pages(search: Any, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paged MLflow search."""
    token = None
    while True:
        page = search(max_results=_PAGE, page_token=token, **kwargs)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def collect_anchors(client: MlflowClient) -> list[ChainHead]:
    """Every anchor on every version of every registered model, oldest head first."""
    anchors = []
    for registered in _pages(client.search_registered_models):
        name = registered.name.replace("'", "\\'")
        for mv in _pages(client.search_model_versions, filter_string=f"name = '{name}'"):
            where = f"model {registered.name} version {mv.version}"
            anchor = anchor_from_tags(dict(mv.tags or {}), where)
            if anchor is not None:
                anchors.append(anchor)
    return sorted(anchors, key=lambda a: (a.seq, a.at or ""))


def newest_anchor(anchors: list[ChainHead]) -> ChainHead | None:
    """The anchor with the highest seq (the one that pins the most rows), or None."""
    return max(anchors, key=lambda a: a.seq, default=None)


def verify_anchored(*, session: Session, anchors: list[ChainHead]) -> VerifyResult:
    """Verify the chain against the newest anchor, then check every older anchor's row hash."""
    newest = newest_anchor(anchors)
    result = verify(session=session, expected_head=newest)
    if not result.ok or newest is None:
        return result
    stored = dict(
        session.exec(
            select(AuditRecord.seq, AuditRecord.row_hash).where(
                col(AuditRecord.seq).in_({a.seq for a in anchors if a.seq > 0})
            )
        ).all()
    )
    for anchor in anchors:
        if anchor.seq > 0 and stored.get(anchor.seq) != anchor.row_hash:
            problem = (
                f"row {anchor.seq}: hash differs from the head anchored at {anchor.at} "
                "(an anchor was forged or the chain rewritten)"
            )
            return VerifyResult(False, result.rows_checked, anchor.seq, problem)
    return result
