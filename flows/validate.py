"""Validation: triggered by `riskops.model.registered`; ends in validated or rejected."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from blocks import PLATFORM_BLOCK, RiskopsPlatform
from flows.cards import publish_card
from riskops.emit import emit_to_prefect
from riskops.stages.validation import ValidationStageResult, validate_stage


@task(name="run-gates", persist_result=False)
def run_gates_task(model: str, version: str) -> ValidationStageResult:
    platform = RiskopsPlatform.load(PLATFORM_BLOCK)
    engine = platform.get_engine()
    try:
        return validate_stage(
            lake=platform.get_lake(),
            engine=engine,
            client=platform.get_mlflow_client(),
            model=model,
            version=version,
        )
    finally:
        engine.dispose()


@flow(name="validate", persist_result=False)
def validate(model: str, version: str) -> dict[str, object]:
    """Run every gate of the spec on the stored holdout; all pass → `challenger` alias."""
    stage = run_gates_task(model, str(version))
    create_table_artifact(
        key=f"gates-{model}", table=stage.table, description=f"{model} v{version} gate results"
    )
    create_markdown_artifact(
        key=f"gate-report-{model}", markdown=stage.markdown, description=f"{model} v{version}"
    )
    if "spec" not in stage.failed:  # no card for a model nobody onboarded (nothing to describe)
        publish_card(RiskopsPlatform.load(PLATFORM_BLOCK), model, str(version))
    emit_to_prefect(stage.event)
    logger = get_run_logger()
    if stage.passed:
        logger.info("%s v%s passed every gate: challenger", model, version)
    else:
        logger.warning("%s v%s rejected: failed %s", model, version, ", ".join(stage.failed))
    return {"passed": stage.passed, "failed": stage.failed}
