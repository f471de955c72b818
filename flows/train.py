"""Training: triggered by `riskops.features.built`, ends in `riskops.model.registered`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from blocks import load_platform
from flows.common import deliver_events
from riskops import catalog
from riskops.cost.hook import run_cost
from riskops.db import session_scope
from riskops.platform import Platform
from riskops.reports import training_markdown
from riskops.stages.training import TrainingStageResult, train_stage
from riskops.training.provenance import ProvenanceSettings

PIPELINE_TRAINER = "riskops-pipeline"


@task(name="train-and-register", persist_result=False, cache_policy=NO_CACHE)
def train_task(platform: Platform, featureset_id: str, seed: int) -> TrainingStageResult:
    provenance = ProvenanceSettings()
    return train_stage(
        lake=platform.lake, engine=platform.engine, client=platform.mlflow,
        feature_set_id=featureset_id, trainer=PIPELINE_TRAINER,
        code_version=provenance.code_version(Path(__file__)), image_digest=provenance.image(),
        seed=seed, progress=get_run_logger().info,
    )  # fmt: skip


@flow(name="train", persist_result=False)
def train(model: str, featureset_id: str, seed: int = 42) -> dict[str, object]:
    """Train LightGBM (and, for credit, the binned logistic benchmark) and register it.

    Idempotent: a feature set (one per dataset version and code version) trains one version;
    a redelivered `riskops.features.built` finds it and trains nothing.
    """
    logger = get_run_logger()
    with load_platform() as platform, run_cost(platform, model=model) as cost:
        with session_scope(platform.engine) as session:
            existing = catalog.version_for_feature_set(
                session=session, feature_set_id=featureset_id
            )
        if existing is not None:
            logger.info("%s: feature set %s was already trained as v%s; nothing to do", model,
                        featureset_id, existing.version)  # fmt: skip
            return {"model": model, "version": existing.version, "run_id": existing.run_id,
                    "already_trained": True}  # fmt: skip
        stage = train_task(platform, featureset_id, seed)
        cost.rows = stage.result["train_rows"] + stage.result["holdout_rows"]
        cost.mlflow_run(stage.record.run_id)
        deliver_events(platform, [stage.outbox_id])
    create_markdown_artifact(
        key=f"training-{model}",
        markdown=training_markdown(stage.result),
        description=f"{model} version {stage.record.version}",
    )
    logger.info("%s: registered version %s", model, stage.record.version)
    return {"model": model, "version": stage.record.version, "run_id": stage.record.run_id}
