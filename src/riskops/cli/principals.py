"""`riskops principals add | list | revoke`: the people and services that may act."""

from __future__ import annotations

import typer
from rich.table import Table

from riskops.cli.common import acting_principal, console, fail, open_platform, print_json
from riskops.db import session_scope
from riskops.identity.principals import ROLES, add_principal, list_principals, revoke_principal

app = typer.Typer(
    help="Principals (people and services), their roles and keys.", no_args_is_help=True
)


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="E-mail or staff id (recorded in every action)."),
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(ROLES)}."),
    mlflow_user: str | None = typer.Option(
        None, "--mlflow-user", help="MLflow user whose notebook registrations are this person's."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create a principal and print its key once (it is stored only as a hash)."""
    with open_platform(ctx) as platform:
        admin = acting_principal(ctx, platform, "principals.manage")
        try:
            with session_scope(platform.engine) as session:
                principal, key = add_principal(
                    session=session, name=name, role=role, actor=admin.name,
                    mlflow_user=mlflow_user,
                )  # fmt: skip
        except ValueError as error:
            fail(str(error), code=2)
    if json_out:
        print_json({"name": principal.name, "role": principal.role, "key": key})
        return
    console.print(f"added {principal.name} ({principal.role}); key, shown once:")
    console.print(key, soft_wrap=True)


@app.command("init-admin")
def init_admin(
    ctx: typer.Context,
    name: str = typer.Argument("admin", help="Name of the first admin."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Create the first admin of a new installation (refused once any active admin exists).

    On the embedded defaults `riskops up` does this; on PostgreSQL run it once, store the key
    in the secret store, and create everyone else with `riskops principals add`.
    """
    from sqlmodel import select

    from riskops.identity.principals import Principal

    with open_platform(ctx) as platform, session_scope(platform.engine) as session:
        admins = [
            p for p in session.exec(select(Principal).where(Principal.role == "admin")) if p.active
        ]
        if admins:
            fail(
                f"an admin exists already ({', '.join(a.name for a in admins)}); ask them to add "
                "principals",
                code=3,
            )
        principal, key = add_principal(
            session=session, name=name, role="admin", actor="riskops-init-admin"
        )
    if json_out:
        print_json({"name": principal.name, "role": principal.role, "key": key})
        return
    console.print(f"first admin {principal.name} created; key, shown once:")
    console.print(key, soft_wrap=True)


@app.command("list")
def list_command(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Every principal, active or revoked (keys are never shown)."""
    with open_platform(ctx) as platform:
        acting_principal(ctx, platform, "audit.read")
        with session_scope(platform.engine) as session:
            rows = [
                {"name": p.name, "role": p.role, "key_hint": p.key_hint, "demo": p.demo,
                 "mlflow_user": p.mlflow_user, "created_by": p.created_by,
                 "created_at": p.created_at.isoformat(), "active": p.active,
                 "revoked_at": p.revoked_at.isoformat() if p.revoked_at else None}
                for p in list_principals(session=session)
            ]  # fmt: skip
    if json_out:
        print_json(rows)
        return
    table = Table("name", "role", "key", "state", "created by", "demo")
    for r in rows:
        state = "active" if r["active"] else f"revoked {r['revoked_at'][:16]}"
        table.add_row(r["name"], r["role"], r["key_hint"] + "…", state, r["created_by"],
                      "DEMO" if r["demo"] else "")  # fmt: skip
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context, name: str = typer.Argument(..., help="Principal to revoke.")
) -> None:
    """Revoke a principal: its key stops working at once; its past actions stay on record."""
    with open_platform(ctx) as platform:
        admin = acting_principal(ctx, platform, "principals.manage")
        try:
            with session_scope(platform.engine) as session:
                revoke_principal(session=session, name=name, actor=admin.name)
        except (LookupError, ValueError) as error:
            fail(str(error), code=2)
    console.print(f"revoked {name}")
