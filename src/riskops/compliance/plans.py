"""Generated prose of the card: soundness, metric rationale, limitations, monitoring, outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from riskops.compliance.facts import NA, fmt, label_delay, pct
from riskops.specs import ModelSpec

SMALL_TRAIN_ROWS = 10_000
FEW_POSITIVES = 100
DRIFT_KINDS = (
    ("data", "PSI of each input feature, serving window vs the training profile"),
    ("prediction", "PSI of the score distribution, serving window vs the holdout scores"),
    ("skew", "features computed at serving vs the offline feature build for the same rows"),
    ("quality", "null rates, out-of-range values and unknown categories vs the data contract"),
)
ALGORITHMS = {
    "lightgbm": (
        "Gradient-boosted decision trees (LightGBM): captures non-linear effects and "
        "interactions; the number of trees is chosen by early stopping on a validation slice "
        "held out from training, and the monotonic directions of the spec are enforced as "
        "monotone constraints, so the score moves in the direction domain experts expect."
    ),
    "binned_logistic": (
        "Binned logistic regression (scorecard): each numeric feature is cut into quantile "
        "bins and each category gets its own weight; the additive form is directly readable "
        "as points per attribute, the industry-standard credit-scoring benchmark."
    ),
}
RATIONALE = {
    "credit_scoring": (
        "The score ranks applicants by probability of default, so discrimination is measured "
        "by AUC, Gini and KS (standard in credit risk), and because the probability itself "
        "feeds decisions, calibration is measured by the Brier score and the expected "
        "calibration error. Stability (PSI) guards against a shifted population, and the "
        "disparate impact of approve/decline decisions across protected groups implements the "
        "four-fifths rule of fair lending."
    ),
    "fraud_detection": (
        "Fraud is rare, so besides AUC the precision-recall AUC is reported: it reflects the "
        "share of alerts that are real fraud. Calibration (Brier, ECE) matters because alert "
        "thresholds are set on the probability; PSI guards against shifts in the traffic."
    ),
    "transaction_risk": (
        "Transactions are ranked by risk (AUC, KS); the probability drives review queues, so "
        "calibration (Brier, ECE) is checked; PSI guards against shifts in the traffic."
    ),
}


def thresholds(spec: ModelSpec, report: Mapping[str, Any] | None) -> dict[str, float]:
    """Thresholds actually applied (report context), else the spec's gates."""
    applied = ((report or {}).get("context") or {}).get("thresholds") or {}
    # Numbers only: gates also hold waivers (gate name → reason), which are not thresholds.
    given = {
        k: v
        for k, v in spec.gates.model_dump().items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return {**{k: float(v) for k, v in given.items()}, **applied}


def soundness(spec: ModelSpec, training: Mapping[str, Any]) -> list[str]:
    """Why the model design fits its purpose, from spec and training facts."""
    algorithm = training.get("algorithm")
    text = [
        ALGORITHMS.get(
            str(algorithm),
            f"Algorithm: {algorithm or NA}; riskops holds no description of this algorithm.",
        ),
        f"Target: {spec.target} (positive label {spec.positive_label!r} = the bad outcome). "
        f"Inputs: {len(spec.features.numeric)} numeric and {len(spec.features.categorical)} "
        "categorical features declared in the spec.",
    ]
    if spec.monotonic:
        rules = ", ".join(f"{m.feature} {m.direction}" for m in spec.monotonic)
        text.append(f"Monotonic constraints (risk must move this way): {rules}.")
    used = sorted(set(spec.protected_attributes) & set(spec.feature_columns))
    if spec.protected_attributes and not used:
        text.append(
            f"Protected attributes ({', '.join(spec.protected_attributes)}) are not model "
            "inputs; they are used only to evaluate fairness."
        )
    elif used:
        text.append(f"Protected attributes used as model inputs: {', '.join(used)}.")
    split = training.get("split") or {}
    if split.get("method") == "time":
        text.append(
            f"Holdout: the latest {pct(split.get('test_share'))} of rows by "
            f"{split.get('time_column')} (out-of-time), so evaluation mimics future use."
        )
    elif split.get("method"):
        text.append(
            f"Holdout: a {split['method']} random split of {pct(split.get('test_share'))}; "
            "it does not test performance over time."
        )
    return text


def rationale(spec: ModelSpec) -> str:
    """Why the performance metrics suit this model family."""
    return RATIONALE.get(
        spec.family,
        "Discrimination (AUC, KS), calibration (Brier, ECE) and stability (PSI) are measured "
        "on the holdout; their suitability for this use must be confirmed by the provider.",
    )


def limitations(
    *,
    spec: ModelSpec,
    training: Mapping[str, Any],
    gates: Sequence[Mapping[str, Any]],
    fairness: Sequence[Mapping[str, Any]],
    has_lineage: bool,
    validated: bool,
    approvals: Sequence[Mapping[str, Any]],
    synthetic: bool | None,
) -> list[str]:
    """Limitations stated from recorded facts only."""
    out = []
    if synthetic:
        out.append(
            "Trained and validated on synthetic data: performance says nothing about real "
            "applicants until the model is retrained and validated on real data."
        )
    split = training.get("split") or {}
    train_rows, positives = split.get("train_rows"), split.get("holdout_positives")
    if isinstance(train_rows, int) and train_rows < SMALL_TRAIN_ROWS:
        out.append(f"Limited data: only {fmt(train_rows)} training rows.")
    if isinstance(positives, int) and positives < FEW_POSITIVES:
        out.append(
            f"Only {fmt(positives)} positive outcomes in the holdout: metric estimates have "
            "wide confidence intervals."
        )
    holdout_rows = split.get("holdout_rows")
    if isinstance(holdout_rows, int) and holdout_rows < spec.monitoring.min_rows:
        out.append(
            f"The holdout ({fmt(holdout_rows)} rows) is smaller than the monitoring minimum "
            f"({fmt(spec.monitoring.min_rows)} rows)."
        )
    if not (training.get("run_id") or training.get("metrics")):
        out.append(f"Training facts (metrics, parameters, split): {NA}.")
    if not has_lineage:
        out.append(
            "No data lineage: the version is not in the riskops catalogue (for example it was "
            "registered from a notebook), so its training data cannot be traced."
        )
    for item in training.get("skipped_features") or []:
        missing = ", ".join(item.get("missing") or [])
        out.append(f"Feature {item.get('name')} was skipped at build (missing: {missing}).")
    if not validated:
        out.append(f"Validation: {NA}; no gate has been measured for this version.")
    for gate in gates:
        if gate["status"] == "FAIL":
            out.append(f"Gate {gate['name']} failed: {gate['message']}")
        elif gate["status"] == "waived":
            out.append(f"Gate {gate['name']} was waived ({gate['waiver']}): {gate['message']}")
        elif gate["marginal"]:
            out.append(f"Gate {gate['name']} passed only marginally: {gate['message']}")
        elif gate["status"] == "skipped":
            out.append(f"Gate {gate['name']} was not measured: {gate['message']}")
    for table in fairness:
        if table.get("excluded_groups"):
            out.append(
                f"Fairness by {table['attribute']}: groups {', '.join(table['excluded_groups'])} "
                f"have fewer than {table.get('min_group_size')} rows and are left out of the "
                "disparate-impact ratio."
            )
    accepted = [a for a in approvals if a["outcome"] == "accepted" and a["decision"] == "approve"]
    if accepted and all(a["demo"] for a in accepted):
        out.append("The only approvals are DEMO approvals, not decisions of a risk officer.")
    out.append(f"Intended use only: {spec.intended_use.strip()}")
    return out


KINDS = ("psi", "null_rate", "new_category")


def _override(warn: float | None, alert: float | None) -> str:
    parts = [f"watch from {fmt(warn)}" if warn is not None else "",
             f"alert from {fmt(alert)}" if alert is not None else ""]  # fmt: skip
    return ", ".join(p for p in parts if p) or "model value"


def monitoring_plan(spec: ModelSpec) -> dict[str, Any]:
    """The monitors that run for the champion, from ``spec.monitoring`` (what riskops runs)."""
    m = spec.monitoring
    cooldown = fmt(m.retrain_cooldown_hours)
    return {
        "psi_warn": m.psi_warn,
        "psi_alert": m.psi_alert,
        "min_rows": m.min_rows,
        "confidence": m.confidence,
        "null_rate_bands": (
            f"watch from {fmt(m.null_rate_warn)}, alert from {fmt(m.null_rate_alert)}"
        ),
        "new_category_bands": (
            f"watch from {fmt(m.new_category_warn)}, alert from {fmt(m.new_category_alert)}"
        ),
        "feature_overrides": [
            [name, *(_override(getattr(o, f"{k}_warn"), getattr(o, f"{k}_alert")) for k in KINDS)]
            for name, o in sorted(m.features.items())
        ],
        "retrain_cooldown_hours": m.retrain_cooldown_hours,
        "bands": [
            [f"PSI < {fmt(m.psi_warn)}", "stable", "recorded (riskops drift show)"],
            [
                f"{fmt(m.psi_warn)} ≤ PSI < {fmt(m.psi_alert)}",
                "watch",
                "riskops.drift.detected, severity warn",
            ],
            [
                f"PSI ≥ {fmt(m.psi_alert)}",
                "alert",
                f"riskops.drift.detected, severity alert; retraining at most once per {cooldown} h",
            ],
        ],
        "monitors": [
            [
                "monitor",
                "hourly and on each scored batch (riskops.decisions.logged)",
                "the champion's newest window of decisions: skew, prediction, data, quality",
                f"PSI bands above, only beyond the sample-size critical value; at least "
                f"{fmt(m.min_rows)} decisions per window",
            ],
            [
                "performance",
                "on each riskops.labels.landed",
                "realised AUC per vintage and band against validation; CBPE on the newest vintage",
                "AUC drop beyond the spec's tolerance and beyond sampling noise",
            ],
        ],
        "kinds": [
            [kind, what, f"riskops.monitor.{spec.name}.{kind}"] for kind, what in DRIFT_KINDS
        ],
    }


def outcomes_plan(spec: ModelSpec, limits: Mapping[str, float]) -> dict[str, Any]:
    """How realised performance is measured once the late labels arrive."""
    delay, from_target = label_delay(spec.target, spec.family)
    source = f"from the target name {spec.target}" if from_target else "platform assumption"
    return {
        "label_delay": delay,
        "label_delay_source": source,
        "event": "riskops.labels.landed",
        "min_rows": spec.monitoring.min_rows,
        "metrics": ["auc", "ks", "brier", "expected calibration error", "disparate impact"],
        "thresholds": [
            [name, fmt(limits[name])]
            for name in ("min_auc", "min_ks", "max_auc_drop_vs_champion", "min_disparate_impact")
            if name in limits
        ],
    }
