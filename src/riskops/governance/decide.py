"""A risk officer's decision, as the governance API takes it: authenticate, check, sign, resume.

Everything that can be refused here is refused and recorded before the paused run is touched;
the run checks the signed decision again inside the transaction that records it.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from riskops.db import session_scope
from riskops.governance.envelope import sign_decision
from riskops.governance.people import people_behind
from riskops.governance.signoff import (
    DECIDER_ROLE,
    judge,
    record_submission,
    request_of,
    validation_of,
)
from riskops.identity.principals import Principal
from riskops.platform import Platform
from riskops.records import SignOffRecord
from riskops.stages.validation import spec_of_version

POLL_SECONDS = 1.0


class DecisionError(Exception):
    """A decision that cannot be taken; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, record: SignOffRecord | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.record = status, message, record


@dataclass(frozen=True)
class Prefect:
    """The two Prefect calls a decision needs (real ones in the service, fakes in unit tests)."""

    run_state: Callable[[str], str | None]
    resume: Callable[[str, dict[str, Any]], None]


def describe_state(platform: Platform, model: str, version: str, prefect: Prefect) -> str:
    """The actual state of a version and of its sign-off run, in words."""
    with session_scope(platform.engine) as session:
        validation = validation_of(session=session, model=model, version=version)
        request = request_of(session=session, model=model, version=version)
    if validation is None:
        said = f"{model} v{version} has not been validated yet"
    elif validation.passed:
        said = f"{model} v{version} passed validation on {validation.validated_at:%Y-%m-%d %H:%M}"
    else:
        said = (
            f"{model} v{version} failed validation ({', '.join(validation.failed_gates)}) and "
            "cannot be approved"
        )
    if request is None:
        return said + "; no sign-off run has opened a request for it yet"
    state = prefect.run_state(request.flow_run_id)
    return (
        f"{said}; its sign-off request ({request.status}) is run {request.flow_run_id} in "
        f"state {state or 'unknown to Prefect'}"
    )


def _refuse(
    platform: Platform, principal: Principal, model: str, version: str, decision: str,
    justification: str, why: str, channel: str, status: int,
) -> DecisionError:  # fmt: skip
    from riskops.governance.signoff import Verdict

    with session_scope(platform.engine) as session:
        record = record_submission(
            session=session, model=model, version=version, approver=principal.name,
            decision=decision, justification=justification, verdict=Verdict(False, why),  # type: ignore[arg-type]
            approver_role=principal.role, verified=True, channel=channel, demo=principal.demo,
        )  # fmt: skip
    return DecisionError(status, f"refused and recorded: {why}", record)


def _wait_for_request(
    platform: Platform, model: str, version: str, prefect: Prefect, wait_seconds: float
) -> str:
    """The run id of a paused request of a validated version, waiting (bounded) for it."""
    deadline = time.monotonic() + wait_seconds
    while True:
        with session_scope(platform.engine) as session:
            validation = validation_of(session=session, model=model, version=version)
            request = request_of(session=session, model=model, version=version)
        if validation is not None and not validation.passed:
            raise DecisionError(409, describe_state(platform, model, version, prefect))
        if request is not None and request.status != "waiting":
            raise DecisionError(
                409, f"{model} v{version} was already decided ({request.status}) in run "
                f"{request.flow_run_id}",
            )  # fmt: skip
        if request is not None and prefect.run_state(request.flow_run_id) == "Paused":
            return request.flow_run_id
        if time.monotonic() >= deadline:
            raise DecisionError(
                409,
                f"waited {wait_seconds:.0f}s for the sign-off request: "
                + describe_state(platform, model, version, prefect)
                + "; try again when the run is Paused",
            )
        time.sleep(POLL_SECONDS)


def decide(
    *, platform: Platform, prefect: Prefect, signing_key: str, principal: Principal, model: str,
    version: str, decision: str, justification: str, channel: str = "governance-api",
    wait_seconds: float = 120.0, record_timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> SignOffRecord:  # fmt: skip
    """Take an authenticated decision: refuse and record, or sign it and resume the run."""
    version = str(version)
    if decision not in {"approve", "decline"}:
        raise DecisionError(422, f"decision must be approve or decline, not {decision!r}")
    if principal.role != DECIDER_ROLE:
        raise _refuse(
            platform, principal, model, version, decision, justification,
            f"{principal.name} has role {principal.role}; only a {DECIDER_ROLE} may sign off",
            channel, 403,
        )  # fmt: skip
    if progress:
        progress(f"waiting for the sign-off request of {model} v{version} (<= {wait_seconds:.0f}s)")
    run_id = _wait_for_request(platform, model, version, prefect, wait_seconds)
    spec = spec_of_version(platform.engine, model, version)
    with session_scope(platform.engine) as session:
        people = people_behind(
            session=session, client=platform.mlflow, model=model, version=version
        )
        validation = validation_of(session=session, model=model, version=version)
    verdict = judge(
        spec=spec, version=version, approver=principal.name, approver_role=principal.role,
        decision=decision, justification=justification, people=people,  # type: ignore[arg-type]
        validation=validation, verified=True,
    )  # fmt: skip
    if not verdict.accepted:
        raise _refuse(
            platform, principal, model, version, decision, justification,
            str(verdict.refusal), channel, 403,
        )  # fmt: skip
    nonce = uuid.uuid4().hex
    claims = {
        "flow_run_id": run_id, "model": model, "version": version,
        "approver": principal.name, "role": principal.role, "decision": decision,
        "justification": justification, "channel": channel, "nonce": nonce,
        "issued_at": dt.datetime.now(dt.UTC).isoformat(),
    }  # fmt: skip
    prefect.resume(
        run_id,
        {"approver": principal.name, "decision": decision, "justification": justification,
         "envelope": sign_decision(signing_key, claims)},
    )  # fmt: skip
    deadline = time.monotonic() + record_timeout
    while time.monotonic() < deadline:
        with session_scope(platform.engine) as session:
            record = session.exec(
                select(SignOffRecord).where(SignOffRecord.decision_id == nonce)
            ).first()
        if record is not None:
            if not record.accepted:
                raise DecisionError(403, f"refused and recorded: {record.refusal}", record)
            return record
        time.sleep(POLL_SECONDS / 2)
    raise DecisionError(
        504, f"the sign-off run {run_id} took the decision but recorded nothing within "
        f"{record_timeout:.0f}s; see the run in the Prefect UI",
    )  # fmt: skip
