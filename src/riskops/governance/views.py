"""What the sign-off page and the API show about a version: records gathered, nothing computed."""

from __future__ import annotations

from typing import Any

from riskops import catalog
from riskops.db import session_scope
from riskops.governance.people import people_behind
from riskops.governance.signoff import (
    decisions_for,
    pending_requests,
    request_of,
    validation_of,
)
from riskops.platform import Platform


def pending(platform: Platform) -> list[dict[str, Any]]:
    """Versions whose sign-off request is waiting, oldest first."""
    with session_scope(platform.engine) as session:
        rows = []
        for request in pending_requests(session=session):
            validation = validation_of(
                session=session, model=request.model, version=request.version
            )
            rows.append(
                {
                    "model": request.model,
                    "version": request.version,
                    "requested_at": request.requested_at.isoformat(),
                    "flow_run_id": request.flow_run_id,
                    "validation_passed": bool(validation and validation.passed),
                }
            )
    return rows


def version_view(platform: Platform, model: str, version: str) -> dict[str, Any]:
    """Gate results, fairness, reason-code examples, lineage, people and decisions of a version."""
    with session_scope(platform.engine) as session:
        validation = validation_of(session=session, model=model, version=version)
        request = request_of(session=session, model=model, version=version)
        try:
            lineage = catalog.lineage_of_version(session=session, model=model, version=version)
        except LookupError:
            lineage = None
        people = people_behind(
            session=session, client=platform.mlflow, model=model, version=version
        )
        decisions = [
            d.model_dump(mode="json")
            for d in decisions_for(session=session, model=model, version=version)
        ]
    results = validation.report.get("results", []) if validation else []
    fairness = [
        {"gate": g["name"], "groups": (g.get("evidence") or {}).get("groups", []),
         "threshold": (g.get("evidence") or {}).get("decision_threshold")}
        for g in results
        if g["name"].startswith("fairness.") and (g.get("evidence") or {}).get("groups")
    ]  # fmt: skip
    reasons = [g for g in results if g["name"] == "explainability.reason_codes"]
    examples = (reasons[0].get("evidence") or {}).get("examples") if reasons else None
    return {
        "model": model,
        "version": str(version),
        "validation": None
        if validation is None
        else {"passed": validation.passed, "failed_gates": validation.failed_gates,
              "validated_at": validation.validated_at.isoformat(), "results": results},
        "request": None if request is None else request.model_dump(mode="json"),
        "fairness": fairness,
        "reason_code_examples": examples or [],
        "lineage": lineage,
        "people": {"roles": [list(r) for r in people.roles], "unknown": list(people.unknown)},
        "decisions": decisions,
    }  # fmt: skip
