"""`riskops onboard SPEC` and `riskops models list | show`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from riskops import ledger
from riskops.cli.common import console, fail, get_settings, print_json
from riskops.db import make_engine, session_scope
from riskops.specs import SpecError, load_spec

app = typer.Typer(help="Onboarded models.", no_args_is_help=True)


def onboard(
    ctx: typer.Context,
    spec_path: Path = typer.Argument(..., help="Model spec YAML (see models/)."),
    actor: str = typer.Option("cli", "--as", help="Who onboards it (recorded)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Validate a model spec and register it so that its data can land."""
    try:
        spec = load_spec(spec_path)
    except SpecError as error:
        fail(str(error), code=2)
    engine = make_engine(get_settings(ctx).database_url)
    with session_scope(engine) as session:
        record, created = ledger.register_spec(
            session=session, spec=spec, source=str(spec_path), actor=actor
        )
        result = {"name": record.name, "spec_hash": record.spec_hash, "created": created}
    if json_out:
        print_json(result)
    else:
        verb = "onboarded" if created else "already onboarded (unchanged)"
        console.print(
            f"{spec.name} {verb}: spec {result['spec_hash'][:12]}, {spec.risk_class} risk"
        )


@app.command("list")
def list_models(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Onboarded models with their dataset versions."""
    engine = make_engine(get_settings(ctx).database_url)
    with session_scope(engine) as session:
        rows = [
            {
                "name": r.name,
                "family": r.family,
                "risk_class": r.risk_class,
                "owner": r.owner,
                "spec_hash": r.spec_hash,
                "dataset_versions": len(
                    ledger.list_dataset_versions(session=session, model=r.name)
                ),
            }
            for r in ledger.list_specs(session=session)
        ]
    if json_out:
        print_json(rows)
        return
    table = Table("name", "family", "risk", "owner", "spec", "datasets")
    for r in rows:
        table.add_row(
            r["name"],
            r["family"],
            r["risk_class"],
            r["owner"],
            r["spec_hash"][:12],
            str(r["dataset_versions"]),
        )
    console.print(table)


@app.command("show")
def show_model(
    ctx: typer.Context, name: str, json_out: bool = typer.Option(False, "--json")
) -> None:
    """One model: its spec, landed files and dataset versions."""
    engine = make_engine(get_settings(ctx).database_url)
    with session_scope(engine) as session:
        try:
            spec = ledger.current_spec(session=session, name=name)
        except ledger.UnknownModelError as error:
            fail(str(error))
        landings = [
            row.model_dump(mode="json") for row in ledger.list_landings(session=session, model=name)
        ]
        versions = [
            d.model_dump(mode="json")
            for d in ledger.list_dataset_versions(session=session, model=name)
        ]
    data = {"spec": spec.model_dump(mode="json"), "landed": landings, "dataset_versions": versions}
    if json_out:
        print_json(data)
        return
    console.print(f"[bold]{name}[/] ({spec.family}, {spec.risk_class} risk, owner {spec.owner})")
    table = Table("landed file", "sha256", "status", "seen", "dataset version / quarantine")
    for item in landings:
        where = item["dataset_version_id"] or item["quarantine_uri"] or ""
        table.add_row(
            item["filename"], item["sha256"][:16], item["status"], str(item["times_seen"]), where
        )
    console.print(table)
