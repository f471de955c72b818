"""Facts for the model card, pulled out of records: gates, fairness, lineage, approvals, changes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

NA = "not available yet"
MARGIN = 0.05  # a passed gate within 5% of its threshold is reported as marginal
COMPARED_METRICS = ("auc", "gini", "ks", "pr_auc", "brier", "log_loss")
LOWER_IS_BETTER = frozenset({"brier", "log_loss"})


def fmt(value: Any) -> str:
    """A value as card text: 4 significant digits, thousands separators, ``—`` for nothing."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def pct(value: Any) -> str:
    """A rate in [0, 1] as a percentage with one decimal ("" when there is none)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return ""
    return f"{100 * value:.1f}%"


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def gate_items(report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The gate results of a report (``results`` from GateReport.to_dict, or ``gates``)."""
    if not report:
        return []
    items = report.get("results", report.get("gates")) or []
    return [dict(item) for item in items if isinstance(item, Mapping)]


def gate_status(gate: Mapping[str, Any]) -> str:
    """``pass``, ``FAIL``, ``skipped`` or ``waived`` (unmet or unmeasured, accepted in writing)."""
    if gate.get("status") == "waived" or gate.get("waived"):
        return "waived"
    if gate.get("skipped"):
        return "skipped"
    return "pass" if gate.get("passed") else "FAIL"


def waiver_reason(gate: Mapping[str, Any], waivers: Mapping[str, str] | None = None) -> str:
    """The written reason of a waived gate: from the gate result, else from the spec's waivers."""
    for key in ("waiver_reason", "waiver", "reason"):
        if isinstance(gate.get(key), str) and gate[key].strip():
            return gate[key].strip()
    return (waivers or {}).get(str(gate.get("name")), "no reason recorded")


def marginal(gate: Mapping[str, Any]) -> bool:
    """True for a passed, measured gate whose value is within MARGIN of its threshold."""
    value, threshold = _number(gate.get("value")), _number(gate.get("threshold"))
    if gate_status(gate) != "pass" or value is None or threshold is None:
        return False
    room = value - threshold if gate.get("comparison", ">=") == ">=" else threshold - value
    return room <= MARGIN * (abs(threshold) or 1.0)


def gate_rows(
    report: Mapping[str, Any] | None, waivers: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One JSON-ready row per gate: name, status, value, comparison, threshold, message, waiver."""
    rows = []
    for gate in gate_items(report):
        status = gate_status(gate)
        rows.append(
            {
                "name": str(gate.get("name", "?")),
                "status": status,
                "marginal": marginal(gate),
                "value": _number(gate.get("value")),
                "comparison": gate.get("comparison") if gate.get("threshold") is not None else "",
                "threshold": _number(gate.get("threshold")),
                "message": str(gate.get("message", "")),
                "waiver": waiver_reason(gate, waivers) if status == "waived" else None,
            }
        )
    return rows


def gates_markdown(report: Mapping[str, Any] | None) -> str:
    """A gate report as a Markdown table (or the 'not available yet' sentence)."""
    rows = gate_rows(report)
    if report is None:
        return f"Gate report: {NA} (this version has not been validated).\n"
    verdict = (
        "PASSED" if report.get("passed") else f"FAILED ({', '.join(report.get('failed', []))})"
    )
    lines = [f"**Validation {verdict}**: {len(rows)} gates.", ""]
    lines += ["| gate | value | threshold | result | message |", "|---|---:|---:|---|---|"]
    for row in rows:
        threshold = f"{row['comparison']} {fmt(row['threshold'])}".strip()
        text = row["message"] + (f" (waived: {row['waiver']})" if row["waiver"] else "")
        message = text.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {row['name']} | {fmt(row['value'])} | {threshold} | {row['status']} | {message} |"
        )
    return "\n".join(lines) + "\n"


def fairness_tables(
    report: Mapping[str, Any] | None, attributes: Sequence[str]
) -> list[dict[str, Any]]:
    """Per protected attribute: verdict, disparate impact and one row per group."""
    gates = {g.get("name"): g for g in gate_items(report)}
    tables = []
    for attribute in attributes:
        gate = gates.get(f"fairness.{attribute}")
        if gate is None:
            tables.append({"attribute": attribute, "available": False, "groups": []})
            continue
        evidence = gate.get("evidence") or {}
        groups = [g for g in evidence.get("groups") or [] if isinstance(g, Mapping)]
        rates = [
            g["approval_rate"]
            for g in groups
            if g.get("included", True) and _number(g.get("approval_rate")) is not None
        ]
        top = max(rates, default=None)
        rows = []
        for g in groups:
            rate, included = _number(g.get("approval_rate")), bool(g.get("included", True))
            ratio = rate / top if included and rate is not None and top else None
            rows.append(
                {
                    "group": str(g.get("group")),
                    "n": g.get("n"),
                    "approval_rate": rate,
                    "true_positive_rate": _number(g.get("true_positive_rate")),
                    "disparate_impact": ratio,
                    "included": included,
                }
            )
        tables.append(
            {
                "attribute": attribute,
                "available": True,
                "status": gate_status(gate),
                "message": str(gate.get("message", "")),
                "disparate_impact": _number(evidence.get("disparate_impact", gate.get("value"))),
                "threshold": _number(gate.get("threshold")),
                "decision_threshold": _number(evidence.get("decision_threshold")),
                "min_group_size": evidence.get("min_group_size"),
                "excluded_groups": [str(g) for g in evidence.get("excluded_groups") or []],
                "groups": rows,
            }
        )
    return tables


def lineage_chain(lineage: Mapping[str, Any] | None, run_id: str | None) -> list[dict[str, Any]]:
    """The chain landed file → dataset version → feature set → model version → run."""
    lineage = lineage or {}
    landed = lineage.get("landed") or {}
    ds = lineage.get("dataset_version") or {}
    fs = lineage.get("feature_set") or {}
    mv = lineage.get("model_version") or {}
    run = run_id or mv.get("run_id")
    sha = landed.get("sha256") or ds.get("sha256")
    landed_detail = f"sha256 {sha}" if sha else ""
    if landed.get("size_bytes") is not None:
        landed_detail += f", {fmt(landed['size_bytes'])} bytes"
    return [
        {"step": "landed file", "id": landed.get("filename"), "detail": landed_detail or None},
        {
            "step": "dataset version",
            "id": ds.get("id"),
            "detail": f"{fmt(ds['row_count'])} rows" if ds.get("row_count") is not None else None,
        },
        {
            "step": "feature set",
            "id": fs.get("version") or fs.get("id"),
            "detail": (
                f"{fmt(fs.get('row_count'))} rows, definitions {str(fs['definitions_hash'])[:12]}, "
                f"code {fs.get('code_version')}"
                if fs.get("definitions_hash")
                else None
            ),
        },
        {
            "step": "model version",
            "id": mv.get("version"),
            "detail": (
                f"registered {mv.get('registered_at')} by {mv.get('trainer') or 'unknown'} "
                f"({mv.get('source')})"
                if mv
                else None
            ),
        },
        {"step": "training run", "id": run, "detail": "MLflow run" if run else None},
    ]


def approval_rows(sign_offs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every sign-off submission in order, refused ones included, demo ones labelled DEMO."""
    rows = []
    for item in sign_offs:
        demo = bool(item.get("demo"))
        rows.append(
            {
                "when": str(item.get("decided_at") or "—"),
                "who": f"DEMO {item.get('approver')}" if demo else str(item.get("approver")),
                "decision": str(item.get("decision")),
                "outcome": "accepted" if item.get("accepted") else "REFUSED",
                "justification": str(item.get("justification") or ""),
                "refusal": str(item.get("refusal") or ""),
                "demo": demo,
            }
        )
    return rows


def promotion_rows(promotions: Sequence[Mapping[str, Any]], version: str) -> list[dict[str, Any]]:
    """Every move of the champion alias in order; ``this_version`` marks moves touching it."""
    return [
        {
            "when": str(item.get("moved_at") or "—"),
            "kind": str(item.get("kind")),
            "version": str(item.get("version")),
            "previous_version": item.get("previous_version"),
            "actor": str(item.get("actor")),
            "reason": str(item.get("reason") or ""),
            "this_version": version in (str(item.get("version")), item.get("previous_version")),
        }
        for item in promotions
    ]


def benchmark_rows(
    metrics: Mapping[str, Any], benchmark: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Candidate vs benchmark on the holdout metrics both runs logged."""
    if not benchmark:
        return []
    rows = []
    for name in COMPARED_METRICS:
        ours, theirs = (
            _number(metrics.get(f"holdout_{name}")),
            _number(benchmark.get(f"holdout_{name}")),
        )
        if ours is None or theirs is None:
            continue
        better = ours < theirs if name in LOWER_IS_BETTER else ours > theirs
        rows.append(
            {
                "metric": name,
                "candidate": ours,
                "benchmark": theirs,
                "difference": ours - theirs,
                "better": "candidate" if better else ("tie" if ours == theirs else "benchmark"),
            }
        )
    return rows


def label_delay(target: str, family: str) -> tuple[str, bool]:
    """How long outcomes take to arrive: from the target's name (``default_12m``) or the family."""
    match = re.search(r"(\d+)\s*(m|mo|months?|d|days?|w|weeks?)\b", target.replace("_", " "))
    if match:
        unit = {"m": "months", "d": "days", "w": "weeks"}[match.group(2)[0]]
        return f"{match.group(1)} {unit}", True
    defaults = {
        "credit_scoring": "12 months",
        "fraud_detection": "90 days (chargeback window)",
        "transaction_risk": "30 days",
    }
    return defaults.get(family, "unknown"), False
