"""`riskops approve | decline | rollback | reconcile`: the governed decisions.

Approve and decline go through the governance API (the only way to sign a decision), as the
principal whose key the CLI holds; there is no way to name someone else.
"""

from __future__ import annotations

from typing import Literal

import httpx
import typer

from riskops.cli.common import (
    acting_principal,
    console,
    fail,
    get_settings,
    open_platform,
    print_json,
)
from riskops.governance.promotion import PromotionRefused, RegistryUnavailable, rollback
from riskops.identity.credentials import resolve_key


def _decide(
    ctx: typer.Context, model: str, version: str, comment: str,
    decision: Literal["approve", "decline"], wait: float | None, json_out: bool,
) -> None:  # fmt: skip
    settings = get_settings(ctx)
    key = resolve_key(settings)
    if not key:
        fail("no API key: set RISKOPS_API_KEY to your risk-officer key", code=3)
    base = settings.governance.resolved_url()
    waits = settings.governance.approve_wait_seconds if wait is None else wait
    if not json_out:
        console.print(
            f"{decision} {model} v{version}: waiting (up to {waits:.0f}s) for its sign-off "
            "request if it is not open yet…"
        )
    try:
        response = httpx.post(
            f"{base}/api/v1/models/{model}/versions/{version}/decision",
            json={"decision": decision, "justification": comment},
            headers={"Authorization": f"Bearer {key}"},
            timeout=waits + 90,
        )
    except httpx.HTTPError as error:
        fail(f"the governance API at {base} did not answer ({error}); is `riskops up` running?")
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    if response.status_code == 401:
        fail(f"not authenticated: {body.get('error')}", code=3)
    if response.status_code >= 400:
        detail = body.get("error") or body.get("detail") or response.text
        fail(f"{detail}", code=3 if response.status_code == 403 else 1)
    if json_out:
        print_json(body)
        return
    console.print(
        f"[green]{decision}d[/] {model} v{version} as {body['approver']} ({body['approver_role']}, "
        "authenticated; recorded)"
    )


def approve(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Model version."),
    comment: str = typer.Option(..., "--comment", help="Justification (recorded)."),
    wait: float | None = typer.Option(None, help="Seconds to wait for the sign-off request."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Approve a validated version as the principal of your key (risk officers only)."""
    _decide(ctx, model, version, comment, "approve", wait, json_out)


def decline(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Model version."),
    comment: str = typer.Option(..., "--comment", help="Justification (recorded)."),
    wait: float | None = typer.Option(None, help="Seconds to wait for the sign-off request."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Decline a version waiting for sign-off, as the principal of your key."""
    _decide(ctx, model, version, comment, "decline", wait, json_out)


def rollback_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    to: str | None = typer.Option(None, "--to", help="Earlier approved champion to return to."),
    reason: str = typer.Option("", "--reason", help="Why (recorded)."),
) -> None:
    """Return the champion to the previous approved champion, at once (operators)."""
    from riskops import outbox
    from riskops.governance.moves import after_move
    from riskops.stack.local import prefect_api

    settings = get_settings(ctx)
    with open_platform(ctx) as platform:
        principal = acting_principal(ctx, platform, "champion.rollback")
        try:
            move = rollback(
                engine=platform.engine, client=platform.mlflow, model=model, to_version=to,
                actor=principal.name, reason=reason,
            )  # fmt: skip
        except (PromotionRefused, RegistryUnavailable) as error:
            fail(str(error))
        if not move.changed:
            console.print(f"{model}: v{move.record.version} is already the champion")
            return
        with prefect_api(settings):
            try:
                outbox.deliver(platform.engine, ids=[move.outbox_id] if move.outbox_id else [])
            except Exception as error:  # committed: the watcher delivers it later
                console.print(f"[yellow]event not delivered yet ({error}); it will be retried")
        after_move(platform, model, move)
    was = move.record.previous_version
    console.print(
        f"[green]rolled back[/] {model}: champion v{move.record.version} (was v{was}), by "
        f"{principal.name}"
    )


def reconcile_command(
    ctx: typer.Context,
    model: str | None = typer.Argument(None, help="One model (default: every onboarded one)."),
    restore_alias: bool = typer.Option(
        False, "--restore", help="Put MODEL's alias back where the records say (operators)."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Compare every champion alias in MLflow with the promotion records (mismatch: exit 1)."""
    from riskops.governance.reconcile import reconcile, restore

    with open_platform(ctx) as platform:
        try:
            if restore_alias:
                if not model:
                    fail("--restore needs a MODEL", code=2)
                principal = acting_principal(ctx, platform, "champion.rollback")
                restore(engine=platform.engine, client=platform.mlflow, model=model,
                        actor=principal.name)  # fmt: skip
            else:
                acting_principal(ctx, platform, "champion.reconcile")
            findings = reconcile(
                engine=platform.engine, client=platform.mlflow, models=[model] if model else None
            )
        except RegistryUnavailable as error:
            fail(str(error))
    if json_out:
        print_json([f.__dict__ for f in findings])
    else:
        for finding in findings:
            console.print(
                ("[green]ok[/] " if finding.ok else "[red]MISMATCH[/] ") + finding.message
            )
    if not all(f.ok for f in findings):
        raise typer.Exit(1)
