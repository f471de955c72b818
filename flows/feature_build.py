"""Feature build: triggered by `riskops.data.accepted`, ends in `riskops.features.built`."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from blocks import load_platform
from flows.common import deliver_events
from riskops.cost.hook import run_cost
from riskops.platform import Platform
from riskops.stages.featuresets import FeatureStageResult, build_feature_stage
from riskops.training.provenance import ProvenanceSettings


@task(name="build-feature-set", persist_result=False, cache_policy=NO_CACHE)
def build_feature_set_task(platform: Platform, dataset_version: str) -> FeatureStageResult:
    logger = get_run_logger()
    artifact_id = create_progress_artifact(
        progress=0.0, key="feature-build-progress", description=f"feature build {dataset_version}"
    )

    def progress(share: float, message: str) -> None:
        logger.info("%3.0f%% %s", share * 100, message)
        update_progress_artifact(artifact_id=artifact_id, progress=min(100.0, share * 100))

    return build_feature_stage(
        lake=platform.lake, engine=platform.engine, dataset_version_id=dataset_version,
        spark=platform.spark, pseudonym_key=platform.require_pseudonym_key(),
        code_version=ProvenanceSettings().code_version(Path(__file__)), progress=progress,
    )  # fmt: skip


@flow(name="feature-build", persist_result=False)
def feature_build(model: str, dataset_version: str) -> dict[str, object]:
    """Build the versioned feature set of an accepted dataset version with Spark."""
    with (
        load_platform(with_pseudonym_key=True) as platform,
        run_cost(platform, model=model) as cost,
    ):
        stage = build_feature_set_task(platform, dataset_version)
        cost.rows = stage.record.row_count
        deliver_events(platform, [stage.outbox_id])
    get_run_logger().info(
        "%s: feature set %s (%d rows) %s", model, stage.record.version, stage.record.row_count,
        "built" if stage.outbox_id else "already existed (not announced again)",
    )  # fmt: skip
    return {"featureset": stage.record.id, "uri": stage.record.uri, "rows": stage.record.row_count}
