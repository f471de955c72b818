"""`riskops onboard SPEC` and `riskops models list | show | lineage`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from riskops import catalog, ledger
from riskops.cli.common import (
    acting_principal,
    console,
    errors,
    fail,
    get_settings,
    open_platform,
    print_json,
    sync_retrain_schedules,
)
from riskops.db import session_scope
from riskops.platform import Platform
from riskops.settings import Settings
from riskops.specs import SpecError, load_spec

app = typer.Typer(help="Onboarded models, their versions and lineage.", no_args_is_help=True)


def onboard(
    ctx: typer.Context,
    spec_path: Path = typer.Argument(..., help="Model spec YAML (see models/)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Validate a model spec and register it so that its data can land (model developers).

    A change to a model that already has a champion is stored as pending: it applies once a
    risk officer approves it (`riskops specs approve`).
    """
    try:
        spec = load_spec(spec_path)
    except SpecError as error:
        fail(str(error), code=2)
    with open_platform(ctx) as platform:
        principal = acting_principal(ctx, platform, "spec.onboard")
        try:
            with session_scope(platform.engine) as session:
                record, created = ledger.register_spec(
                    session=session, spec=spec, source=str(spec_path), actor=principal.name
                )
                result = {"name": record.name, "spec_hash": record.spec_hash, "created": created,
                          "status": record.status, "by": principal.name}  # fmt: skip
        except ledger.SpecPolicyError as error:
            fail(str(error), code=2)
    if created and result["status"] == "active":
        sync_retrain_schedules(get_settings(ctx))
    if json_out:
        print_json(result)
        return
    if not created:
        verb = f"already onboarded (unchanged, {result['status']})"
    elif result["status"] == "pending":
        verb = (
            "changed: PENDING until a risk officer approves it (`riskops specs approve "
            f"{spec.name} {result['spec_hash'][:12]} --comment ...`); the spec in force "
            "is unchanged"
        )
    else:
        verb = "onboarded"
    console.print(
        f"{spec.name} {verb}: spec {result['spec_hash'][:12]}, {spec.risk_class} risk, "
        f"by {principal.name}"
    )


@app.command("list")
def list_models(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Onboarded models with their dataset and model version counts."""
    with open_platform(ctx) as platform, session_scope(platform.engine) as session:
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
                "model_versions": len(catalog.list_model_versions(session=session, model=r.name)),
            }
            for r in ledger.list_specs(session=session)
        ]
    if json_out:
        print_json(rows)
        return
    table = Table("name", "family", "risk", "owner", "spec", "datasets", "versions")
    for r in rows:
        table.add_row(
            r["name"], r["family"], r["risk_class"], r["owner"], r["spec_hash"][:12],
            str(r["dataset_versions"]), str(r["model_versions"]),
        )  # fmt: skip
    console.print(table)


def _aliases(settings: Settings, name: str) -> dict[str, str]:
    """alias → version from the MLflow registry; empty (with a warning) when unreachable."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        model = MlflowClient(settings.mlflow.resolved_tracking_uri()).get_registered_model(name)
    except (MlflowException, OSError) as error:
        errors.print(f"[yellow]warning:[/] MLflow aliases unavailable: {str(error)[:200]}")
        return {}
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


def _show_data(settings: Settings, name: str) -> dict[str, Any]:
    with (
        Platform.from_settings(settings, with_secrets=False) as platform,
        session_scope(platform.engine) as session,
    ):
        try:
            spec = ledger.current_spec(session=session, name=name)
        except ledger.UnknownModelError as error:
            fail(str(error))
        landings = [
            r.model_dump(mode="json") for r in ledger.list_landings(session=session, model=name)
        ]
        versions = [
            catalog.lineage_of_version(session=session, model=name, version=v.version)
            for v in catalog.list_model_versions(session=session, model=name)
        ]
    aliases = _aliases(settings, name) if versions else {}
    for item in versions:
        number = item["model_version"]["version"]
        item["aliases"] = sorted(a for a, v in aliases.items() if v == number)
    return {"spec": spec.model_dump(mode="json"), "versions": versions, "landed": landings}


@app.command("show")
def show_model(
    ctx: typer.Context, name: str, json_out: bool = typer.Option(False, "--json")
) -> None:
    """One model: versions with metrics, aliases and lineage back to the landed file."""
    data = _show_data(get_settings(ctx), name)
    if json_out:
        print_json(data)
        return
    spec = data["spec"]
    console.print(
        f"[bold]{name}[/] ({spec['family']}, {spec['risk_class']} risk, owner {spec['owner']})"
    )
    versions = Table(
        "version", "aliases", "AUC", "KS", "trainer", "feature set", "landed file (sha256)"
    )
    for item in data["versions"]:
        mv, fs, landed = item["model_version"], item["feature_set"], item["landed"]
        metrics = mv["metrics"]
        versions.add_row(
            mv["version"], ", ".join(item["aliases"]),
            f"{metrics.get('holdout_auc', float('nan')):.3f}",
            f"{metrics.get('holdout_ks', float('nan')):.3f}",
            mv["trainer"], fs["version"] if fs else "",
            f"{landed['filename']} ({landed['sha256'][:16]})" if landed else "",
        )  # fmt: skip
    console.print(versions)
    landed_table = Table("landed file", "sha256", "status", "seen", "dataset version / quarantine")
    for item in data["landed"]:
        where = item["dataset_version_id"] or item["quarantine_uri"] or ""
        landed_table.add_row(
            item["filename"], item["sha256"][:16], item["status"], str(item["times_seen"]), where
        )
    console.print(landed_table)


def _print_provenance(name: str, item: dict[str, Any]) -> None:
    approvals = ", ".join(
        f"{a['approver']} ({a['role'] or 'role not recorded'}"
        f"{'' if a['verified'] else ', NOT authenticated'}, {a['decided_at'][:19]})"
        for a in item["approved_by"]
    )
    landed = f" from {item['landed_file']}" if item["landed_file"] else ""
    lines = [
        f"[bold]{name} v{item['version']}[/] ({item['source']}, by {item['trainer']})",
        f"  code commit    {item['code_commit']}",
        f"  image digest   {item['image_digest']}",
        f"  data           {item['dataset_version_id'] or '?'} sha256 "
        f"{item['dataset_sha256'] or '?'}{landed}",
        f"  feature set    {item['feature_set_version'] or '?'} (definitions "
        f"{(item['definitions_hash'] or '?')[:12]}, built by code "
        f"{item['feature_set_code_version'] or '?'})",
        f"  MLflow run     {item['run_id'] or '?'}",
        f"  approved by    {approvals or 'nobody (not approved)'}",
    ]
    for line in lines:  # digests and hashes are copied from here: never wrapped
        console.print(line, soft_wrap=True)
    if item["mlflow_error"]:
        errors.print(f"[yellow]warning:[/] {item['mlflow_error']}")


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    name: str,
    version: str | None = typer.Option(None, "--version", help="Only this version."),
    sha256: str | None = typer.Option(None, "--sha256", help="Walk forward from a landed hash."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Per version: code commit, image digest, data, feature set, MLflow run and who approved it.

    With --sha256, walk forward instead: a landed file's hash to the versions trained on it.
    """
    from riskops.provenance import model_provenance, version_provenance

    if version is not None and sha256 is not None:
        fail("give at most one of --version or --sha256", code=2)
    with open_platform(ctx) as platform, session_scope(platform.engine) as session:
        try:
            if sha256 is not None:
                data: Any = catalog.versions_trained_on(
                    session=session, model=name, sha256_prefix=sha256
                )
            elif version is not None:
                data = version_provenance(
                    session=session, client=platform.mlflow, model=name, version=version
                )
            else:
                data = model_provenance(session=session, client=platform.mlflow, model=name)
        except LookupError as error:
            fail(str(error))
    if json_out:
        print_json(data)
        return
    if sha256 is not None:
        for item in data:
            shown = ", ".join(item["model_versions"]) or "none yet"
            console.print(f"{item['sha256'][:16]} → {item['dataset_version']} → versions {shown}")
        return
    items = [data] if version is not None else data
    if not items:
        fail(f"{name} has no model versions in the riskops catalogue yet")
    for item in items:
        _print_provenance(name, item)
