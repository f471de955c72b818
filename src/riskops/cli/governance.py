"""`riskops approve | decline | rollback`: the human decisions, from the command line."""

from __future__ import annotations

import datetime as dt
from typing import Literal

import typer

from riskops.cli.common import console, fail, get_settings
from riskops.db import make_engine, session_scope
from riskops.governance.promotion import PromotionRefused, rollback
from riskops.governance.remote import (
    SIGNOFF_DEPLOYMENT,
    find_paused_signoff,
    resume_signoff,
    wait_for_submission,
)
from riskops.governance.signoff import approval_of
from riskops.stack.local import prefect_api


def _decide(
    ctx: typer.Context, model: str, version: str, approver: str, comment: str,
    decision: Literal["approve", "decline"], demo: bool, timeout: float,
) -> None:  # fmt: skip
    settings = get_settings(ctx)
    engine = make_engine(settings.database_url)
    with prefect_api(settings):
        run = find_paused_signoff(model, version)
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
        resume_signoff(
            run.id, approver=approver, decision=decision, justification=comment, demo=demo
        )
    record = wait_for_submission(
        engine=engine, model=model, version=version, approver=approver, since=asked, timeout=timeout
    )
    if record is None:
        fail(f"no decision was recorded within {timeout:.0f}s; see the sign-off run in Prefect")
    if not record.accepted:
        fail(f"refused and recorded: {record.refusal}; the sign-off is still waiting")
    console.print(f"[green]{decision}d[/] {model} v{version} as {approver} (recorded)")


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
