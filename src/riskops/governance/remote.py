"""Reach a sign-off run through the Prefect API (for the governance service and the demo).

Call with PREFECT_API_URL set (or inside `riskops.stack.local.prefect_api(settings)`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

SIGNOFF_DEPLOYMENT = "risk-sign-off"


def flow_run_state(run_id: str) -> str | None:
    """The state name of a flow run (Paused, Running, ...), None when Prefect does not know it."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(run_id))
        except ObjectNotFound:
            return None
    return run.state.name if run.state else None


def resume_signoff(run_id: str, run_input: dict[str, Any]) -> None:
    """Resume the paused run with the governance API's signed decision."""
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(UUID(run_id), run_input=run_input)
