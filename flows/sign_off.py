"""Risk sign-off: triggered by `riskops.model.validated`; waits for a human decision."""

from __future__ import annotations

import time
from typing import Literal

from prefect import flow, get_run_logger, pause_flow_run
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.input import RunInput
from pydantic import Field

from blocks import PLATFORM_BLOCK, RiskopsPlatform
from riskops.emit import emit_to_prefect
from riskops.stages.signoff import signoff_context, submit


class SignOffInput(RunInput):
    """The form a risk officer fills in (Prefect UI, or `riskops approve/decline`)."""

    approver: str = Field(description="Your identity (e-mail or staff id); recorded.")
    decision: Literal["approve", "decline"] = Field(description="approve or decline.")
    justification: str = Field(description="The evidence relied on, and any conditions.")
    demo: bool = Field(default=False, description="Marks a demo approval in the records.")


@flow(name="risk-sign-off", persist_result=False)
def risk_sign_off(model: str, version: str, timeout_hours: float = 72.0) -> dict[str, object]:
    """Pause until a risk officer approves or declines; four-eyes for high-risk models."""
    logger = get_run_logger()
    platform = RiskopsPlatform.load(PLATFORM_BLOCK)
    engine = platform.get_engine()
    version = str(version)
    context = signoff_context(engine=engine, model=model, version=version)
    brief = (
        f"# Sign-off requested: {model} v{version}\n\n"
        f"Risk class **{context.spec.risk_class}**; trained by `{context.trainer}`.\n\n"
        f"{context.gate_markdown}\n\n"
        f"Model card: `riskops card {model} {version}`. Decide here (Resume) or with "
        f"`riskops approve {model} {version} --as YOU --comment ...`."
    )
    create_markdown_artifact(
        key=f"signoff-{model}", markdown=brief, description=f"{model} v{version}"
    )
    deadline = time.monotonic() + timeout_hours * 3600
    attempt = 0
    while True:
        remaining = int(deadline - time.monotonic())
        try:
            if remaining <= 0:
                raise FlowPauseTimeout("sign-off window closed")
            answer = pause_flow_run(
                wait_for_input=SignOffInput.with_initial_data(
                    description=brief, decision="approve"
                ),
                timeout=remaining,
                key=f"signoff-{attempt}",
            )
        except FlowPauseTimeout:
            _verdict, event = submit(
                engine=engine, context=context, model=model, version=version,
                approver="riskops-signoff", decision="timeout",
                justification=f"no decision within {timeout_hours:g} hours",
            )  # fmt: skip
            assert event is not None
            emit_to_prefect(event)
            logger.warning("%s v%s: sign-off timed out, recorded as declined", model, version)
            return {"decision": "timeout"}
        verdict, event = submit(
            engine=engine, context=context, model=model, version=version,
            approver=answer.approver, decision=answer.decision,
            justification=answer.justification, demo=answer.demo,
        )  # fmt: skip
        if event is None:
            logger.warning(
                "sign-off by %s refused: %s; still waiting", answer.approver, verdict.refusal
            )
            attempt += 1
            continue
        emit_to_prefect(event)
        logger.info("%s v%s %sd by %s", model, version, answer.decision, answer.approver)
        engine.dispose()
        return {"decision": answer.decision, "approver": answer.approver}
