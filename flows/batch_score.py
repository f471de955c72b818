"""Batch scoring: triggered by `riskops.data.accepted` (and nightly), scores the accepted
dataset version with the champion on Spark; skipped while a model has no champion."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from blocks import load_platform
from riskops.cost.hook import run_cost
from riskops.governance.promotion import current_champion
from riskops.platform import Platform
from riskops.stages.batch_scoring import BatchScoringResult, batch_score_stage


@task(name="score-batch", persist_result=False, cache_policy=NO_CACHE)
def score_batch_task(
    platform: Platform, model: str, dataset_version: str | None, chunk_rows: int | None
) -> BatchScoringResult:
    logger = get_run_logger()
    artifact_id = create_progress_artifact(
        progress=0.0, key="batch-scoring-progress", description=f"batch scoring {model}"
    )

    def progress(share: float, message: str) -> None:
        logger.info("%3.0f%% %s", share * 100, message)
        update_progress_artifact(artifact_id=artifact_id, progress=min(100.0, share * 100))

    with tempfile.TemporaryDirectory(prefix="riskops-batch-model-") as cache:
        return batch_score_stage(
            platform=platform, model=model, dataset_version=dataset_version,
            chunk_rows=chunk_rows, cache_dir=Path(cache), progress=progress,
        )  # fmt: skip


@flow(name="batch-score", persist_result=False)
def batch_score(
    model: str, dataset_version: str | None = None, chunk_rows: int | None = None
) -> dict[str, object]:
    """Score an accepted dataset version (default: the newest) with the champion of ``model``.

    ``chunk_rows`` overrides the platform's rows per chunk (``RISKOPS_SCORING_BATCH_CHUNK_ROWS``).
    """
    logger = get_run_logger()
    with (
        load_platform(with_pseudonym_key=True) as platform,
        run_cost(platform, model=model) as cost,
    ):
        if current_champion(platform.mlflow, model) is None:
            logger.info("%s has no champion yet: nothing to score the batch with", model)
            return {"model": model, "skipped": "no champion"}
        result = score_batch_task(platform, model, dataset_version, chunk_rows)
        cost.rows = result.rows
    summary = result.to_dict()
    rows = "\n".join(f"| {k} | {v} |" for k, v in summary.items())
    create_markdown_artifact(
        key="batch-scoring", markdown=f"# Batch scoring of {model}\n\n| | |\n|---|---|\n{rows}\n",
        description=f"{model} v{result.version} on {result.dataset_version}",
    )  # fmt: skip
    logger.info("%s v%s scored %d rows of %s (%s) in %.1fs", model, result.version, result.rows,
                result.dataset_version, result.bands, result.seconds)  # fmt: skip
    return summary
