"""Promotion and rollback of the `champion` alias."""

from __future__ import annotations

from prefect import flow, get_run_logger

from blocks import PLATFORM_BLOCK, RiskopsPlatform
from flows.cards import publish_card
from riskops.emit import emit_to_prefect
from riskops.governance.promotion import promote, rollback

PROMOTER = "riskops-promotion"


@flow(name="promote", persist_result=False)
def promote_champion(model: str, version: str, approver: str = "") -> dict[str, object]:
    """Triggered by `riskops.model.approved`: the approved version becomes the champion."""
    platform = RiskopsPlatform.load(PLATFORM_BLOCK)
    engine = platform.get_engine()
    move = promote(
        engine=engine, client=platform.get_mlflow_client(), model=model, version=str(version),
        actor=PROMOTER, reason=f"approved by {approver}" if approver else "approved",
    )  # fmt: skip
    engine.dispose()
    if move.changed:
        publish_card(platform, model, str(version))  # now with the approval and the promotion
        emit_to_prefect(move.event)
    get_run_logger().info(
        "%s: champion v%s (was %s)", model, move.record.version, move.record.previous_version
    )
    return {"champion": move.record.version, "previous": move.record.previous_version}


@flow(name="rollback", persist_result=False)
def rollback_champion(
    model: str, to_version: str | None = None, actor: str = "riskops-rollback", reason: str = ""
) -> dict[str, object]:
    """Return the champion to the previous (or given) approved version."""
    platform = RiskopsPlatform.load(PLATFORM_BLOCK)
    engine = platform.get_engine()
    move = rollback(
        engine=engine, client=platform.get_mlflow_client(), model=model, to_version=to_version,
        actor=actor, reason=reason,
    )  # fmt: skip
    engine.dispose()
    if move.changed:
        emit_to_prefect(move.event)
    return {"champion": move.record.version, "previous": move.record.previous_version}
