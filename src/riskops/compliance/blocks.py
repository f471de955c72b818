"""The card's neutral document model: typed blocks that both templates (Markdown, HTML) render."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from riskops.compliance.facts import NA, fmt

Block = dict[str, Any]

ANNEX_IV_SECTIONS = (
    "General description of the AI system",
    "Detailed description of the elements of the AI system and of the process for its development",
    "Information about the monitoring, functioning and control of the AI system",
    "Description of the appropriateness of the performance metrics",
    "Description of the risk management system",
    "Description of relevant changes made by the provider to the system through its lifecycle",
    "List of the harmonised standards applied",
    "Copy of the EU declaration of conformity",
    "Description of the system in place to evaluate the AI system performance in the "
    "post-market phase (post-market monitoring plan)",
)
PLOT_TITLES = {
    "roc": "ROC curve (holdout)",
    "pr": "Precision-recall curve (holdout)",
    "precision_recall": "Precision-recall curve (holdout)",
    "calibration": "Calibration curve (holdout)",
    "score_distribution": "Score distribution by outcome (holdout)",
    "feature_importance": "Feature importance (training)",
    "reliability": "Reliability diagram",
    "calibration_reliability": "Reliability diagram (validation, equal-count bins)",
    "explain_importance": "Mean absolute contribution per feature (validation)",
}


def h3(text: str, tag: str | None = None) -> Block:
    """A sub-heading, optionally tagged (e.g. SR 26-2 / OCC 2026-13)."""
    return {"kind": "h3", "text": text, "tag": tag}


def p(text: str) -> Block:
    """A paragraph."""
    return {"kind": "p", "text": text}


def na(what: str, why: str = "") -> Block:
    """An explicit 'not available yet' statement for a missing input."""
    return {"kind": "na", "text": f"{what}: {NA}" + (f" ({why})." if why else ".")}


def notice(text: str) -> Block:
    """A highlighted statement (DEMO approvals, provider to complete)."""
    return {"kind": "notice", "text": text}


def kv(rows: Sequence[tuple[str, Any]]) -> Block:
    """A two-column fact list; empty values read 'not available yet'."""
    return {
        "kind": "kv",
        "rows": [[key, NA if value in (None, "", []) else fmt(value)] for key, value in rows],
    }


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Block:
    """A table of pre-formatted cells."""
    return {"kind": "table", "columns": list(columns), "rows": [[fmt(c) for c in r] for r in rows]}


def bullets(items: Sequence[str]) -> Block:
    """A bulleted list."""
    return {"kind": "list", "items": list(items)}


def plot_title(name: str) -> str:
    """A human title for a plot name."""
    if name in PLOT_TITLES:
        return PLOT_TITLES[name]
    if name.startswith("fairness_"):
        return f"Approval rate by {name.removeprefix('fairness_')} (validation)"
    return name.replace("_", " ").capitalize()


def plot_section(name: str) -> int:
    """Which Annex IV section shows a plot: fairness 3, importance 2, the rest 4."""
    if "fairness" in name:
        return 3
    if "importance" in name or "explain" in name:
        return 2
    return 4


def images(plots: Sequence[Mapping[str, Any]], section: int) -> list[Block]:
    """Image blocks of the plots that belong to ``section``."""
    return [
        {"kind": "img", "name": plot["name"], "title": plot["title"], "file": plot["file"]}
        for plot in plots
        if plot["section"] == section
    ]


def section(number: int, blocks: Sequence[Block]) -> dict[str, Any]:
    """One numbered Annex IV section."""
    return {"number": number, "title": ANNEX_IV_SECTIONS[number - 1], "blocks": list(blocks)}
