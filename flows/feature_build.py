"""Feature build: triggered by `riskops.data.accepted`, ends in `riskops.features.built`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from blocks import PLATFORM_BLOCK, RiskopsPlatform
from riskops.emit import emit_to_prefect
from riskops.stages.featuresets import FeatureStageResult, build_feature_stage
from riskops.training.lineage import git_commit


@task(name="build-feature-set", persist_result=False)
def build_feature_set_task(dataset_version: str) -> FeatureStageResult:
    logger = get_run_logger()
    platform = RiskopsPlatform.load(PLATFORM_BLOCK)
    artifact_id = create_progress_artifact(
        progress=0.0, key="feature-build-progress", description=f"feature build {dataset_version}"
    )

    def progress(share: float, message: str) -> None:
        logger.info("%3.0f%% %s", share * 100, message)
        update_progress_artifact(artifact_id=artifact_id, progress=min(100.0, share * 100))

    engine = platform.get_engine()
    try:
        return build_feature_stage(
            lake=platform.get_lake(),
            engine=engine,
            dataset_version_id=dataset_version,
            spark=platform.get_spark_settings(),
            pseudonym_key=platform.get_pseudonym_key(),
            code_version=git_commit(Path.cwd()),
            progress=progress,
        )
    finally:
        engine.dispose()


@flow(name="feature-build", persist_result=False)
def feature_build(model: str, dataset_version: str) -> dict[str, object]:
    """Build the versioned feature set of an accepted dataset version with Spark."""
    stage = build_feature_set_task(dataset_version)
    emit_to_prefect(stage.event)
    get_run_logger().info(
        "%s: feature set %s (%d rows) %s",
        model,
        stage.record.version,
        stage.record.row_count,
        "built" if stage.rebuilt else "already existed",
    )
    return {"featureset": stage.record.id, "uri": stage.record.uri, "rows": stage.record.row_count}
