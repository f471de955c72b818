"""Which rules the card follows: SR 26-2 / OCC 2026-13 tiers, the SR 11-7 map, EU AI Act dates."""

from __future__ import annotations

from typing import Any

from riskops.specs import ModelSpec

MRM = "SR 26-2 / OCC 2026-13"
MRM_GUIDANCE = (
    "Federal Reserve SR 26-2 and OCC Bulletin 2026-13, model risk management guidance "
    "(principles-based and materiality-tiered, for banking organisations with more than "
    "$30 billion in total assets); they superseded SR 11-7 on 17 April 2026"
)
ANNEX_III_APPLIES_FROM = "2 December 2027"
TIER_NAMES = {1: "Tier 1 (high materiality)", 2: "Tier 2 (moderate)", 3: "Tier 3 (low)"}
# Why each input sets a tier: the impact of a wrong score on the people and the bank.
RISK_CLASS_TIER = {"high": 1, "limited": 2, "minimal": 3}
FAMILY_TIER = {
    "credit_scoring": (1, "decides consumers' access to credit"),
    "fraud_detection": (2, "blocks or delays payments, with a person reviewing alerts"),
    "transaction_risk": (2, "routes transactions to review queues"),
    "other": (3, "no family-specific impact is known to the platform"),
}
# Card sub-section → the SR 11-7 element it answers, for readers whose policy still cites it.
SR_11_7_MAP = (
    ("Conceptual soundness (section 2)", "Model validation: evaluation of conceptual soundness"),
    ("Validation gates (section 4)", "Model validation: outcomes analysis (holdout testing)"),
    ("Benchmark comparison (section 4)", "Model validation: benchmarking"),
    (
        "Ongoing monitoring and its latest results (section 9)",
        "Model validation: ongoing monitoring",
    ),
    ("Outcomes analysis (section 9)", "Model validation: outcomes analysis, back-testing"),
    ("Limitations (section 3)", "Model use: limitations and assumptions"),
    ("Controls and approvals (sections 3, 5)", "Governance, policies and controls"),
)


def materiality(spec: ModelSpec) -> dict[str, Any]:
    """The spec's materiality tier: the more material of its risk class and its family."""
    by_class = RISK_CLASS_TIER[spec.risk_class]
    by_family, impact = FAMILY_TIER.get(spec.family, FAMILY_TIER["other"])
    tier = min(by_class, by_family)
    basis = (
        f"risk_class {spec.risk_class} gives tier {by_class}; family {spec.family} gives tier "
        f"{by_family} (it {impact}); the more material of the two applies. The tier is "
        "derived by riskops from the spec: the bank's model risk function confirms it."
    )
    return {"tier": tier, "name": TIER_NAMES[tier], "basis": basis}


def ai_act_dates(spec: ModelSpec) -> str | None:
    """When the EU AI Act's Annex III obligations apply to this model (None if not high-risk)."""
    if spec.risk_class != "high":
        return None
    point = " (point 5(b): creditworthiness and credit scoring)" if (
        spec.family == "credit_scoring"
    ) else ""  # fmt: skip
    return (
        f"High-risk under Annex III{point}: its obligations apply from "
        f"{ANNEX_III_APPLIES_FROM} (as deferred by the Digital Omnibus)."
    )
