"""The monitor: hourly, and after every accepted batch, compares each champion's newest window
of decisions with its baselines; a crossed band emits riskops.drift.detected."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from blocks import load_platform
from flows.common import deliver_events
from riskops.cost.hook import run_cost
from riskops.platform import Platform
from riskops.stages.monitor import (
    MonitorError,
    MonitorResult,
    monitor_stage,
    monitored_models,
    write_report,
)


@task(name="compare-window", persist_result=False, cache_policy=NO_CACHE)
def compare_task(platform: Platform, model: str) -> MonitorResult:
    return monitor_stage(platform=platform, model=model)


@flow(name="monitor", persist_result=False)
def monitor(model: str | None = None) -> dict[str, object]:
    """Monitor ``model`` (default: every onboarded model with a champion)."""
    logger = get_run_logger()
    out: dict[str, object] = {}
    with (
        load_platform(with_pseudonym_key=True) as platform,
        run_cost(platform, model=model) as cost,
    ):
        cost.rows = 0
        for name in [model] if model else monitored_models(platform):
            try:
                result = compare_task(platform, name)
            except MonitorError as error:
                logger.info("%s: %s", name, error)
                out[name] = {"skipped": str(error)}
                continue
            deliver_events(platform, list(result.events.values()))
            cost.rows = (cost.rows or 0) + result.rows
            summary = result.summary()
            out[name] = summary
            if result.skipped:
                logger.info("%s: %s", name, result.skipped)
                continue
            report = write_report(platform, result)
            create_table_artifact(key=f"drift-{name}", table=report.rows,
                                  description=f"drift of {name} v{result.version}")  # fmt: skip
            create_markdown_artifact(key=f"drift-report-{name}", markdown=report.markdown,
                                     description=f"HTML report: {report.html_uri}")  # fmt: skip
            logger.info("%s v%s: %s (report %s)", name, result.version,
                        {k: v["worst_band"] for k, v in summary["kinds"].items()},
                        report.html_uri)  # fmt: skip
    return out
