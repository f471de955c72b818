"""`riskops up | down | status | watch`."""

from __future__ import annotations

import logging
import signal
import threading

import typer
from rich.table import Table

from riskops.cli.common import console, fail, get_settings, print_json
from riskops.db import session_scope
from riskops.settings import Settings
from riskops.stack import local
from riskops.stack.ports import PortInUseError


def up(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Start the local stack (Prefect, MLflow, worker, watcher) and deploy prefect.yaml."""
    settings = get_settings(ctx)
    try:
        with console.status("starting the riskops stack…", spinner="dots"):
            summary = local.up(settings)
    except (PortInUseError, local.StackError) as error:
        fail(str(error))
    if json_out:
        print_json(summary)
        return
    console.print(f"[green]riskops is up[/] in {summary['seconds']}s")
    console.print(f"  Prefect UI  {summary['prefect_ui']}")
    console.print(f"  MLflow UI   {summary['mlflow_ui']}")
    console.print(f"  sign-off    {summary['governance']}")
    console.print(f"  Spark       {summary['spark']} (feature builds, batch scoring)")
    console.print(f"  Slack       {summary['slack']} (messages in {summary['slack_messages']})")
    for principal in summary["principals"]:
        console.print(
            f"  {principal['role']:<12}{principal['name']} (key in {principal['key_file']})"
        )
    console.print(f"  state       {summary['home']}")


def down(ctx: typer.Context) -> None:
    """Stop exactly what `riskops up` started."""
    stopped = local.down(get_settings(ctx))
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def status(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Each part of the local stack, with its URL and health."""
    settings = get_settings(ctx)
    rows = local.status_dicts(settings)
    mlflow_up = any(r["name"] == "mlflow-server" and r["healthy"] for r in rows)
    if mlflow_up or settings.mlflow.tracking_uri:
        rows.append(_champions(settings))
    if json_out:
        print_json(rows)
    else:
        table = Table("component", "state", "pid", "url", "log")
        for row in rows:
            state = (
                "[green]healthy[/]"
                if row["healthy"]
                else ("[yellow]unhealthy[/]" if row["running"] else "[red]stopped[/]")
            )
            table.add_row(
                str(row["name"]), state, str(row["pid"] or ""), row["url"] or "", str(row["log"])
            )
        console.print(table)
    if not all(row["healthy"] for row in rows):
        raise typer.Exit(1)


def _champions(settings: Settings) -> dict[str, object]:
    """A status row: does every champion alias agree with the promotion records (read-only)?"""
    from riskops.governance.reconcile import check_model
    from riskops.ledger import list_specs
    from riskops.platform import Platform

    mismatches: list[str] = []
    try:
        with (
            Platform.from_settings(settings, with_secrets=False) as platform,
            session_scope(platform.engine) as session,
        ):
            for record in list_specs(session=session):
                finding = check_model(platform.mlflow, session, record.name)
                if not finding.ok:
                    mismatches.append(finding.message)
    except Exception as error:  # the registry is unreachable: say so, do not guess
        mismatches.append(f"champions could not be checked: {error}")
    return {
        "name": "champions", "running": True, "healthy": not mismatches, "pid": None,
        "url": None, "log": "; ".join(mismatches) or "every champion alias matches the records",
        "mismatches": mismatches,
    }  # fmt: skip


def watch(ctx: typer.Context) -> None:
    """Run the landing watcher in the foreground (`riskops up` starts it for you)."""
    from riskops.landing.run import run_watcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_watcher(get_settings(ctx), stop=stop)
