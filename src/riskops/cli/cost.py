"""`riskops cost report [--since DATE] [--json]`: what the flow runs used and cost."""

from __future__ import annotations

import datetime as dt

import typer

from riskops.cli.common import acting_principal, console, fail, open_platform, print_json

cost_app = typer.Typer(help="Cost per run: CPU, memory, rows, wall time.", no_args_is_help=True)


def _since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r} is not a date: give YYYY-MM-DD or an ISO time", code=2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@cost_app.command("report")
def report(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None, help="Only runs started at or after this date or time (UTC unless it says)."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Sum CPU-seconds, rows, wall time and estimated cost by model and stage."""
    from riskops.cost.report import CostReportError, cost_report

    start = _since(since)
    with open_platform(ctx) as platform:
        acting_principal(ctx, platform, "cost.read")
        try:
            lines = cost_report(platform.engine, since=start)
        except CostReportError as error:
            fail(str(error), code=2)
    if json_out:
        print_json({"since": start.isoformat() if start else None,
                    "lines": [line.to_dict() for line in lines]})  # fmt: skip
        return
    if not lines:
        console.print("no metered runs" + (f" since {start:%Y-%m-%d %H:%M} UTC" if start else ""))
        return
    console.print(f"{'model':<22} {'stage':<16} {'runs':>5} {'CPU-s':>10} {'wall-s':>10} "
                  f"{'peak MiB':>9} {'rows':>11} {'cost':>12}")  # fmt: skip
    for line in lines:
        rows = f"{line.rows:,}" + ("*" if line.runs_without_rows else "")
        console.print(
            f"{line.model:<22} {line.stage:<16} {line.runs:>5} {line.cpu_seconds:>10.1f} "
            f"{line.wall_seconds:>10.1f} {line.max_peak_rss_mib:>9.0f} {rows:>11} "
            f"{line.cost:>8.4f} {line.currency}"
        )
    if any(line.runs_without_rows for line in lines):
        console.print("* some runs of the stage report no row count")
