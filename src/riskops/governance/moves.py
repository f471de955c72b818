"""What follows a governance change: reconcile the champion, anchor the audit chain's head."""

from __future__ import annotations

import logging

from riskops.audit import anchor_head
from riskops.db import session_scope
from riskops.governance.promotion import Move
from riskops.governance.reconcile import Finding, reconcile
from riskops.platform import Platform

log = logging.getLogger("riskops.governance")


def after_move(platform: Platform, model: str, move: Move) -> list[Finding]:
    """Reconcile the alias with the records, then anchor the chain's head on the champion.

    The anchor (an MLflow tag on the champion version) is what lets `riskops audit verify`
    catch a truncated chain without anybody keeping a head by hand.
    """
    findings = reconcile(engine=platform.engine, client=platform.mlflow, models=[model])
    anchor(platform, model, move.record.version)
    return findings


def anchor(platform: Platform, model: str, version: str) -> bool:
    """Anchor the chain's current head on ``model`` ``version`` (after decisions, on schedule).

    Runs after the change it follows has committed, so a registry that does not answer must not
    undo or hide that change: it is logged, and the next anchor (the reconcile schedule at the
    latest) covers the rows.
    """
    from mlflow.exceptions import MlflowException

    try:
        with session_scope(platform.engine) as session:
            anchor_head(session=session, client=platform.mlflow, model=model, version=version)
    except (MlflowException, OSError) as error:
        log.warning("could not anchor the audit head on %s v%s: %s", model, version, error)
        return False
    return True
