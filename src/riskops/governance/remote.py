"""Reach a paused sign-off run through the Prefect API (for the CLI and the demo).

Call inside `riskops.stack.local.prefect_api(settings)` or with PREFECT_API_URL set.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from riskops.db import session_scope
from riskops.records import SignOffRecord

SIGNOFF_DEPLOYMENT = "risk-sign-off"


def find_paused_signoff(model: str, version: str) -> Any | None:
    """The paused `risk-sign-off` flow run of this model version, if one is waiting."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=[SIGNOFF_DEPLOYMENT])
            ),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused", "Suspended"]))
            ),
        )
    for run in runs:
        if run.parameters.get("model") == model and str(run.parameters.get("version")) == version:
            return run
    return None


def resume_signoff(
    run_id: Any, *, approver: str, decision: str, justification: str, demo: bool = False
) -> None:
    """Resume the paused run with the risk officer's input (validated by the flow's form)."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(
        run_id,
        run_input={
            "approver": approver,
            "decision": decision,
            "justification": justification,
            "demo": demo,
        },
    )


def wait_for_submission(
    *, engine: Engine, model: str, version: str, approver: str, since: dt.datetime, timeout: float
) -> SignOffRecord | None:
    """The recorded outcome (accepted or refused) of a submission made after ``since``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            record = session.exec(
                select(SignOffRecord)
                .where(
                    SignOffRecord.model == model,
                    SignOffRecord.version == str(version),
                    SignOffRecord.approver == approver,
                    col(SignOffRecord.decided_at) >= since,
                )
                .order_by(col(SignOffRecord.id).desc())
            ).first()
        if record is not None:
            return record
        time.sleep(0.5)
    return None
