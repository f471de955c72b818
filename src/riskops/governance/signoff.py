"""Risk sign-off: who may decide, the invariants, and the record of every submission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from riskops import audit
from riskops.governance.people import People
from riskops.governance.policy import effective_risk_class
from riskops.records import SignOffRecord, SignOffRequest, ValidationRecord, utcnow
from riskops.specs import ModelSpec

Decision = Literal["approve", "decline", "timeout"]
MIN_JUSTIFICATION = 10
DECIDER_ROLE = "risk-officer"


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    refusal: str | None = None


def validation_of(*, session: Session, model: str, version: str) -> ValidationRecord | None:
    return session.exec(
        select(ValidationRecord).where(
            ValidationRecord.model == model, ValidationRecord.version == str(version)
        )
    ).first()


def validation_problem(validation: ValidationRecord | None, model: str, version: str) -> str | None:
    """Why this exact version may not be signed off or promoted (None when it passed)."""
    if validation is None:
        return f"{model} v{version} has no validation record: it has not been validated"
    if not validation.passed:
        gates = ", ".join(validation.failed_gates) or "(unnamed)"
        return (
            f"{model} v{version} failed validation on {validation.validated_at:%Y-%m-%d %H:%M} "
            f"(gates: {gates}); only a version whose validation passed can be signed off"
        )
    return None


def judge(
    *, spec: ModelSpec, version: str, approver: str, approver_role: str | None,
    decision: Decision, justification: str, people: People,
    validation: ValidationRecord | None, verified: bool,
) -> Verdict:  # fmt: skip
    """Whether a sign-off submission may stand.

    The approver must be an authenticated risk officer; only a version whose validation passed
    may be approved; for high-risk models (the family's floor applies, whatever the spec says)
    the approver must be none of the people behind the version, and every one of them must
    be known.
    """
    if decision == "timeout":
        return Verdict(True)
    if not verified:
        return Verdict(
            False,
            f"unverified decision by {approver or '(empty)'!r}: a typed name proves nothing; "
            "decide on the sign-off page or with `riskops approve` as an authenticated risk "
            "officer",
        )
    if approver_role != DECIDER_ROLE:
        return Verdict(
            False, f"{approver} has role {approver_role}; only a {DECIDER_ROLE} may sign off"
        )
    if len(justification.strip()) < MIN_JUSTIFICATION:
        return Verdict(
            False, f"a justification of at least {MIN_JUSTIFICATION} characters is required"
        )
    if decision == "approve":
        problem = validation_problem(validation, spec.name, version)
        if problem:
            return Verdict(False, problem)
    if effective_risk_class(spec) == "high" and decision == "approve":
        if people.involves(approver):
            did = "; ".join(what for who, what in people.roles if who == approver)
            return Verdict(
                False,
                f"four-eyes rule: {approver} {did} for {spec.name} v{version} and cannot approve "
                "it (high-risk model); another risk officer must decide",
            )
        if people.unknown:
            return Verdict(
                False,
                "four-eyes rule cannot be checked: unknown " + "; unknown ".join(people.unknown),
            )
    return Verdict(True)


def record_submission(
    *, session: Session, model: str, version: str, approver: str, decision: Decision,
    justification: str, verdict: Verdict, approver_role: str | None = None,
    verified: bool = False, channel: str = "", decision_id: str | None = None,
    flow_run_id: str | None = None, demo: bool = False,
) -> SignOffRecord:  # fmt: skip
    """Store the submission and its audit row in the caller's transaction."""
    record = SignOffRecord(
        model=model, version=str(version), approver=approver, approver_role=approver_role,
        decision=decision, justification=justification, accepted=verdict.accepted,
        refusal=verdict.refusal, verified=verified, channel=channel, decision_id=decision_id,
        flow_run_id=flow_run_id, demo=demo,
    )  # fmt: skip
    session.add(record)
    action = f"signoff.{decision}" if verdict.accepted else "signoff.refused"
    audit.append(
        session=session,
        actor=approver if verified else f"unverified:{approver or '(empty)'}",
        action=action,
        subject=f"{model}/{version}",
        payload={
            "decision": decision,
            "justification": justification,
            "accepted": verdict.accepted,
            "refusal": verdict.refusal,
            "role": approver_role,
            "verified": verified,
            "channel": channel,
            "decision_id": decision_id,
            "flow_run_id": flow_run_id,
            "demo": demo,
        },
    )
    session.flush()
    return record


def approval_of(*, session: Session, model: str, version: str) -> SignOffRecord | None:
    """The accepted, authenticated approval of a version, if it ever had one."""
    return session.exec(
        select(SignOffRecord)
        .where(
            SignOffRecord.model == model,
            SignOffRecord.version == str(version),
            SignOffRecord.decision == "approve",
            col(SignOffRecord.accepted).is_(True),
            col(SignOffRecord.verified).is_(True),
        )
        .order_by(col(SignOffRecord.decided_at).desc())
    ).first()


def decisions_for(*, session: Session, model: str, version: str) -> list[SignOffRecord]:
    return list(
        session.exec(
            select(SignOffRecord)
            .where(SignOffRecord.model == model, SignOffRecord.version == str(version))
            .order_by(col(SignOffRecord.id))
        ).all()
    )


def request_of(*, session: Session, model: str, version: str) -> SignOffRequest | None:
    return session.exec(
        select(SignOffRequest).where(
            SignOffRequest.model == model, SignOffRequest.version == str(version)
        )
    ).first()


def close_request(*, session: Session, model: str, version: str, status: str) -> None:
    request = request_of(session=session, model=model, version=version)
    if request is not None and request.status == "waiting":
        request.status, request.closed_at = status, utcnow()
        session.add(request)


def pending_requests(*, session: Session) -> list[SignOffRequest]:
    return list(
        session.exec(
            select(SignOffRequest)
            .where(SignOffRequest.status == "waiting")
            .order_by(col(SignOffRequest.requested_at))
        ).all()
    )
