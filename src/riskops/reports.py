"""Human-readable renderings of results (Prefect artifacts, terminal)."""

from __future__ import annotations

from riskops.stages.contract import CheckOutcome


def contract_markdown(outcome: CheckOutcome) -> str:
    """Markdown for the contract-check artifact: verdict, then one table row per violation."""
    verdict = "ACCEPTED" if outcome.accepted else "REJECTED"
    lines = [
        f"# Contract check: {verdict}",
        "",
        f"- model: `{outcome.model}`",
        f"- file: `{outcome.filename}`",
        f"- sha256: `{outcome.sha256}`",
        f"- rows: {outcome.row_count}",
    ]
    if outcome.accepted:
        lines += [
            f"- dataset version: `{outcome.dataset_version_id}`",
            f"- stored at: `{outcome.dataset_uri}`",
        ]
        return "\n".join(lines) + "\n"
    lines += [
        f"- quarantined at: `{outcome.quarantine_uri}`",
        "",
        "| rule | column | rows | what |",
    ]
    lines.append("|---|---|---|---|")
    for reason in outcome.reasons:
        rows = ", ".join(str(r) for r in reason.get("rows", [])[:5])
        message = str(reason["message"]).replace("|", "\\|")
        lines.append(f"| {reason['code']} | {reason.get('column') or ''} | {rows} | {message} |")
    return "\n".join(lines) + "\n"


def training_markdown(result: dict[str, object]) -> str:
    """Markdown for the training artifact: version, holdout metrics, benchmark comparison."""
    metrics = dict(result.get("metrics") or {})  # type: ignore[call-overload]
    bench = dict(result.get("benchmark_metrics") or {})  # type: ignore[call-overload]
    lines = [
        f"# {result.get('model_name')} version {result.get('version')}",
        "",
        f"- run: `{result.get('run_id')}`; train rows {result.get('train_rows')}, "
        f"holdout rows {result.get('holdout_rows')}",
        "",
        "| metric | candidate | benchmark |",
        "|---|---|---|",
    ]
    for name in sorted(k for k in metrics if k.startswith("holdout_")):
        other = bench.get(name)
        shown = f"{other:.4f}" if isinstance(other, float) else ""
        lines.append(f"| {name.removeprefix('holdout_')} | {metrics[name]:.4f} | {shown} |")
    return "\n".join(lines) + "\n"
