"""`riskops data generate FAMILY --rows N --seed S --out PATH [--drift KIND=LEVEL ...]`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from riskops.cli.common import console, fail, print_json

app = typer.Typer(help="Synthetic data for the three model families.", no_args_is_help=True)


@app.callback()
def _data() -> None:
    """Synthetic data for the three model families (credit, fraud, transfers)."""


@app.command()
def generate(
    family: str = typer.Argument(
        ...,
        help="credit_scoring | fraud_detection | transaction_risk "
        "(or the model names credit-scoring, fraud-detection, transaction-risk).",
        show_default=False,
    ),
    rows: int = typer.Option(100_000, "--rows", "-n", min=1, help="Rows to generate."),
    seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .parquet, or .csv."),
    drift: list[str] = typer.Option(
        [],
        "--drift",
        help="KIND=LEVEL, repeatable; kinds: covariate, prior, concept, new_categories, "
        "missing (e.g. --drift covariate=0.5 --drift missing=0.2).",
    ),
    chunk_rows: int = typer.Option(
        250_000, "--chunk-rows", min=1, help="Rows per written chunk (memory, not content)."
    ),
    labels_out: Path | None = typer.Option(
        None, "--labels-out", help="Also write delayed labels (id, entity, target, available at)."
    ),
    label_delay_days: float | None = typer.Option(
        None, "--label-delay-days", min=0, help="Label delay; default per family."
    ),
    labels_only_separate: bool = typer.Option(
        False, "--labels-only-separate", help="Leave the target out of the main file."
    ),
    start: datetime | None = typer.Option(
        None,
        "--start",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        help="First event time, UTC (default 2024-01-01); e.g. a later period for drift tests.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Generate a spec-conformant synthetic data set, streamed chunk by chunk."""
    from riskops.synthetic import generate as run
    from riskops.synthetic import parse_drift_args, resolve_family

    try:
        fam = resolve_family(family)
        knobs = parse_drift_args(drift)
    except ValueError as error:
        fail(str(error), code=2)
    if labels_only_separate and labels_out is None:
        fail("--labels-only-separate needs --labels-out", code=2)
    try:
        report = run(
            fam.name,
            rows,
            seed,
            out,
            drift=knobs,
            chunk_rows=chunk_rows,
            labels_out=labels_out,
            label_delay_days=label_delay_days,
            labels_only_separate=labels_only_separate,
            start=start,
            progress=progress and not json_out,
        )
    except (ValueError, OSError) as error:
        fail(str(error))
    if json_out:
        print_json(report.to_dict())
        return
    drift_text = ", ".join(f"{k}={v:g}" for k, v in report.drift.items()) or "none"
    console.print(
        f"[bold]{report.family}[/]: {report.rows:,} rows in {report.seconds:.2f}s "
        f"({report.rows_per_second:,.0f} rows/s, {report.chunks} chunks), "
        f"peak memory {report.peak_rss_mb:,.0f} MB",
        soft_wrap=True,
    )
    console.print(
        f"positive rate {report.positive_rate:.2%} ({report.positives:,}), drift: {drift_text}",
        soft_wrap=True,
    )
    console.print(f"wrote {report.path} ({report.bytes / 2**20:,.1f} MiB)", soft_wrap=True)
    if report.labels_path:
        console.print(f"labels {report.labels_path}", soft_wrap=True)
