"""`riskops approve | decline | rollback`: the human decisions, from the command line."""

from __future__ import annotations

import datetime as dt
import time
from typing import Literal

import typer
from sqlmodel import col, select

from riskops.cli.common import console, fail, get_settings
from riskops.db import make_engine, session_scope
from riskops.governance.promotion import PromotionRefused, rollback
from riskops.governance.signoff import approval_of
from riskops.records import SignOffRecord
from riskops.settings import Settings
from riskops.stack.local import prefect_api

SIGNOFF_DEPLOYMENT = "risk-sign-off"


def _paused_signoff(settings: Settings, model: str, version: str) -> object | None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )

    with prefect_api(settings), get_client(sync_client=True) as client:
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


def _decide(
    ctx: typer.Context, model: str, version: str, approver: str, comment: str,
    decision: Literal["approve", "decline"], demo: bool, timeout: float,
) -> None:  # fmt: skip
    from prefect.flow_runs import resume_flow_run

    settings = get_settings(ctx)
    run = _paused_signoff(settings, model, version)
    engine = make_engine(settings.database_url)
    if run is None:
        with session_scope(engine) as session:
            done = approval_of(session=session, model=model, version=version)
        if done is not None:
            when = f"{done.decided_at:%Y-%m-%d %H:%M}"
            fail(f"{model} v{version} was already approved by {done.approver} on {when}")
        fail(
            f"no sign-off is waiting for {model} v{version}: it must pass validation first "
            f"(see `riskops models show {model}` and the Prefect UI, "
            f"deployment {SIGNOFF_DEPLOYMENT})"
        )
    asked = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with prefect_api(settings):
        resume_flow_run(
            run.id,  # type: ignore[attr-defined]
            run_input={
                "approver": approver,
                "decision": decision,
                "justification": comment,
                "demo": demo,
            },
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            record = session.exec(
                select(SignOffRecord)
                .where(
                    SignOffRecord.model == model,
                    SignOffRecord.version == version,
                    SignOffRecord.approver == approver,
                    col(SignOffRecord.decided_at) >= asked,
                )
                .order_by(col(SignOffRecord.id).desc())
            ).first()
        if record is not None:
            if record.accepted:
                console.print(f"[green]{decision}d[/] {model} v{version} as {approver} (recorded)")
                return
            fail(f"refused and recorded: {record.refusal}; the sign-off is still waiting")
        time.sleep(0.5)
    fail(f"the sign-off run did not record the decision within {timeout:.0f}s; see the Prefect UI")


def approve(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Model version."),
    approver: str = typer.Option(..., "--as", help="Your identity (recorded)."),
    comment: str = typer.Option(..., "--comment", help="Justification (recorded)."),
    demo: bool = typer.Option(False, "--demo", help="Label the approval as a demo."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for the decision to be recorded."),
) -> None:
    """Approve a validated version waiting for sign-off (resumes the paused run)."""
    _decide(ctx, model, version, approver, comment, "approve", demo, timeout)


def decline(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Model version."),
    approver: str = typer.Option(..., "--as", help="Your identity (recorded)."),
    comment: str = typer.Option(..., "--comment", help="Justification (recorded)."),
    timeout: float = typer.Option(60.0, help="Seconds to wait for the decision to be recorded."),
) -> None:
    """Decline a validated version waiting for sign-off."""
    _decide(ctx, model, version, approver, comment, "decline", False, timeout)


def rollback_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    to: str | None = typer.Option(None, "--to", help="Approved version to return to."),
    actor: str = typer.Option("cli", "--as", help="Who rolls back (recorded)."),
    reason: str = typer.Option("", "--reason", help="Why (recorded)."),
) -> None:
    """Return the champion to the previous (or given) approved version, at once."""
    from mlflow.tracking import MlflowClient

    from riskops.emit import emit_to_prefect

    settings = get_settings(ctx)
    engine = make_engine(settings.database_url)
    client = MlflowClient(settings.mlflow.resolved_tracking_uri())
    try:
        move = rollback(
            engine=engine, client=client, model=model, to_version=to, actor=actor, reason=reason
        )
    except PromotionRefused as error:
        fail(str(error))
    if not move.changed:
        console.print(f"{model}: v{move.record.version} is already the champion")
        return
    with prefect_api(settings):
        emit_to_prefect(move.event)
    was = move.record.previous_version
    console.print(f"[green]rolled back[/] {model}: champion v{move.record.version} (was v{was})")
