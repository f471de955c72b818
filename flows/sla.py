"""The rollback policy on `riskops.sla.breached` (the deployment `sla-breach` in prefect.yaml).

Unlike `riskops rollback`, this takes no target and no actor: it judges the breach against the
promotion records (riskops.slo.policy) and can only do what the policy allows, as the
`riskops-slo-guard` system principal. Someone who starts it by hand with a made-up breach can at
most return a champion promoted within the guard window (on the policy's clock, not the
breach's) to its previous approved champion, and only while RISKOPS_SLO_AUTO_ROLLBACK is on;
every run leaves an audit row.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from blocks import load_platform
from flows.common import deliver_events
from riskops.cost.hook import run_cost
from riskops.governance.moves import after_move
from riskops.slo.policy import react_to_breach
from riskops.slo.settings import SloSettings


@flow(name="sla-breach", persist_result=False)
def sla_breach(breach: dict[str, Any]) -> dict[str, Any]:
    """Triggered by `riskops.sla.breached` with the event's payload: roll back, or say why not."""
    settings = SloSettings()  # RISKOPS_SLO_* of the worker's environment
    model = str(breach["model"]) if breach.get("model") else None
    with load_platform() as platform, run_cost(platform, model=model):
        decision = react_to_breach(
            engine=platform.engine, client=platform.mlflow, settings=settings, breach=breach
        )
        if decision.move is not None and decision.move.changed:
            deliver_events(platform, [decision.move.outbox_id])  # the service reloads on it
            after_move(platform, decision.model, decision.move)
    log = get_run_logger()
    (log.warning if decision.outcome == "rolled-back" else log.info)(
        "%s: breach %s (%s): %s: %s; champion v%s", decision.model, decision.breach_id,
        breach.get("slo"), decision.outcome, decision.why, decision.champion,
    )  # fmt: skip
    return decision.to_dict()
