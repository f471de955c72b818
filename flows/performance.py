"""Realised performance: triggered by riskops.labels.landed, measures the champion on its late
outcomes per vintage and band; a degradation emits riskops.performance.degraded."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from blocks import load_platform
from flows.common import deliver_events
from riskops.cost.hook import run_cost
from riskops.platform import Platform
from riskops.stages.performance import PerformanceResult, performance_stage


@task(name="measure-outcomes", persist_result=False, cache_policy=NO_CACHE)
def measure_task(platform: Platform, model: str) -> PerformanceResult:
    return performance_stage(platform=platform, model=model)


@flow(name="performance", persist_result=False)
def performance(model: str) -> dict[str, object]:
    """Measure the champion of ``model`` on every outcome landed for it."""
    logger = get_run_logger()
    with (
        load_platform(with_pseudonym_key=True) as platform,
        run_cost(platform, model=model) as cost,
    ):
        result = measure_task(platform, model)
        cost.rows = None if result.realised is None else result.realised.overall.n
        deliver_events(platform, [result.event_id])
    parts = [f"# Outcomes of {model} v{result.version}", "", *result.notes]
    if result.realised is not None:
        parts += ["", result.realised.to_markdown()]
    if result.estimate is not None:
        parts += ["", f"## Leading indicator (CBPE), vintage {result.estimated_vintage}", "",
                  result.estimate.to_markdown()]  # fmt: skip
    create_markdown_artifact(key=f"performance-{model}", markdown="\n".join(parts),
                             description=f"realised performance of {model}")  # fmt: skip
    verdict = "degraded" if result.realised and result.realised.degraded else "within tolerance"
    logger.info("%s v%s on its outcomes: %s", model, result.version, verdict)
    return result.to_dict()
