"""`riskops land FILE --model NAME [--wait]`."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlmodel import Session

from riskops.cli.common import (
    acting_principal,
    console,
    fail,
    get_settings,
    open_platform,
    print_json,
)
from riskops.landing.client import LandingTimeout, land_file, wait_for_check
from riskops.landing.recheck import RecheckRefused, request_recheck
from riskops.records import LandedObject

quarantine_app = typer.Typer(help="Files the contract check refused.", no_args_is_help=True)


def _report_duplicate(row: LandedObject, result: dict[str, object], json_out: bool) -> None:
    """Same bytes as an earlier landing: say when, which verdict, which dataset; do nothing."""
    result |= {
        "duplicate": True,
        "first_seen_at": row.first_seen_at.isoformat(),
        "filename": row.filename,
        "status": row.status,
        "dataset_version": row.dataset_version_id,
        "quarantine_uri": row.quarantine_uri,
    }
    if json_out:
        print_json(result)
        return
    verdict = {
        "accepted": f"accepted as dataset version {row.dataset_version_id}",
        "rejected": f"rejected, in quarantine at {row.quarantine_uri} (re-check it against the "
        f"current spec: `riskops quarantine recheck {row.model} {row.sha256[:16]}`)",
    }.get(row.status, f"{row.status} (its check has not finished)")
    console.print(
        f"[yellow]duplicate[/]: these bytes landed on {row.first_seen_at:%Y-%m-%d %H:%M} UTC as "
        f"{row.filename} (sha256 {row.sha256[:16]}); {verdict}. Nothing was landed."
    )


@quarantine_app.command("recheck")
def recheck(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model the file was landed for."),
    sha256: str = typer.Argument(..., help="sha256 of the quarantined file (or a prefix)."),
    wait: bool = typer.Option(False, "--wait", help="Block until the new verdict is in."),
    timeout: float = typer.Option(300.0, help="Seconds --wait waits at most."),
) -> None:
    """Check a quarantined file again, against the spec now in force (audited)."""
    from riskops import outbox
    from riskops.stack.local import prefect_api

    with open_platform(ctx) as platform:
        principal = acting_principal(ctx, platform, "data.recheck")
        try:
            done = request_recheck(
                platform=platform, model=model, sha256=sha256, actor=principal.name
            )
        except (RecheckRefused, LookupError) as error:
            fail(str(error), code=2)
        with prefect_api(get_settings(ctx)):
            try:
                outbox.deliver(platform.engine, ids=[done.outbox_id])
            except Exception as error:
                console.print(f"[yellow]queued; delivery will be retried ({error})")
    console.print(
        f"re-check {done.attempt} of {model} {done.sha256[:16]} requested by {principal.name} "
        f"against spec {done.spec_hash[:12]}"
    )
    if not wait:
        return
    try:
        row = wait_for_check(get_settings(ctx), model, done.sha256, timeout=timeout)
    except LandingTimeout as error:
        fail(str(error), code=124)
    if row.status == "accepted":
        console.print(f"[green]accepted[/] as dataset version {row.dataset_version_id}")
        return
    console.print(f"[red]{row.status}[/] again:")
    for reason in row.reasons or []:
        console.print(f"  - [{reason['code']}] {reason['message']}")
    raise typer.Exit(1)


def land(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV or parquet file to land."),
    model: str = typer.Option(..., "--model", "-m", help="Onboarded model the data is for."),
    wait: bool = typer.Option(False, "--wait", help="Block until the contract check is done."),
    timeout: float = typer.Option(300.0, help="Seconds --wait waits at most."),
    labels: bool = typer.Option(
        False, "--labels", help="The file holds outcomes of earlier decisions (late labels)."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Put a file in the landing zone; the watcher announces it and the contract check runs.

    With --labels the file holds outcomes (the spec's target per decision id, or per entity and
    decided_at): pseudonymised, stored and announced as riskops.labels.landed.
    """
    settings = get_settings(ctx)
    if not file.is_file():
        fail(f"{file} is not a file", code=2)
    if labels:
        _land_labels(ctx, file, model, json_out)
        return
    with open_platform(ctx) as platform:
        principal = acting_principal(ctx, platform, "data.land")
    landed = land_file(settings, file, model, landed_by=principal.name)
    result: dict[str, object] = {"model": model, "sha256": landed.sha256, "uri": landed.uri}
    if landed.duplicate_of is not None:
        _report_duplicate(landed.duplicate_of, result, json_out)
        return
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


def _land_labels(ctx: typer.Context, file: Path, model: str, json_out: bool) -> None:
    from riskops import outbox
    from riskops.ledger import current_spec
    from riskops.monitoring.labels import LabelsRefused, land_labels
    from riskops.stack.local import prefect_api

    with open_platform(ctx, with_secrets=True) as platform:
        principal = acting_principal(ctx, platform, "data.land")
        with Session(platform.engine) as session:
            try:
                spec = current_spec(session=session, name=model)
            except LookupError as error:
                fail(str(error), code=2)
        try:
            done = land_labels(platform=platform, spec=spec, path=file, actor=principal.name)
        except LabelsRefused as error:
            fail(str(error), code=1)
        if done.outbox_id is not None:
            with prefect_api(get_settings(ctx)):
                try:
                    outbox.deliver(platform.engine, ids=[done.outbox_id])
                except Exception as error:  # the watcher's sweep delivers it later
                    console.print(
                        f"[yellow]riskops.labels.landed queued; delivery retried ({error})"
                    )
    if json_out:
        print_json(done.to_dict())
    elif done.duplicate:
        console.print(f"[yellow]duplicate[/]: these outcomes were landed before ({done.uri}).")
    else:
        console.print(
            f"landed {done.rows} outcomes of {model} ({done.bads} bad, {done.with_decision_id} "
            f"with a decision id) as {done.uri}"
        )
