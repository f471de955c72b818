"""Shared task: regenerate a version's model card, log it to MLflow, show it in Prefect."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from riskops.platform import Platform
from riskops.stages.cards import write_card


@task(name="publish-model-card", persist_result=False, cache_policy=NO_CACHE)
def publish_card(platform: Platform, model: str, version: str) -> str:
    """Write the card from the records, log it to the version's run, return its markdown."""
    with tempfile.TemporaryDirectory(prefix="riskops-card-") as tmp:
        files = write_card(
            engine=platform.engine, client=platform.mlflow, model=model, version=str(version),
            out_dir=Path(tmp),
        )  # fmt: skip
        markdown = files.markdown.read_text()
    create_markdown_artifact(
        key=f"model-card-{model}", markdown=markdown, description=f"{model} v{version} model card"
    )
    return markdown
