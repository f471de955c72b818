"""Compliance evidence: model cards (EU AI Act Annex IV + SR 26-2) and signed regulator exports."""

from __future__ import annotations

from riskops.compliance.blocks import ANNEX_IV_SECTIONS
from riskops.compliance.card import Card, CardInputs, build_card
from riskops.compliance.export import write_regulator_export
from riskops.compliance.gather import gather_card_inputs
from riskops.compliance.verify import verify_export

__all__ = [
    "ANNEX_IV_SECTIONS",
    "Card",
    "CardInputs",
    "build_card",
    "gather_card_inputs",
    "verify_export",
    "write_regulator_export",
]
