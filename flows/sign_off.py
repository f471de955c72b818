"""Risk sign-off: triggered by `riskops.model.validated`; waits for an authenticated decision.

The run shows the request (gate table, who is behind the version, how to decide) and pauses.
Only a decision signed by the governance API (sign-off page or `riskops approve`) stands;
Resume in the Prefect UI with a typed name is refused, recorded, and the run keeps waiting.
"""

from __future__ import annotations

import time
from typing import Literal

from prefect import flow, get_run_logger, pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.context import get_run_context
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field

from blocks import PLATFORM_BLOCK, RiskopsPlatform
from flows.common import deliver_events
from riskops.cost.hook import run_cost
from riskops.governance.moves import anchor
from riskops.governance.remote import flow_run_state
from riskops.stages.signoff import SignOffContext, open_request, submit


class SignOffInput(RunInput):
    """Filled in by the governance API. Typing into this form is refused: use the page."""

    approver: str = Field(default="", description="Set by the governance API; not typed here.")
    decision: Literal["approve", "decline"] = Field(default="decline")
    justification: str = Field(default="", description="Set by the governance API.")
    envelope: str = Field(
        default="",
        description="The signed decision. Decide on the riskops sign-off page instead.",
    )


def _brief(model: str, version: str, context: SignOffContext, page: str) -> str:
    people = "\n".join(f"- `{who}`: {what}" for who, what in context.people.roles) or "- (none)"
    unknown = "\n".join(f"- **unknown**: {what}" for what in context.people.unknown)
    return (
        f"# Sign-off requested: {model} v{version}\n\n"
        f"Risk class **{context.risk_class}** (family floor applied).\n\n"
        f"## Gates\n\n{context.gate_markdown}\n\n"
        f"## People behind this version (four-eyes)\n\n{people}\n{unknown}\n\n"
        f"## How to decide\n\nOpen the sign-off page {page}/signoff/{model}/{version} and log in "
        f"with your risk-officer key, or run `riskops approve {model} {version} --comment ...` "
        "with RISKOPS_API_KEY set. Resume here is refused: a typed name proves nothing.\n\n"
        f"Model card: `riskops card {model} {version}`."
    )


@flow(name="risk-sign-off", persist_result=False)
def risk_sign_off(model: str, version: str, timeout_hours: float = 72.0) -> dict[str, object]:
    """Pause until an authenticated risk officer decides; four-eyes for high-risk models."""
    block = RiskopsPlatform.load(PLATFORM_BLOCK)
    # Metered for its whole life: a paused run keeps its process (or pod) while it waits.
    with block.platform() as platform, run_cost(platform, model=model):
        return _request_and_wait(block, model, str(version), timeout_hours)


def _request_and_wait(
    block: RiskopsPlatform, model: str, version: str, timeout_hours: float
) -> dict[str, object]:
    logger = get_run_logger()
    run_id = str(get_run_context().flow_run.id)
    with block.platform() as platform:
        opened = open_request(
            platform=platform, model=model, version=version, flow_run_id=run_id,
            run_state=flow_run_state,
        )  # fmt: skip
    if opened.refusal:
        logger.error("no sign-off for %s v%s: %s", model, version, opened.refusal)
        return {"decision": "refused", "why": opened.refusal}
    if opened.duplicate_of:
        logger.info("sign-off of %s v%s is already requested by run %s", model, version,
                    opened.duplicate_of)  # fmt: skip
        return {"decision": "duplicate", "request_run": opened.duplicate_of}
    assert opened.context is not None
    brief = _brief(model, version, opened.context, block.governance_url or "(governance API)")
    create_markdown_artifact(key=f"signoff-{model}", markdown=brief, description=f"v{version}")
    deadline = time.monotonic() + timeout_hours * 3600
    attempt = 0
    while True:
        remaining = int(deadline - time.monotonic())
        try:
            if remaining <= 0:
                raise FlowPauseTimeout("sign-off window closed")
            answer = pause_flow_run(
                wait_for_input=SignOffInput.with_initial_data(description=brief),
                timeout=remaining,
                key=f"signoff-{attempt}",
            )
        except FlowPauseTimeout:
            with block.platform() as platform:
                done = submit(
                    platform=platform, model=model, version=version, flow_run_id=run_id,
                    typed_approver="", decision="timeout",
                    justification=f"no decision within {timeout_hours:g} hours",
                )  # fmt: skip
                deliver_events(platform, [done.outbox_id])
            logger.warning("%s v%s: sign-off timed out, recorded as declined", model, version)
            return {"decision": "timeout"}
        with block.platform() as platform:
            done = submit(
                platform=platform, model=model, version=version, flow_run_id=run_id,
                typed_approver=answer.approver, decision=answer.decision,
                justification=answer.justification, envelope=answer.envelope,
            )  # fmt: skip
            deliver_events(platform, [done.outbox_id])
            anchor(platform, model, version)  # refusals too: cutting them off the tail shows
        if not done.verdict.accepted:
            logger.warning("sign-off refused and recorded: %s; still waiting", done.verdict.refusal)
            attempt += 1
            continue
        record = done.record
        logger.info("%s v%s %sd by %s (authenticated)", model, version, record.decision,
                    record.approver)  # fmt: skip
        return {"decision": record.decision, "approver": record.approver}
