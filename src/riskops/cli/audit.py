"""`riskops audit verify | head | export`: check the audit trail, anchor it, export a version."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from riskops.audit import ChainHead, VerifyResult, head, verify
from riskops.cli.common import console, fail, get_settings, print_json
from riskops.db import make_engine, session_scope

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


def _parse_head(value: str) -> tuple[int, str]:
    """``SEQ:HASH`` → (seq, hash); exits with code 2 on anything else."""
    seq, sep, row_hash = value.partition(":")
    if not sep or not seq.isdigit() or len(row_hash) != 64:
        fail(f"--expect-head must be SEQ:HASH (64 hex characters), got {value!r}", code=2)
    return int(seq), row_hash.lower()


def _check(
    ctx: typer.Context, expected_head: tuple[int, str] | None
) -> tuple[VerifyResult, ChainHead]:
    engine = make_engine(get_settings(ctx).database_url)
    try:
        with session_scope(engine) as session:
            return verify(session=session, expected_head=expected_head), head(session=session)
    finally:
        engine.dispose()


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="SEQ:HASH anchored earlier; catches rows cut from the tail."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Walk the chain; exit 1 naming the first edited, deleted, inserted or reordered row."""
    anchor = _parse_head(expect_head) if expect_head is not None else None
    result, tip = _check(ctx, anchor)
    if json_out:
        print_json({**asdict(result), "head": tip._asdict()})
    if not result.ok:
        fail(f"audit trail broken: {result.problem}")
    if not json_out:
        console.print(
            f"[green]audit trail intact:[/] {result.rows_checked} rows, "
            f"head {tip.seq}:{tip.row_hash}"
        )


@app.command("head")
def head_command(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Print the newest row as SEQ:HASH, to anchor outside the database."""
    engine = make_engine(get_settings(ctx).database_url)
    with session_scope(engine) as session:
        tip = head(session=session)
    engine.dispose()
    if json_out:
        print_json(tip._asdict())
    else:
        console.print(f"{tip.seq}:{tip.row_hash}")


@app.command("export")
def export(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Model version."),
    out: Path | None = typer.Option(None, "--out", help="Zip path (default: under RISKOPS_HOME)."),
) -> None:
    """One zip for a regulator: card, gates, lineage, audit rows + chain proof, approvals, data."""
    from mlflow.tracking import MlflowClient

    from riskops.compliance import verify_export
    from riskops.lake.factory import lake_from_settings
    from riskops.stages.cards import write_export

    settings = get_settings(ctx)
    target = out or settings.home_dir / "exports" / f"{model}-v{version}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    client = MlflowClient(settings.mlflow.resolved_tracking_uri())
    try:
        path = write_export(
            engine=engine, client=client, lake=lake_from_settings(settings), model=model,
            version=version, out_path=target,
        )  # fmt: skip
    except LookupError as error:
        fail(str(error))
    finally:
        engine.dispose()
    problems = verify_export(path)
    if problems:
        fail(f"export written to {path} but does not verify: {problems}")
    console.print(f"regulator export of {model} v{version}: {path} (manifest verified)")
