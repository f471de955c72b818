"""Governance settings a model owner cannot lower: risk-class floors and threshold floors.

A spec is written by the model's owner; the controls that protect customers are not theirs to
switch off. Credit scoring of natural persons is high risk under the EU AI Act (Annex III 5(b)),
so a credit spec saying ``risk_class: limited`` is refused, and a gate threshold that would
let anything pass (``min_auc: 0``) is refused too.
"""

from __future__ import annotations

from riskops.specs import ModelSpec

RISK_ORDER = ("minimal", "limited", "high")
FAMILY_FLOOR: dict[str, str] = {
    "credit_scoring": "high",  # EU AI Act Annex III 5(b): creditworthiness of natural persons
    "fraud_detection": "limited",
    "transaction_risk": "limited",
    "other": "minimal",
}
# gate -> (bound, "min" keeps thresholds at or above it | "max" keeps them at or below it)
THRESHOLD_FLOORS: dict[str, tuple[float, str]] = {
    "min_auc": (0.60, "min"),
    "min_ks": (0.10, "min"),
    "min_disparate_impact": (0.80, "min"),
    "max_auc_drop_vs_champion": (0.05, "max"),
    "max_score_psi_vs_champion": (0.50, "max"),
    "max_equal_opportunity_difference": (0.20, "max"),
    "max_p99_latency_ms": (1000.0, "max"),
}


def risk_floor(family: str) -> str:
    return FAMILY_FLOOR.get(family, "minimal")


def effective_risk_class(spec: ModelSpec) -> str:
    """The stricter of the spec's risk class and its family's floor."""
    floor = risk_floor(spec.family)
    return max(spec.risk_class, floor, key=RISK_ORDER.index)


def policy_problems(spec: ModelSpec) -> list[tuple[str, str]]:
    """(field, what is wrong) for every governance setting below the platform's floor."""
    problems: list[tuple[str, str]] = []
    floor = risk_floor(spec.family)
    if RISK_ORDER.index(spec.risk_class) < RISK_ORDER.index(floor):
        problems.append(
            (
                "risk_class",
                f"{spec.risk_class!r} is below the floor {floor!r} for family {spec.family} "
                "(set by the platform, not the model owner; credit scoring of persons is high "
                "risk under EU AI Act Annex III 5(b))",
            )
        )
    for gate, (bound, kind) in THRESHOLD_FLOORS.items():
        value = getattr(spec.gates, gate)
        if value is None:
            continue
        if kind == "min" and value < bound:
            problems.append((f"gates.{gate}", f"{value} is below the platform floor {bound}"))
        if kind == "max" and value > bound:
            problems.append((f"gates.{gate}", f"{value} is above the platform ceiling {bound}"))
    return problems
