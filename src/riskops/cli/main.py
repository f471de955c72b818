"""Entry point: `riskops --help`."""

from __future__ import annotations

import typer

from riskops.cli import (
    audit,
    cards,
    cost,
    governance,
    land,
    models,
    monitor,
    principals,
    scoring,
    specs,
    stack,
)
from riskops.cli.data import app as data_app

app = typer.Typer(
    name="riskops",
    help="Keep credit, fraud and transaction-risk models correct, fast and auditable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(stack.up)
app.command()(stack.down)
app.command()(stack.status)
app.command(hidden=True)(stack.watch)
app.command()(models.onboard)
app.command()(land.land)
app.command()(governance.approve)
app.command()(governance.decline)
app.command("rollback")(governance.rollback_command)
app.command("reconcile")(governance.reconcile_command)
app.command()(cards.card)
app.command()(scoring.serve)
app.command()(scoring.score)
app.add_typer(models.app, name="models")
app.add_typer(audit.app, name="audit", help="The tamper-evident audit trail.")
app.add_typer(data_app, name="data", help="Synthetic data for the three model families.")
app.add_typer(principals.app, name="principals")
app.add_typer(specs.app, name="specs")
app.add_typer(land.quarantine_app, name="quarantine")
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(monitor.drift_app, name="drift")
app.add_typer(cost.cost_app, name="cost")


@app.command()
def demo(ctx: typer.Context) -> None:
    """The main job end to end: stack up, three models onboarded, data landed and checked."""
    from riskops.cli.common import get_settings
    from riskops.demo import run_demo

    run_demo(get_settings(ctx))
