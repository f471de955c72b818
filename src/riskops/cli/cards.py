"""`riskops card NAME [VERSION]`: the generated model card (Markdown, HTML, JSON)."""

from __future__ import annotations

from pathlib import Path

import typer

from riskops.cli.common import (
    acting_principal,
    console,
    fail,
    get_settings,
    open_platform,
    print_json,
)
from riskops.db import session_scope


def card(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    version: str | None = typer.Argument(None, help="Version (default: champion, else latest)."),
    out: Path | None = typer.Option(None, "--out", help="Directory (default: under RISKOPS_HOME)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Write the model card of a version from the records (EU AI Act Annex IV, SR 26-2)."""
    from riskops import catalog
    from riskops.governance.promotion import current_champion
    from riskops.stages.cards import write_card

    settings = get_settings(ctx)
    with open_platform(ctx) as platform:
        acting_principal(ctx, platform, "card.write")  # the card is logged to the MLflow run
        if version is None:
            version = current_champion(platform.mlflow, model)
        if version is None:
            with session_scope(platform.engine) as session:
                versions = catalog.list_model_versions(session=session, model=model)
            if not versions:
                fail(f"{model} has no registered version yet")
            version = versions[-1].version
        target = out or settings.home_dir / "cards" / model / f"v{version}"
        try:
            files = write_card(
                engine=platform.engine, client=platform.mlflow, model=model, version=version,
                out_dir=target,
            )  # fmt: skip
        except LookupError as error:
            fail(str(error))
    paths = {"markdown": str(files.markdown), "html": str(files.html), "json": str(files.json)}
    if json_out:
        print_json({"model": model, "version": version, **paths})
        return
    console.print(f"model card of {model} v{version}:")
    for kind, path in paths.items():
        console.print(f"  {kind:8} {path}")
