"""What an unmeasured gate means: for a high-risk model it fails unless the spec waives it.

A gate is *unmeasured* when it was skipped for lack of input (no training sample, too few rows
per group, no decision cut-off, contributions that do not add up to the score). Gates with
nothing to measure by design (no champion yet) are *not applicable* and never fail.

* ``risk_class: high``: an unmeasured gate fails, unless ``gates.waivers`` names it (or a dotted
  prefix of it: ``fairness.age`` covers ``fairness.age.equal_opportunity``); then its status is
  ``waived`` and the written reason travels with the result to the card and the audit.
* other classes: an unmeasured gate stays ``skipped`` (it does not block, nor is it a pass).

A waiver never turns a measured failure into a pass. Waivers that name no gate of the report, or
only gates that were measured, are listed in the report context as ``unused_waivers``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from riskops.validation.results import GateResult


def waiver_for(name: str, waivers: Mapping[str, str]) -> str | None:
    """The waiver key covering gate ``name``: itself, else its longest dotted prefix."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in waivers:
            return key
    return None


def _unmeasured_failure(result: GateResult) -> GateResult:
    message = (
        f"{result.message.rstrip('.')}. Not measured, and a high-risk model must measure every "
        f"gate: supply what is missing, or waive it with gates.waivers['{result.name}'] and a "
        "written reason in the spec."
    )
    evidence = {**result.evidence, "unmeasured": True}
    return replace(result, passed=False, skipped=False, message=message, evidence=evidence)


def apply_waivers(
    results: Sequence[GateResult], *, risk_class: str, waivers: Mapping[str, str]
) -> tuple[list[GateResult], dict[str, Any]]:
    """Results with the unmeasured-gate rule applied, and context on how waivers were used."""
    out: list[GateResult] = []
    used: set[str] = set()
    covered: dict[str, list[str]] = {}
    for result in results:
        key = waiver_for(result.name, waivers)
        if key is not None:
            covered.setdefault(key, []).append(result.name)
        if not result.skipped or result.not_applicable:
            out.append(result)
        elif key is not None:
            used.add(key)
            out.append(replace(result, waiver=waivers[key]))
        elif risk_class == "high":
            out.append(_unmeasured_failure(result))
        else:
            out.append(result)
    unused = []
    for key in sorted(set(waivers) - used):
        if key in covered:
            why = (
                f"gates {covered[key]} were measured (or raised, or are not applicable), so it "
                "was not used: a waiver covers only a gate that cannot be measured"
            )
        else:
            why = "no gate of this report has that name or prefix (a typo?), so it was not used"
        unused.append({"gate": key, "reason": waivers[key], "why": why})
    context = {
        "waivers_applied": {r.name: r.waiver for r in out if r.waiver is not None},
        "unused_waivers": unused,
        "unmeasured_failed": [r.name for r in out if r.evidence.get("unmeasured")],
    }
    return out, context
