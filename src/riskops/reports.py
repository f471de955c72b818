"""Human-readable renderings of results (Prefect artifacts, terminal)."""

from __future__ import annotations

from riskops.datasets import CheckOutcome


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
