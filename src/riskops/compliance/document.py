"""The nine Annex IV sections of the card, as blocks built from the card's facts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from riskops.compliance.blocks import (
    Block,
    bullets,
    h3,
    images,
    kv,
    na,
    notice,
    p,
    section,
    table,
)
from riskops.compliance.facts import NA, fmt, pct
from riskops.compliance.plans import rationale, soundness
from riskops.compliance.regulation import MRM, SR_11_7_MAP
from riskops.specs import ModelSpec

PROVIDER = "To be completed by the provider."
METRIC_ORDER = ("auc", "gini", "ks", "pr_auc", "brier", "log_loss", "positive_rate", "n")


def _general(spec: ModelSpec, d: Mapping[str, Any]) -> list[Block]:
    blocks = [
        kv(
            [
                ("Model", spec.name),
                ("Version", d["version"]),
                ("Family", spec.family),
                ("EU AI Act risk class", spec.risk_class),
                ("Owner", spec.owner),
                ("Intended use", spec.intended_use.strip()),
                ("Target (bad outcome)", f"{spec.target} = {spec.positive_label!r}"),
                ("Numeric features", ", ".join(spec.features.numeric)),
                ("Categorical features", ", ".join(spec.features.categorical)),
                ("Protected attributes (fairness)", ", ".join(spec.protected_attributes)),
                ("Entity column (pseudonymised)", spec.entity_column),
                (f"Model risk materiality ({MRM})", d["materiality"]["name"]),
                ("Spec hash", d["spec_hash"]),
                ("Card generated at", d["generated_at"]),
            ]
        ),
        p(
            "This card is generated from platform records (riskops catalogue, validation, "
            "sign-off and promotion records, MLflow runs); it is not written by hand."
        ),
    ]
    if spec.risk_class == "high":
        blocks.append(
            p(
                "High-risk AI system: technical documentation per Article 11 and Annex IV; "
                "human sign-off by a person other than the trainer and validator is required."
            )
        )
    if d["ai_act"]:
        blocks.append(p(f"EU AI Act: {d['ai_act']}"))
    blocks.append(p(f"Materiality: {d['materiality']['name']}. {d['materiality']['basis']}"))
    return blocks


def _lineage(d: Mapping[str, Any]) -> list[Block]:
    lineage = d["lineage"]
    if not lineage["available"]:
        why = "the version is not in the riskops catalogue, e.g. registered from a notebook"
        return [na("Data lineage", why)]
    rows = [[s["step"], s["id"] or NA, s["detail"] or NA] for s in lineage["chain"]]
    return [p("Landed file → dataset version → feature set → model version → run."),
            table(["step", "id", "detail"], rows)]  # fmt: skip


def _development(spec: ModelSpec, d: Mapping[str, Any]) -> list[Block]:
    t = d["training"]
    blocks: list[Block] = [h3("Data lineage"), *_lineage(d), h3("Training")]
    if not t["available"]:
        blocks.append(na("Training run, parameters and split"))
    else:
        split = t["split"] or {}
        blocks.append(
            kv(
                [
                    ("Algorithm", t["algorithm"]),
                    ("Training run", t["run_id"]),
                    ("Benchmark run", t["benchmark_run_id"] or "none"),
                    ("Split", split.get("method")),
                    ("Training rows", split.get("train_rows")),
                    ("Holdout rows", split.get("holdout_rows")),
                    ("Holdout positive rate", pct(split.get("holdout_positive_rate"))),
                    ("Training period", " to ".join(split.get("train_time_range") or [])),
                    ("Holdout period", " to ".join(split.get("holdout_time_range") or [])),
                ]
            )
        )
        params = sorted((t["params"] or {}).items())
        blocks += [table(["parameter", "value"], params)] if params else [na("Parameters")]
    blocks += [h3("Conceptual soundness", MRM)]
    blocks += [p(text) for text in soundness(spec, t)]
    return blocks + images(d["plots"], 2)


def _control(d: Mapping[str, Any]) -> list[Block]:
    roles = d["roles"]
    blocks: list[Block] = [
        p(
            "Human oversight: a version is scored by validation gates, then waits for a risk "
            "sign-off; only an approved version can become champion, and the previous champion "
            "stays available for rollback. What of this ran for this version is listed, with "
            "its records, under the risk management system (section 5)."
        ),
        kv(
            [
                ("Trained by", roles["trained_by"]),
                ("Validated by", roles["validated_by"]),
                ("Approved by", roles["approved_by"]),
            ]
        ),
        h3("Approvals"),
    ]
    rows = d["approvals"]
    if not rows:
        blocks.append(na("Sign-off", "no submission recorded for this version"))
    else:
        cols = ["when", "who", "decision", "outcome", "justification", "refusal"]
        blocks.append(table(cols, [[r[c] for c in cols] for r in rows]))
        if any(r["demo"] for r in rows):
            blocks.append(notice("DEMO: rows marked DEMO were signed by the demo, not a person."))
    blocks.append(h3("Fairness"))
    if not d["fairness"]:
        blocks.append(p("The spec declares no protected attributes."))
    for f in d["fairness"]:
        if not f["available"]:
            blocks.append(na(f"Fairness by {f['attribute']}", "no fairness gate result"))
            continue
        blocks.append(
            p(
                f"{f['attribute']}: disparate impact {fmt(f['disparate_impact'])} "
                f"(required ≥ {fmt(f['threshold'])}): {f['status']}. {f['message']}"
            )
        )
        cols = ["group", "n", "approval rate", "TPR", "disparate impact", "included"]
        rows_ = [
            [g["group"], g["n"], pct(g["approval_rate"]), pct(g["true_positive_rate"]),
             g["disparate_impact"], g["included"]]
            for g in f["groups"]
        ]  # fmt: skip
        blocks.append(table(cols, rows_))
    blocks += images(d["plots"], 3)
    return [*blocks, h3("Limitations", MRM), bullets(d["limitations"])]


def _performance(spec: ModelSpec, d: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = [p(rationale(spec)), h3("Holdout metrics")]
    metrics = d["training"]["metrics"] or {}
    rows = [
        [name, metrics.get(f"train_{name}"), metrics.get(f"holdout_{name}")]
        for name in METRIC_ORDER
        if f"holdout_{name}" in metrics or f"train_{name}" in metrics
    ]
    blocks.append(table(["metric", "train", "holdout"], rows) if rows else na("Holdout metrics"))
    blocks.append(h3("Validation gates"))
    v = d["validation"]
    if not v["available"]:
        blocks.append(na("Validation", "this version has not been validated"))
    else:
        verdict = "PASSED" if v["passed"] else f"FAILED ({', '.join(v['failed'])})"
        blocks.append(p(f"Validation {verdict}: {len(v['gates'])} gates."))
        gate_table = [
            [g["name"], g["value"], f"{g['comparison']} {fmt(g['threshold'])}".strip(),
             g["status"], g["message"] + (f" (waived: {g['waiver']})" if g["waiver"] else "")]
            for g in v["gates"]
        ]  # fmt: skip
        blocks.append(table(["gate", "value", "threshold", "result", "message"], gate_table))
    blocks.append(h3("Benchmark comparison", MRM))
    b = d["benchmark"]
    if b["rows"]:
        blocks.append(p(b["note"]))
        cols = ["metric", "candidate", "benchmark", "difference", "better"]
        blocks.append(table(cols, [[r[c] for c in cols] for r in b["rows"]]))
    else:
        blocks.append(na("Benchmark comparison", b["note"]) if b["missing"] else p(b["note"]))
    plots = images(d["plots"], 4)
    return [*blocks, h3("Plots"), *(plots or [na("Plots")])]


def _risk(d: Mapping[str, Any]) -> list[Block]:
    limits = sorted(d["thresholds"].items())
    rows = [[c["control"], c["status"], c["evidence"]] for c in d["controls"]]
    return [
        p(
            "Controls, as the platform's records show them for this version (a control that "
            "did not run says so):"
        ),
        table(["control", "for this version", "evidence (records)"], rows),
        h3("Gate thresholds applied"),
        table(["threshold", "value"], limits) if limits else na("Gate thresholds"),
    ]


def _changes(d: Mapping[str, Any]) -> list[Block]:
    rows = d["promotions"]
    blocks: list[Block] = [kv([("This version registered", d["registered_at"])])]
    if not rows:
        return [*blocks, na("Promotions and rollbacks", "none recorded for this model")]
    cols = ["when", "kind", "version", "previous_version", "actor", "reason"]
    body = [[*(r[c] for c in cols), "◀" if r["this_version"] else ""] for r in rows]
    return [*blocks, table([*cols, "this version"], body)]


def _standards(d: Mapping[str, Any]) -> list[Block]:
    ai_act = "EU AI Act (Regulation (EU) 2024/1689), Annex IV: structure of this document."
    if d["ai_act"]:
        ai_act += f" {d['ai_act']}"
    return [
        na("Harmonised standards applied", "none is recorded by the platform"),
        notice(PROVIDER),
        p("Frameworks the generated evidence follows:"),
        bullets(
            [
                ai_act,
                f"{d['model_risk_guidance']}. This model: {d['materiality']['name']}; "
                "sub-sections tagged with it cover development, validation, monitoring and "
                "limitations at that tier.",
            ]
        ),
        h3("Mapping to SR 11-7 (superseded) for readers whose policy still cites it"),
        table(["card sub-section", "SR 11-7 element"], SR_11_7_MAP),
    ]


def _post_market(d: Mapping[str, Any]) -> list[Block]:
    m, o, results = d["monitoring_plan"], d["outcomes_plan"], d["monitoring_results"]
    drift = results["drift"]
    blocks: list[Block] = [
        h3("Ongoing monitoring", MRM),
        table(["monitor", "runs", "what it compares", "thresholds"], m["monitors"]),
        kv(
            [
                ("PSI watch band from", m["psi_warn"]),
                ("PSI alert band from", m["psi_alert"]),
                ("Minimum rows per comparison", m["min_rows"]),
                ("Confidence of the critical values", m["confidence"]),
                ("Null-rate change (share of rows)", m["null_rate_bands"]),
                ("Rows in new categories (share)", m["new_category_bands"]),
                ("Retraining cooldown (hours)", m["retrain_cooldown_hours"]),
            ]
        ),
        table(["PSI", "band", "action"], m["bands"]),
    ]
    if m["feature_overrides"]:
        blocks.append(
            table(["feature (spec override)", "PSI", "null-rate change", "new categories"],
                  m["feature_overrides"])
        )  # fmt: skip
    blocks += [
        table(["drift kind", "what is compared", "event resource"], m["kinds"]),
        h3("Latest monitoring results for this version", MRM),
    ]
    if drift:
        rows = [
            [r["kind"], f"{r['window_start'][:16]} to {r['window_end'][:16]}", r["rows"],
             r["worst_band"] or "not judged", ", ".join(r["drifted"][:6]) or "none"]
            for r in drift
        ]  # fmt: skip
        blocks.append(table(["kind", "window (UTC)", "decisions", "worst band", "drifted"], rows))
    else:
        blocks.append(notice("No window of this version's decisions has been judged yet."))
    blocks.append(h3("Outcomes analysis", MRM))
    blocks.append(
        p(
            f"Labels arrive late: expected delay {o['label_delay']} ({o['label_delay_source']}). "
            f"Each landing ({o['event']}) measures this version's decisions per vintage and band "
            "against the holdout results of this card."
        )
    )
    performance = results["performance"]
    if performance and performance[0]["labelled_rows"]:
        r = performance[0]
        blocks.append(
            kv(
                [
                    ("Labelled decisions", r["labelled_rows"]),
                    ("Realised AUC", r["overall_auc"]),
                    ("Development AUC", r["benchmark_auc"]),
                    ("Degraded vintages", ", ".join(r["breaching_vintages"]) or "none"),
                    (f"CBPE estimate ({r['estimated_vintage']})", r["estimated_auc"]),
                    ("Measured at", r["at"][:16]),
                ]
            )
        )
    else:
        blocks.append(notice("No outcome of this version's decisions has been landed yet."))
    blocks.append(
        table(["threshold", "value"], o["thresholds"]) if o["thresholds"] else na("Thresholds")
    )
    return blocks


def sections(spec: ModelSpec, d: Mapping[str, Any]) -> list[dict[str, Any]]:
    """All nine sections, numbered 1 to 9."""
    return [
        section(1, _general(spec, d)),
        section(2, _development(spec, d)),
        section(3, _control(d)),
        section(4, _performance(spec, d)),
        section(5, _risk(d)),
        section(6, _changes(d)),
        section(7, _standards(d)),
        section(8, [notice(PROVIDER), p("The declaration (Annex V) is signed by the provider.")]),
        section(9, _post_market(d)),
    ]
