"""`riskops specs list | approve | decline`: spec change control for models with a champion."""

from __future__ import annotations

import typer
from rich.table import Table
from sqlmodel import col, select

from riskops import ledger
from riskops.cli.common import (
    acting_principal,
    console,
    fail,
    get_settings,
    open_platform,
    print_json,
    sync_retrain_schedules,
)
from riskops.db import session_scope
from riskops.records import ModelSpecRecord

app = typer.Typer(help="Spec versions and their change control.", no_args_is_help=True)


@app.command("list")
def list_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Every spec version of a model: in force, pending, superseded or declined."""
    with open_platform(ctx) as platform, session_scope(platform.engine) as session:
        rows = [
            {"spec_hash": r.spec_hash, "status": r.status, "risk_class": r.risk_class,
             "onboarded_by": r.onboarded_by, "onboarded_at": r.onboarded_at.isoformat(),
             "decided_by": r.decided_by}
            for r in session.exec(
                select(ModelSpecRecord).where(ModelSpecRecord.name == name)
                .order_by(col(ModelSpecRecord.id))
            )
        ]  # fmt: skip
    if json_out:
        print_json(rows)
        return
    table = Table("spec", "status", "risk", "onboarded by", "when", "decided by")
    for r in rows:
        table.add_row(r["spec_hash"][:12], r["status"], r["risk_class"], r["onboarded_by"],
                      r["onboarded_at"][:16], r["decided_by"] or "")  # fmt: skip
    console.print(table)


def _decide(ctx: typer.Context, name: str, spec_hash: str, comment: str, approve: bool) -> None:
    with open_platform(ctx) as platform:
        principal = acting_principal(ctx, platform, "spec.approve")
        try:
            with session_scope(platform.engine) as session:
                record = ledger.decide_spec(
                    session=session, name=name, spec_hash=spec_hash, actor=principal.name,
                    approve=approve, comment=comment,
                )  # fmt: skip
        except (LookupError, ValueError, PermissionError) as error:
            fail(str(error), code=3 if isinstance(error, PermissionError) else 2)
    console.print(f"spec {name}@{record.spec_hash[:12]} {record.status} by {principal.name}")
    if approve:
        sync_retrain_schedules(get_settings(ctx))


@app.command("approve")
def approve(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    spec_hash: str = typer.Argument(..., help="Pending spec hash (or its prefix)."),
    comment: str = typer.Option(..., "--comment", help="Why the change is acceptable."),
) -> None:
    """Approve a pending spec change (risk officers; not the person who proposed it)."""
    _decide(ctx, name, spec_hash, comment, True)


@app.command("decline")
def decline(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    spec_hash: str = typer.Argument(..., help="Pending spec hash (or its prefix)."),
    comment: str = typer.Option(..., "--comment", help="Why the change is refused."),
) -> None:
    """Decline a pending spec change; the spec in force stays."""
    _decide(ctx, name, spec_hash, comment, False)
