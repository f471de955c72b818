"""`riskops audit verify | head | export | verify-export`: check the trail and regulator exports."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from riskops.audit import ChainHead, VerifyResult, collect_anchors, head, verify_anchored
from riskops.cli.common import (
    acting_principal,
    console,
    errors,
    fail,
    get_settings,
    open_platform,
    print_json,
)
from riskops.db import session_scope

app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


def _parse_head(value: str) -> tuple[int, str]:
    """``SEQ:HASH`` → (seq, hash); exits with code 2 on anything else."""
    seq, sep, row_hash = value.partition(":")
    if not sep or not seq.isdigit() or len(row_hash) != 64:
        fail(f"--expect-head must be SEQ:HASH (64 hex characters), got {value!r}", code=2)
    return int(seq), row_hash.lower()


def _anchors(ctx: typer.Context) -> list[ChainHead]:
    """Every head anchored in the MLflow registry; exits naming the registry when unreadable."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = get_settings(ctx).mlflow.resolved_tracking_uri()
    try:
        return collect_anchors(MlflowClient(tracking_uri=uri, registry_uri=uri))
    except (MlflowException, OSError, ValueError) as error:
        fail(
            f"cannot read the anchored chain heads from the MLflow registry at {uri}: {error}. "
            "Start the stack (or set RISKOPS_MLFLOW_TRACKING_URI), or pass --no-anchors "
            "knowing that rows cut from the tail then go unnoticed"
        )


def _check(
    ctx: typer.Context, anchors: list[ChainHead], read_anchors: bool
) -> tuple[VerifyResult, ChainHead]:
    from sqlmodel import select

    from riskops.records import PromotionRecord

    with open_platform(ctx) as platform, session_scope(platform.engine) as session:
        tip = head(session=session)
        moved = session.exec(select(PromotionRecord)).first() is not None
        if read_anchors and moved and not anchors:
            # every champion move anchors the head in MLflow: none found means they were removed
            problem = (
                "the records hold champion moves, each anchored in MLflow, but no anchor was "
                "found in the registry: anchors were deleted (or this is the wrong MLflow)"
            )
            return VerifyResult(False, 0, None, problem), tip
        return verify_anchored(session=session, anchors=anchors), tip


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    expect_head: str | None = typer.Option(
        None, "--expect-head", help="SEQ:HASH kept elsewhere, checked besides the anchors."
    ),
    no_anchors: bool = typer.Option(
        False, "--no-anchors", help="Do not read the heads anchored in MLflow (weaker check)."
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Walk the chain against the newest head anchored in MLflow; exit 1 naming the bad row."""
    anchors = [] if no_anchors else _anchors(ctx)
    if expect_head is not None:
        anchors.append(ChainHead(*_parse_head(expect_head)))
    result, tip = _check(ctx, anchors, read_anchors=not no_anchors)
    newest = max(anchors, key=lambda a: a.seq, default=None)
    if json_out:
        print_json(
            {**asdict(result), "head": tip._asdict(), "anchors_checked": len(anchors),
             "newest_anchor": newest._asdict() if newest else None}
        )  # fmt: skip
    if not result.ok:
        fail(f"audit trail broken: {result.problem}")
    if not json_out:
        against = f"newest anchor {newest.seq} (of {len(anchors)})" if newest else "no anchor"
        console.print(
            f"[green]audit trail intact:[/] {result.rows_checked} rows, "
            f"head {tip.seq}:{tip.row_hash}, checked against {against}"
        )
        if newest is None:
            console.print("[yellow]warning:[/] no anchored head: rows cut from the tail go unseen")


@app.command("head")
def head_command(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Print the newest row as SEQ:HASH, to anchor outside the database."""
    with open_platform(ctx) as platform, session_scope(platform.engine) as session:
        tip = head(session=session)
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
    """One signed zip for a regulator: card, gates, lineage, audit rows + proof, approvals."""
    from riskops.compliance import verify_export
    from riskops.secrets import signing_key
    from riskops.stages.cards import write_export

    settings = get_settings(ctx)
    target = out or settings.home_dir / "exports" / f"{model}-v{version}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    key = signing_key(settings)
    with open_platform(ctx) as platform:
        acting_principal(ctx, platform, "audit.read")
        try:
            path = write_export(
                engine=platform.engine, client=platform.mlflow, lake=platform.lake, model=model,
                version=version, out_path=target, signing_key=key,
            )  # fmt: skip
        except LookupError as error:
            fail(str(error))
    problems = verify_export(path, public_key=key.public_key())
    if problems:
        fail(f"export written to {path} but does not verify: {problems}")
    console.print(f"regulator export of {model} v{version}: {path} (signed, verified)")


@app.command("verify-export")
def verify_export_command(
    zip_path: Path = typer.Argument(..., help="The regulator export (zip)."),
    public_key: Path | None = typer.Option(
        None,
        "--public-key",
        help="The platform's published public key (PEM); default: the key inside the zip, "
        "whose fingerprint you must then compare yourself.",
    ),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Check an export on its own: signature, files, every audit row, proof and anchor."""
    from riskops.compliance import verify_export

    if public_key is not None and not public_key.is_file():
        fail(f"--public-key {public_key}: no such file", code=2)
    problems = verify_export(zip_path, public_key=public_key)
    if json_out:
        print_json({"path": str(zip_path), "ok": not problems, "problems": problems})
    if problems:
        fail(f"{zip_path} was altered:\n  " + "\n  ".join(problems))
    if not json_out:
        trust = "the given public key" if public_key else "the key inside the export"
        console.print(f"[green]export intact:[/] {zip_path} (signature checked with {trust})")


@app.command("public-key")
def public_key_command(ctx: typer.Context) -> None:
    """Print the platform's export-signing public key (PEM), to publish to regulators."""
    from riskops.compliance.signing import fingerprint, public_pem
    from riskops.secrets import signing_key

    key = signing_key(get_settings(ctx))
    typer.echo(public_pem(key).decode("ascii"), nl=False)
    errors.print(f"fingerprint (SHA-256 of the raw key): {fingerprint(key)}")
