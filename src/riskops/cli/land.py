"""`riskops land FILE --model NAME [--wait]`."""

from __future__ import annotations

from pathlib import Path

import typer

from riskops.cli.common import console, fail, get_settings, print_json
from riskops.landing.client import LandingTimeout, land_file, wait_for_check


def land(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV or parquet file to land."),
    model: str = typer.Option(..., "--model", "-m", help="Onboarded model the data is for."),
    wait: bool = typer.Option(False, "--wait", help="Block until the contract check is done."),
    timeout: float = typer.Option(300.0, help="Seconds --wait waits at most."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Put a file in the landing zone; the watcher announces it and the contract check runs."""
    settings = get_settings(ctx)
    if not file.is_file():
        fail(f"{file} is not a file", code=2)
    landed = land_file(settings, file, model)
    result: dict[str, object] = {"model": model, "sha256": landed.sha256, "uri": landed.uri}
    if not json_out:
        console.print(
            f"landed {file.name} for {model} as {landed.uri} (sha256 {landed.sha256[:16]})"
        )
    if wait:
        try:
            row = wait_for_check(settings, model, landed.sha256, timeout=timeout)
        except LandingTimeout as error:
            fail(str(error), code=124)
        result |= {
            "status": row.status,
            "dataset_version": row.dataset_version_id,
            "quarantine_uri": row.quarantine_uri,
            "reasons": row.reasons or [],
        }
        if not json_out:
            if row.status == "accepted":
                console.print(f"[green]accepted[/] as dataset version {row.dataset_version_id}")
            elif row.status == "failed":
                console.print(
                    "[red]the contract check failed[/] (the file is still in landing; retry the "
                    "contract-check flow run in the Prefect UI once the cause is fixed)"
                )
            else:
                console.print(f"[red]rejected[/], quarantined at {row.quarantine_uri}")
                for reason in row.reasons or []:
                    console.print(f"  - [{reason['code']}] {reason['message']}")
    if json_out:
        print_json(result)
    if wait and result.get("status") in {"rejected", "failed"}:
        raise typer.Exit(1)
