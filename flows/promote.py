"""Promotion and reconcile of the `champion` alias.

Rollback is not a deployment: anyone who can reach the Prefect API could start one with a
typed name. It is `riskops rollback`, as an authenticated operator or risk officer.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from blocks import load_platform
from flows.cards import publish_card
from flows.common import deliver_events
from riskops.cost.hook import run_cost
from riskops.governance.moves import after_move, anchor
from riskops.governance.promotion import promote
from riskops.governance.reconcile import reconcile

PROMOTER = "riskops-promotion"


@flow(name="promote", persist_result=False)
def promote_champion(model: str, version: str, approver: str = "") -> dict[str, object]:
    """Triggered by `riskops.model.approved`: the approved version becomes the champion.

    The event's ``approver`` is informational only: the promotion checks the authenticated
    approval and the passed validation in the platform records, inside its transaction.
    """
    with load_platform() as platform, run_cost(platform, model=model):
        move = promote(
            engine=platform.engine, client=platform.mlflow, model=model, version=str(version),
            actor=PROMOTER, reason="approved at sign-off",
        )  # fmt: skip
        deliver_events(platform, [move.outbox_id])
        findings = after_move(platform, model, move)
        if move.changed:
            publish_card(platform, model, str(version))  # now with the approval and the promotion
    get_run_logger().info(
        "%s: champion v%s (was %s); reconcile: %s", model, move.record.version,
        move.record.previous_version, findings,
    )  # fmt: skip
    return {"champion": move.record.version, "previous": move.record.previous_version}


@flow(name="reconcile", persist_result=False)
def reconcile_champions() -> list[dict[str, object]]:
    """On a schedule: does every champion alias agree with the promotion records?"""
    with load_platform() as platform, run_cost(platform, model=None):
        findings = reconcile(engine=platform.engine, client=platform.mlflow)
        deliver_events(platform, None)
        for finding in findings:  # anchor the head on a schedule, not only on moves
            if finding.recorded:
                anchor(platform, finding.model, finding.recorded)
    for finding in findings:
        (get_run_logger().info if finding.ok else get_run_logger().error)(finding.message)
    return [{"model": f.model, "ok": f.ok, "message": f.message} for f in findings]
