"""Risk sign-off: who may approve, and the record of every submission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session, col, select

from riskops import audit
from riskops.records import SignOffRecord
from riskops.specs import ModelSpec

Decision = Literal["approve", "decline", "timeout"]
MIN_JUSTIFICATION = 10


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    refusal: str | None = None


def _norm(identity: str) -> str:
    return identity.strip().lower()


def judge(
    *, spec: ModelSpec, version: str, approver: str, decision: Decision, justification: str,
    trainer: str, validator: str,
) -> Verdict:  # fmt: skip
    """Whether a sign-off submission may stand (four-eyes for high-risk models)."""
    if not approver.strip():
        return Verdict(False, "the approver identity is empty")
    if decision != "timeout" and len(justification.strip()) < MIN_JUSTIFICATION:
        return Verdict(
            False, f"a justification of at least {MIN_JUSTIFICATION} characters is required"
        )
    if spec.risk_class == "high" and decision == "approve":
        if _norm(approver) == _norm(trainer):
            return Verdict(
                False,
                f"four-eyes rule: {approver} trained {spec.name} v{version} and cannot approve it "
                "(high-risk model); ask another risk officer",
            )
        if _norm(approver) == _norm(validator):
            return Verdict(False, f"four-eyes rule: {approver} validated this version")
    return Verdict(True)


def record_submission(
    *, session: Session, model: str, version: str, approver: str, decision: Decision,
    justification: str, verdict: Verdict, demo: bool = False,
) -> SignOffRecord:  # fmt: skip
    """Store the submission and its audit row in the caller's transaction."""
    record = SignOffRecord(
        model=model, version=str(version), approver=approver, decision=decision,
        justification=justification, accepted=verdict.accepted, refusal=verdict.refusal, demo=demo,
    )  # fmt: skip
    session.add(record)
    action = f"signoff.{decision}" if verdict.accepted else "signoff.refused"
    audit.append(
        session=session,
        actor=approver or "(empty)",
        action=action,
        subject=f"{model}/{version}",
        payload={
            "decision": decision,
            "justification": justification,
            "accepted": verdict.accepted,
            "refusal": verdict.refusal,
            "demo": demo,
        },
    )
    return record


def approval_of(*, session: Session, model: str, version: str) -> SignOffRecord | None:
    """The accepted approval of a version, if it ever had one."""
    return session.exec(
        select(SignOffRecord)
        .where(
            SignOffRecord.model == model,
            SignOffRecord.version == str(version),
            SignOffRecord.decision == "approve",
            col(SignOffRecord.accepted).is_(True),
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
