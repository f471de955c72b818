"""Sign-off stage: what the risk officer sees, and how a submission is judged and recorded."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import select

from riskops import audit, catalog, events
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.governance.signoff import Decision, Verdict, judge, record_submission
from riskops.records import ValidationRecord
from riskops.specs import ModelSpec
from riskops.stages.validation import VALIDATOR, spec_of_version


@dataclass(frozen=True)
class SignOffContext:
    spec: ModelSpec
    trainer: str
    validator: str
    gate_markdown: str


def signoff_context(*, engine: Engine, model: str, version: str) -> SignOffContext:
    """The spec, who trained and validated the version, and its gate report."""
    spec = spec_of_version(engine, model, version)
    with session_scope(engine) as session:
        record = catalog.get_model_version(session=session, model=model, version=version)
        validation = session.exec(
            select(ValidationRecord).where(
                ValidationRecord.model == model, ValidationRecord.version == str(version)
            )
        ).first()
        audit.append(
            session=session, actor="riskops-signoff", action="signoff.requested",
            subject=f"{model}/{version}", payload={"risk_class": spec.risk_class},
        )  # fmt: skip
    trainer = record.trainer if record else "unknown (registered outside riskops)"
    gates = "(no gate report recorded)"
    if validation is not None:
        rows = validation.report.get("results", [])
        gates = "\n".join(
            f"| {g['name']} | {g.get('value')} | {g.get('threshold')} | "
            f"{'pass' if g['passed'] else 'FAIL'} |"
            for g in rows
        )
        gates = "| gate | value | threshold | result |\n|---|---|---|---|\n" + gates
    return SignOffContext(spec, trainer, validation.validator if validation else VALIDATOR, gates)


def submit(
    *, engine: Engine, context: SignOffContext, model: str, version: str, approver: str,
    decision: Decision, justification: str, demo: bool = False,
) -> tuple[Verdict, RiskopsEvent | None]:  # fmt: skip
    """Judge and record one submission; the event to emit when it stands (None if refused)."""
    verdict = judge(
        spec=context.spec, version=version, approver=approver, decision=decision,
        justification=justification, trainer=context.trainer, validator=context.validator,
    )  # fmt: skip
    with session_scope(engine) as session:
        record_submission(
            session=session, model=model, version=version, approver=approver, decision=decision,
            justification=justification, verdict=verdict, demo=demo,
        )  # fmt: skip
    if not verdict.accepted:
        return verdict, None
    event = RiskopsEvent(
        name=events.MODEL_APPROVED if decision == "approve" else events.MODEL_DECLINED,
        resource_id=events.model_resource(model, version),
        payload={
            "model": model,
            "version": str(version),
            "approver": approver,
            "decision": decision,
            "justification": justification,
            "trainer": context.trainer,
            "demo": demo,
        },
    )
    return verdict, event
