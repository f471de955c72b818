"""Model cards generated from records (EU AI Act Annex IV + SR 26-2), never written by hand."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskops.compliance.blocks import ANNEX_IV_SECTIONS, plot_section, plot_title
from riskops.compliance.controls import controls
from riskops.compliance.document import PROVIDER, sections
from riskops.compliance.facts import (
    NA,
    approval_rows,
    benchmark_rows,
    fairness_tables,
    gate_rows,
    lineage_chain,
    promotion_rows,
)
from riskops.compliance.plans import limitations, monitoring_plan, outcomes_plan, thresholds
from riskops.compliance.regulation import MRM_GUIDANCE, ai_act_dates, materiality
from riskops.compliance.templating import render
from riskops.specs import ModelSpec

CARD_FORMAT = "riskops-model-card/1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class CardInputs:
    """Everything a card is generated from (all gathered from records; see ``gather``)."""

    spec: ModelSpec
    version: str
    lineage: dict[str, Any] | None  # catalog.lineage_of_version; None/{} when not catalogued
    training: dict[str, Any]  # metrics, benchmark_metrics, run_id, benchmark_run_id, split, ...
    validation: dict[str, Any] | None  # GateReport.to_dict(); None when not validated
    sign_offs: list[dict[str, Any]] = field(default_factory=list)
    promotions: list[dict[str, Any]] = field(default_factory=list)
    plots: dict[str, Path] = field(default_factory=dict)  # name → PNG file
    audit_rows: list[dict[str, Any]] = field(default_factory=list)  # rows about this version
    anchor: dict[str, Any] | None = None  # chain head anchored on this version ({seq, ...})
    generated_at: dt.datetime | str | None = None
    synthetic_data: bool | None = None  # True when the training data is known to be synthetic
    drift_results: list[dict[str, Any]] = field(default_factory=list)  # latest per kind
    performance_results: list[dict[str, Any]] = field(default_factory=list)  # newest first


def _timestamp(value: dt.datetime | str | None) -> str:
    if value is None:
        value = dt.datetime.now(dt.UTC)
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "plot"


def _read_plots(plots: Mapping[str, Path]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """Plot descriptions and bytes (archive name → PNG); unreadable files are listed as missing."""
    described, payloads = [], {}
    for name in sorted(plots):
        path = Path(plots[name])
        data = path.read_bytes() if path.is_file() else b""
        ok = data.startswith(PNG_MAGIC)
        file = f"plots/{_slug(name)}.png"
        described.append(
            {
                "name": name,
                "title": plot_title(name),
                "file": file if ok else None,
                "sha256": hashlib.sha256(data).hexdigest() if ok else None,
                "size": len(data) if ok else None,
                "section": plot_section(name) if ok else None,
                "available": ok,
            }
        )
        if ok:
            payloads[file] = data
    return described, payloads


def _training(training: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "available": bool(training.get("run_id") or training.get("metrics")),
        "run_id": training.get("run_id"),
        "benchmark_run_id": training.get("benchmark_run_id"),
        "algorithm": training.get("algorithm"),
        "metrics": dict(training.get("metrics") or {}),
        "benchmark_metrics": training.get("benchmark_metrics"),
        "params": dict(training.get("params") or {}),
        "split": training.get("split"),
        "skipped_features": list(training.get("skipped_features") or []),
    }


def _benchmark(spec: ModelSpec, training: Mapping[str, Any]) -> dict[str, Any]:
    rows = benchmark_rows(training.get("metrics") or {}, training.get("benchmark_metrics"))
    if rows:
        note = "Candidate against the logistic-regression benchmark on the same holdout rows."
    elif spec.family == "credit_scoring":
        note = "no benchmark run was found for this version"
    else:
        note = (
            f"No benchmark was trained for this family ({spec.family}): riskops trains the "
            "logistic-regression scorecard benchmark for credit_scoring models only."
        )
    missing = not rows and spec.family == "credit_scoring"
    return {"available": bool(rows), "missing": missing, "rows": rows, "note": note}


def _roles(inputs: CardInputs, approvals: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    mv = (inputs.lineage or {}).get("model_version") or {}
    report = inputs.validation or {}
    approved = [
        a["who"] for a in approvals if a["outcome"] == "accepted" and a["decision"] == "approve"
    ]
    return {
        "trained_by": mv.get("trainer") or (inputs.training or {}).get("trainer"),
        "validated_by": report.get("validator"),
        "approved_by": ", ".join(approved) or None,
    }


@dataclass(frozen=True)
class Card:
    """A generated model card: JSON-ready facts and sections, plus the plot PNGs it embeds."""

    data: dict[str, Any]
    plot_files: dict[str, bytes]  # archive name (plots/<name>.png) → PNG bytes

    @property
    def model(self) -> str:
        """The model name."""
        return str(self.data["model"])

    @property
    def version(self) -> str:
        """The model version."""
        return str(self.data["version"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy of everything the card states."""
        return copy.deepcopy(self.data)

    def to_markdown(self) -> str:
        """Markdown; plots are linked as ``plots/<name>.png`` (the export ships them)."""
        return render("card.md.j2", card=self.data)

    def to_html(self) -> str:
        """One self-contained HTML file: inline CSS, plots embedded as base64 PNG data URIs."""
        embedded = {
            file: "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            for file, data in self.plot_files.items()
        }
        return render("card.html.j2", card=self.data, images=embedded)


def build_card(inputs: CardInputs) -> Card:
    """Generate the card of ``inputs.version`` from its records."""
    spec = inputs.spec
    training = dict(inputs.training or {})
    report = inputs.validation
    plots, payloads = _read_plots(inputs.plots)
    gates = gate_rows(report, spec.gates.waivers)
    fairness = fairness_tables(report, spec.protected_attributes)
    approvals = approval_rows(inputs.sign_offs)
    lineage = inputs.lineage or {}
    mv = lineage.get("model_version") or {}
    has_lineage = bool(mv)
    data: dict[str, Any] = {
        "format": CARD_FORMAT,
        "model": spec.name,
        "version": str(inputs.version),
        "generated_at": _timestamp(inputs.generated_at),
        "family": spec.family,
        "risk_class": spec.risk_class,
        "owner": spec.owner,
        "intended_use": spec.intended_use.strip(),
        "spec_hash": spec.spec_hash(),
        "section_titles": list(ANNEX_IV_SECTIONS),
        "lineage": {
            "available": has_lineage,
            "chain": lineage_chain(lineage, training.get("run_id")),
        },
        "registered_at": mv.get("registered_at"),
        "training": _training(training),
        "benchmark": _benchmark(spec, training),
        "validation": {
            "available": report is not None,
            "passed": None if report is None else bool(report.get("passed")),
            "failed": [] if report is None else list(report.get("failed") or []),
            "gates": gates,
        },
        "thresholds": thresholds(spec, report),
        "fairness": fairness,
        "approvals": approvals,
        "roles": _roles(inputs, approvals),
        "promotions": promotion_rows(inputs.promotions, str(inputs.version)),
        "monitoring_plan": monitoring_plan(spec),
        "monitoring_results": {
            "drift": list(inputs.drift_results),
            "performance": list(inputs.performance_results[:1]),
        },
        "materiality": materiality(spec),
        "model_risk_guidance": MRM_GUIDANCE,
        "ai_act": ai_act_dates(spec),
        "declaration_of_conformity": PROVIDER,
        "plots": plots,
        "missing_plots": [p["name"] for p in plots if not p["available"]],
    }
    data["outcomes_plan"] = outcomes_plan(spec, data["thresholds"])
    data["controls"] = controls(
        data, lineage=lineage, audit_rows=inputs.audit_rows, anchor=inputs.anchor
    )
    data["limitations"] = limitations(
        spec=spec,
        training=training,
        gates=gates,
        fairness=fairness,
        has_lineage=has_lineage,
        validated=report is not None,
        approvals=approvals,
        synthetic=inputs.synthetic_data,
    )
    for name in data["missing_plots"]:
        data["limitations"].append(f"Plot {name}: {NA} (file missing or not a PNG).")
    data["sections"] = sections(spec, data)
    return Card(data=data, plot_files=payloads)
