"""Training: triggered by `riskops.features.built`, ends in `riskops.model.registered`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from blocks import PLATFORM_BLOCK, RiskopsPlatform
from riskops.emit import emit_to_prefect
from riskops.reports import training_markdown
from riskops.stages.training import TrainingStageResult, train_stage
from riskops.training.lineage import git_commit

PIPELINE_TRAINER = "riskops-pipeline"


@task(name="train-and-register", persist_result=False)
def train_task(featureset_id: str, seed: int) -> TrainingStageResult:
    logger = get_run_logger()
    platform = RiskopsPlatform.load(PLATFORM_BLOCK)
    engine = platform.get_engine()
    try:
        return train_stage(
            lake=platform.get_lake(),
            engine=engine,
            client=platform.get_mlflow_client(),
            feature_set_id=featureset_id,
            trainer=PIPELINE_TRAINER,
            code_version=git_commit(Path.cwd()),
            seed=seed,
            progress=logger.info,
        )
    finally:
        engine.dispose()


@flow(name="train", persist_result=False)
def train(model: str, featureset_id: str, seed: int = 42) -> dict[str, object]:
    """Train LightGBM (and, for credit, the binned logistic benchmark) and register it."""
    stage = train_task(featureset_id, seed)
    create_markdown_artifact(
        key=f"training-{model}",
        markdown=training_markdown(stage.result),
        description=f"{model} version {stage.record.version}",
    )
    emit_to_prefect(stage.event)
    get_run_logger().info("%s: registered version %s", model, stage.record.version)
    return {"model": model, "version": stage.record.version, "run_id": stage.record.run_id}
