"""`riskops up | down | status | watch`."""

from __future__ import annotations

import logging
import signal
import threading

import typer
from rich.table import Table

from riskops.cli.common import console, fail, get_settings, print_json
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
    console.print(f"  state       {summary['home']}")


def down(ctx: typer.Context) -> None:
    """Stop exactly what `riskops up` started."""
    stopped = local.down(get_settings(ctx))
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def status(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Each part of the local stack, with its URL and health."""
    rows = local.status_dicts(get_settings(ctx))
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


def watch(ctx: typer.Context) -> None:
    """Run the landing watcher in the foreground (`riskops up` starts it for you)."""
    from riskops.landing.run import run_watcher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_watcher(get_settings(ctx), stop=stop)
