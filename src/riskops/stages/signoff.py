"""Sign-off stage: open the request, judge each submission inside its transaction, record it.

The flow (flows/sign_off.py) pauses between these calls; every check that matters is made
here again, inside the transaction that records the decision, whatever the caller checked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from riskops import audit, events, outbox
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.governance.envelope import InvalidDecision, verify_decision
from riskops.governance.people import People, people_behind
from riskops.governance.policy import effective_risk_class
from riskops.governance.promotion import lock_model
from riskops.governance.signoff import (
    Decision,
    Verdict,
    close_request,
    judge,
    record_submission,
    request_of,
    validation_of,
    validation_problem,
)
from riskops.identity.principals import get_principal
from riskops.platform import Platform
from riskops.records import SignOffRecord, SignOffRequest
from riskops.specs import ModelSpec
from riskops.stages.validation import spec_of_version

SIGNOFF_ACTOR = "riskops-signoff"


@dataclass(frozen=True)
class SignOffContext:
    spec: ModelSpec
    risk_class: str
    people: People
    gate_markdown: str


@dataclass(frozen=True)
class Opened:
    """The outcome of opening a request: waiting for a decision, or why not."""

    context: SignOffContext | None
    refusal: str | None = None
    duplicate_of: str | None = None


def _gate_markdown(session: Session, model: str, version: str) -> str:
    validation = validation_of(session=session, model=model, version=version)
    if validation is None:
        return "(no gate report recorded)"
    rows = "\n".join(
        f"| {g['name']} | {g.get('value')} | {g.get('threshold')} | "
        f"{g.get('status') or ('pass' if g['passed'] else 'FAIL')} |"
        for g in validation.report.get("results", [])
    )
    return "| gate | value | threshold | result |\n|---|---|---|---|\n" + rows


ALIVE = frozenset({"Paused", "Suspended", "Running", "Pending", "Scheduled", "Late", "Retrying",
                   "AwaitingRetry"})  # fmt: skip


def _take_over(session: Session, request: SignOffRequest, flow_run_id: str, why: str) -> None:
    """A new run carries the request on (its run ended, or it timed out), on the record."""
    audit.append(
        session=session, actor=SIGNOFF_ACTOR, action="signoff.request-taken-over",
        subject=f"{request.model}/{request.version}",
        payload={"from_run": request.flow_run_id, "to_run": flow_run_id, "why": why},
    )  # fmt: skip
    request.flow_run_id, request.status, request.closed_at = flow_run_id, "waiting", None
    session.add(request)


def open_request(
    *, platform: Platform, model: str, version: str, flow_run_id: str,
    run_state: Callable[[str], str | None] | None = None,
) -> Opened:  # fmt: skip
    """Record that a decision is requested, unless the version may not be signed off at all.

    A version whose validation did not pass gets no request (recorded as refused); a second
    request for the same version (a redelivered ``model.validated``) is a duplicate while the
    first run is alive or the version was decided; a request whose run ended without a
    decision (cancelled, crashed) or timed out is taken over by the new run, on the record.
    """
    spec = spec_of_version(platform.engine, model, version)
    with session_scope(platform.engine) as session:
        problem = validation_problem(
            validation_of(session=session, model=model, version=version), model, version
        )
        if problem:
            audit.append(
                session=session, actor=SIGNOFF_ACTOR, action="signoff.request-refused",
                subject=f"{model}/{version}", payload={"why": problem, "flow_run_id": flow_run_id},
            )  # fmt: skip
            return Opened(None, refusal=problem)
        existing = request_of(session=session, model=model, version=version)
        if existing is not None and existing.flow_run_id != flow_run_id:
            state = run_state(existing.flow_run_id) if run_state else "unknown"
            if existing.status == "timeout":
                _take_over(session, existing, flow_run_id, "the earlier request timed out")
            elif existing.status == "waiting" and state != "unknown" and state not in ALIVE:
                _take_over(session, existing, flow_run_id, f"its run ended in state {state}")
            else:
                return Opened(None, duplicate_of=existing.flow_run_id)
        if existing is None:
            try:
                with session.begin_nested():
                    session.add(
                        SignOffRequest(model=model, version=version, flow_run_id=flow_run_id)
                    )
            except IntegrityError:
                again = request_of(session=session, model=model, version=version)
                return Opened(None, duplicate_of=again.flow_run_id if again else "?")
            audit.append(
                session=session, actor=SIGNOFF_ACTOR, action="signoff.requested",
                subject=f"{model}/{version}",
                payload={"risk_class": effective_risk_class(spec), "flow_run_id": flow_run_id},
            )  # fmt: skip
        people = people_behind(
            session=session, client=platform.mlflow, model=model, version=version
        )
        gates = _gate_markdown(session, model, version)
    return Opened(SignOffContext(spec, effective_risk_class(spec), people, gates))


@dataclass(frozen=True)
class Submitted:
    verdict: Verdict
    record: SignOffRecord
    event: RiskopsEvent | None
    outbox_id: str | None


def _claims(platform: Platform, envelope: str, flow_run_id: str, model: str, version: str) -> dict:
    claims = verify_decision(platform.governance_public_key, envelope)
    expected = {"flow_run_id": flow_run_id, "model": model, "version": str(version)}
    for key, value in expected.items():
        if str(claims.get(key)) != value:
            raise InvalidDecision(
                f"the signed decision is for {key}={claims.get(key)!r}, not {value!r}"
            )
    return claims


def submit(
    *, platform: Platform, model: str, version: str, flow_run_id: str, typed_approver: str,
    decision: Decision, justification: str, envelope: str = "", now: dt.datetime | None = None,
) -> Submitted:  # fmt: skip
    """Verify, judge and record one submission; its event goes to the outbox when it stands.

    A submission without a valid signed decision (the Prefect UI's Resume form) is refused
    and recorded under the typed name, marked unverified.
    """
    spec = spec_of_version(platform.engine, model, version)
    verified, approver, role, channel, decision_id, demo = (
        False,
        typed_approver,
        None,
        "",
        None,
        False,
    )
    refusal: str | None = None
    if decision == "timeout":
        verified, approver, channel = True, SIGNOFF_ACTOR, "timeout"
    else:
        try:
            claims = _claims(platform, envelope, flow_run_id, model, version)
            verified, approver = True, str(claims["approver"])
            decision = claims["decision"]
            justification = str(claims["justification"])
            channel, decision_id = str(claims.get("channel", "governance-api")), claims["nonce"]
        except (InvalidDecision, KeyError) as error:
            refusal, channel = str(error).strip("'\""), "prefect-ui"
    with session_scope(platform.engine) as session:
        lock_model(session, model)
        if (
            decision_id
            and session.exec(
                select(SignOffRecord).where(SignOffRecord.decision_id == decision_id)
            ).first()
        ):
            verified, refusal, decision_id = (
                False,
                "refused: this signed decision was used before",
                None,
            )
        if verified and decision != "timeout":
            principal = get_principal(session=session, name=approver)
            if principal is None or not principal.active:
                verified, refusal = False, f"{approver} is not an active principal"
            else:
                role, demo = principal.role, principal.demo
        people = people_behind(
            session=session, client=platform.mlflow, model=model, version=version
        )
        verdict = judge(
            spec=spec, version=version, approver=approver, approver_role=role, decision=decision,
            justification=justification, people=people,
            validation=validation_of(session=session, model=model, version=version),
            verified=verified,
        )  # fmt: skip
        if refusal:  # the envelope's problem is the reason; judge's "unverified" adds nothing
            verdict = Verdict(False, refusal)
        record = record_submission(
            session=session, model=model, version=version, approver=approver, decision=decision,
            justification=justification, verdict=verdict, approver_role=role, verified=verified,
            channel=channel, decision_id=decision_id, flow_run_id=flow_run_id, demo=demo,
        )  # fmt: skip
        event, event_id = None, None
        if verdict.accepted:
            final = {"approve": "approved", "decline": "declined", "timeout": "timeout"}[decision]
            close_request(session=session, model=model, version=version, status=final)
            event = RiskopsEvent(
                name=events.MODEL_APPROVED if decision == "approve" else events.MODEL_DECLINED,
                resource_id=events.model_resource(model, version),
                payload={
                    "model": model,
                    "version": str(version),
                    "approver": approver,
                    "decision": decision,
                    "justification": justification,
                    "signoff_id": record.id,
                    "demo": demo,
                },
            )
            event_id = outbox.enqueue(session=session, event=event)
    return Submitted(verdict, record, event, event_id)
