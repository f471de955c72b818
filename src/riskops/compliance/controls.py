"""The controls a card may claim: only what the records show ran for this version.

Each control reads as ``ran``, ``not run`` or ``not in place`` with the evidence behind it, so
a card never states a control that the platform did not apply (finding 7 of the review).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

RAN, NOT_RUN, NOT_IN_PLACE = "ran", "not run", "not in place"


def _control(name: str, status: str, evidence: str) -> dict[str, str]:
    return {"control": name, "status": status, "evidence": evidence}


def _contract(lineage: Mapping[str, Any]) -> dict[str, str]:
    ds, landed = lineage.get("dataset_version") or {}, lineage.get("landed") or {}
    if not ds:
        why = "no dataset version is recorded for this model version (not catalogued)"
        return _control("Data contract check", NOT_RUN, why)
    source = f"landed file {landed['filename']} " if landed.get("filename") else ""
    against = f" against spec {ds['spec_hash'][:16]}…" if ds.get("spec_hash") else ""
    evidence = f"{source}accepted as dataset version {ds.get('id')}{against}"
    return _control("Data contract check", RAN, evidence)


def _names(gates: Sequence[Mapping[str, Any]], status: str) -> list[str]:
    return [g["name"] for g in gates if g["status"] == status]


def _gates(validation: Mapping[str, Any], validator: Any) -> dict[str, str]:
    if not validation.get("available"):
        return _control("Validation gates", NOT_RUN, "this version has not been validated")
    gates = validation["gates"]
    measured = [g for g in gates if g["status"] in ("pass", "FAIL")]
    parts = [
        f"{'passed' if validation['passed'] else 'FAILED'} by {validator or 'unknown'}",
        f"{len(measured)} of {len(gates)} gates measured "
        f"({len(_names(gates, 'pass'))} passed, {len(_names(gates, 'FAIL'))} failed)",
    ]
    if skipped := _names(gates, "skipped"):
        parts.append(f"skipped (not measured): {', '.join(skipped)}")
    waived = [f"{g['name']} ({g['waiver']})" for g in gates if g["status"] == "waived"]
    if waived:
        parts.append(f"waived: {'; '.join(waived)}")
    return _control("Validation gates", RAN, "; ".join(parts))


def _sign_off(approvals: Sequence[Mapping[str, Any]], risk_class: str) -> dict[str, str]:
    name = "Sign-off (four-eyes rule)" if risk_class == "high" else "Sign-off"
    if not approvals:
        return _control(name, NOT_RUN, "no sign-off submission is recorded for this version")
    accepted = [f"{a['decision']} by {a['who']}" for a in approvals if a["outcome"] == "accepted"]
    refused = [f"{a['who']} ({a['refusal']})" for a in approvals if a["outcome"] != "accepted"]
    parts = [f"{len(approvals)} submissions"]
    parts.append(f"accepted: {', '.join(accepted)}" if accepted else "none accepted")
    if refused:
        parts.append(f"refused: {'; '.join(refused)}")
    return _control(name, RAN, "; ".join(parts))


def _promotion(promotions: Sequence[Mapping[str, Any]], version: str) -> dict[str, str]:
    moves = [p for p in promotions if p["this_version"]]
    if not moves:
        why = f"the champion alias never moved to or from version {version}"
        return _control("Champion alias moves after approval", NOT_RUN, why)
    done = [f"{p['kind']} to v{p['version']} at {p['when']} by {p['actor']}" for p in moves]
    return _control("Champion alias moves after approval", RAN, "; ".join(done))


def _audit(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    if not rows:
        why = "no audit row is recorded about this version"
        return _control("Hash-chained audit trail", NOT_RUN, why)
    seqs = [r.get("seq") for r in rows]
    actions = sorted({str(r.get("action")) for r in rows})
    evidence = f"{len(rows)} rows about this version (seq {min(seqs)} to {max(seqs)}): "
    return _control("Hash-chained audit trail", RAN, evidence + ", ".join(actions))


def _anchor(anchor: Mapping[str, Any] | None) -> dict[str, str]:
    if not anchor:
        why = "no chain head is anchored on this version's registry entry"
        return _control("Chain head anchored outside the database", NOT_RUN, why)
    if anchor.get("error"):
        return _control("Chain head anchored outside the database", "unreadable", anchor["error"])
    evidence = (
        f"head row {anchor.get('seq')} ({str(anchor.get('row_hash'))[:16]}…) anchored at "
        f"{anchor.get('at')} as MLflow tag riskops.audit.head"
    )
    return _control("Chain head anchored outside the database", RAN, evidence)


def controls(
    data: Mapping[str, Any],
    *,
    lineage: Mapping[str, Any],
    audit_rows: Sequence[Mapping[str, Any]],
    anchor: Mapping[str, Any] | None,
) -> list[dict[str, str]]:
    """The controls of this version, each with what ran and the record that shows it."""
    return [
        _contract(lineage),
        _gates(data["validation"], data["roles"]["validated_by"]),
        _sign_off(data["approvals"], data["risk_class"]),
        _promotion(data["promotions"], data["version"]),
        _audit(audit_rows),
        _anchor(anchor),
        _drift(data["monitoring_results"]["drift"]),
        _outcomes(data["monitoring_results"]["performance"]),
    ]


def _drift(results: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    if not results:
        why = "the monitor runs hourly for the champion; no window of this version judged yet"
        return _control("Drift monitoring", NOT_RUN, why)
    parts = [
        f"{r['kind']}: {r['worst_band'] or 'not judged'} ({r['windows']} window(s), latest to "
        f"{r['window_end'][:16]})"
        for r in results
    ]
    return _control("Drift monitoring", RAN, "; ".join(parts))


def _outcomes(results: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    if not results or not results[0]["labelled_rows"]:
        why = "no outcome of this version's decisions has been landed and matched yet"
        return _control("Outcomes analysis on late labels", NOT_RUN, why)
    r = results[0]
    auc = "n/a" if r["overall_auc"] is None else f"{r['overall_auc']:.3f}"
    verdict = (
        "DEGRADED in " + ", ".join(r["breaching_vintages"]) if r["degraded"] else "within tolerance"
    )
    return _control(
        "Outcomes analysis on late labels", RAN,
        f"{r['labelled_rows']} labelled decisions, AUC {auc}: {verdict} (at {r['at'][:16]})",
    )  # fmt: skip
