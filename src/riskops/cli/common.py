"""What every command shares: settings, console, JSON output, failing with a clear message."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from riskops.platform import Platform
from riskops.settings import Settings, load_settings

if TYPE_CHECKING:
    from riskops.identity.principals import Principal

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def get_settings(ctx: typer.Context) -> Settings:
    """Settings are built once per invocation, in the root callback, and passed down."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
    return root.obj


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def open_platform(ctx: typer.Context, *, with_secrets: bool = False) -> Platform:
    """The platform of this invocation's settings (close it: ``with open_platform(ctx) as p``)."""
    return Platform.from_settings(get_settings(ctx), with_secrets=with_secrets)


def acting_principal(ctx: typer.Context, platform: Platform, action: str) -> Principal:
    """The authenticated principal of this command, allowed to perform ``action``; else exit 3."""
    from riskops.identity.credentials import current_principal
    from riskops.identity.principals import AuthError
    from riskops.identity.roles import Forbidden, require

    try:
        principal = current_principal(get_settings(ctx), platform.engine)
        require(principal.role, action, who=principal.name)
    except (AuthError, Forbidden) as error:
        fail(str(error), code=3)
    return principal


def sync_retrain_schedules(settings: Settings) -> None:
    """Bring the retrain-gate's cron schedules in line with the specs in force, if the stack runs.

    Called after a spec takes effect (onboard, approved change), so a new or changed
    ``monitoring.retrain_schedule`` does not wait for the next ``riskops up`` (which syncs too).
    """
    import httpx

    from riskops.stack.local import prefect_api

    later = "the retrain schedules are brought in line at the next `riskops up`"
    try:
        httpx.get(settings.prefect.resolved_api_url() + "/health", timeout=2.0).raise_for_status()
    except httpx.HTTPError:
        console.print(f"[dim]Prefect server not reachable: {later}[/]")
        return
    from riskops.monitoring.schedules import sync_schedules_now

    try:
        with prefect_api(settings):
            done = sync_schedules_now(settings.database_url)
    except LookupError as error:
        console.print(f"[dim]{error}: {later}[/]")
        return
    except Exception as error:  # the spec is committed already: warn, do not fail the command
        console.print(
            f"[yellow]warning:[/] the retrain schedules were not synced ({error}); {later}"
        )
        return
    for model, what in done.items():
        if what != "unchanged":
            console.print(f"retrain schedule of {model}: {what}")
