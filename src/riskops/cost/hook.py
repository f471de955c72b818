"""The one line every flow adds: ``with run_cost(platform, model=...) as cost:``.

On the way out (completed or failed) the run's usage and estimated cost are recorded three
times: a row in the platform DB (``run_cost``, what `riskops cost report` sums), a Prefect
table artifact keyed ``cost-<flow>-<model>`` when inside a flow run, and metrics on the MLflow
run the flow named with :meth:`CostTally.mlflow_run` (training). A sink that fails is logged,
never raised: the cost of a run must not fail the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from riskops.cost.meter import ResourceMeter, Usage
from riskops.cost.prices import CostEstimate, estimate_cost
from riskops.cost.settings import CostSettings
from riskops.cost.table import MIB, RunCost, add_run_cost
from riskops.db import session_scope
from riskops.platform import Platform

log = logging.getLogger(__name__)
ALL_MODELS = "(all)"
METRIC_PREFIX = "riskops.cost."


@dataclass
class CostTally:
    """What the flow tells the meter: rows processed, the MLflow run, and what came of it."""

    stage: str
    model: str
    flow_run_id: str | None = None
    rows: int | None = None
    mlflow_run_id: str | None = None
    record: RunCost | None = field(default=None, repr=False)  # set once the block has ended
    table: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def mlflow_run(self, run_id: str | None) -> None:
        """Log the cost as metrics on this MLflow run as well."""
        self.mlflow_run_id = run_id


def version_run_id(platform: Platform, model: str, version: str | None) -> str | None:
    """The MLflow run behind a registered version, or None (no version, or not in MLflow)."""
    if version is None:
        return None
    try:
        return platform.mlflow.get_model_version(model, str(version)).run_id
    except Exception as error:  # an unknown version costs no metrics, never the run
        log.info("no MLflow run for %s v%s (%s): cost kept in the DB only", model, version, error)
        return None


def _flow_run() -> tuple[str | None, str | None]:
    """(flow name, flow run id) of the current Prefect flow run, or (None, None) outside one."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return None, None
    name = context.flow.name if context.flow is not None else context.flow_run.name
    return name, str(context.flow_run.id)


def artifact_key(stage: str, model: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) per flow and model."""
    return re.sub(r"[^a-z0-9]+", "-", f"cost-{stage}-{model}".lower()).strip("-")


def cost_table(record: RunCost, usage: Usage, estimate: CostEstimate) -> list[dict[str, Any]]:
    """The artifact's rows: one per measure, with its value and how it was measured."""
    rows = "not reported by the stage" if record.rows is None else record.rows
    return [
        {"measure": "CPU-seconds", "value": round(record.cpu_seconds, 3),
         "how": "user+sys: this process (getrusage self), waited-for children (getrusage "
                "children), live descendants such as the JVM (psutil)"},
        {"measure": "CPU-seconds, this process", "value": round(record.cpu_self_seconds, 3),
         "how": "getrusage(RUSAGE_SELF), every thread"},
        {"measure": "CPU-seconds, child processes", "value": round(record.cpu_children_seconds, 3),
         "how": f"getrusage(RUSAGE_CHILDREN) + {usage.live_descendants} live descendant(s)"},
        {"measure": "peak memory (MiB)", "value": round(record.peak_rss_mib, 1),
         "how": f"RSS of the process tree, sampled {usage.samples} times"},
        {"measure": "peak memory, this process (MiB)", "value": round(record.peak_rss_self_mib, 1),
         "how": "ru_maxrss (rose during the run)" if usage.peak_source == "kernel"
                else "RSS, sampled"},
        {"measure": "peak memory, this process, sampled (MiB)",
         "value": round(usage.sampled_peak_rss_self_bytes / MIB, 1),
         "how": f"RSS every {usage_interval(record)} s"},
        {"measure": "wall time (s)", "value": round(record.wall_seconds, 3),
         "how": "monotonic clock"},
        {"measure": "rows processed", "value": rows, "how": "reported by the stage"},
        {"measure": "vCPU-hours charged", "value": round(estimate.vcpu_hours, 6),
         "how": "max(CPU-seconds used, requested vCPUs x wall time)"},
        {"measure": "GiB-hours charged", "value": round(estimate.gib_hours, 6),
         "how": "max(peak memory, requested memory) x wall time"},
        {"measure": "GPU-hours charged", "value": round(estimate.gpu_hours, 6),
         "how": "GPUs x wall time"},
        {"measure": f"estimated cost ({estimate.currency})", "value": round(estimate.total, 6),
         "how": ("spot, " if record.spot else "on demand, ")
                + f"discount {estimate.discount:.0%}; prices in RISKOPS_COST_*"},
    ]  # fmt: skip


def usage_interval(record: RunCost) -> float:
    """The memory sampling interval the record was measured with."""
    return float(record.estimate.get("prices", {}).get("sample_seconds", 0.0))


def build_record(
    tally: CostTally, usage: Usage, prices: CostSettings, started_at: dt.datetime, status: str
) -> tuple[RunCost, CostEstimate]:
    """The DB row of a metered run and its estimate."""
    estimate = estimate_cost(usage, prices)
    record = RunCost(
        flow_run_id=tally.flow_run_id, stage=tally.stage, model=tally.model, status=status,
        started_at=started_at, wall_seconds=usage.wall_seconds, cpu_seconds=usage.cpu_seconds,
        cpu_self_seconds=usage.cpu_self_seconds, cpu_children_seconds=usage.cpu_children_seconds,
        peak_rss_mib=usage.peak_rss_bytes / MIB, peak_rss_self_mib=usage.peak_rss_self_bytes / MIB,
        peak_source=usage.peak_source, rows=tally.rows, cost=estimate.total,
        currency=estimate.currency, spot=prices.spot, gpus=prices.gpus,
        estimate={**estimate.to_dict(), "prices": prices.model_dump(mode="json"),
                  "samples": usage.samples, "live_descendants": usage.live_descendants},
    )  # fmt: skip
    return record, estimate


def mlflow_metrics(record: RunCost) -> dict[str, float]:
    """The metrics logged on the flow's MLflow run."""
    metrics = {
        "cpu_seconds": record.cpu_seconds,
        "cpu_self_seconds": record.cpu_self_seconds,
        "cpu_children_seconds": record.cpu_children_seconds,
        "peak_rss_mib": record.peak_rss_mib,
        "wall_seconds": record.wall_seconds,
        "estimated_cost": record.cost,
    }
    if record.rows is not None:
        metrics["rows"] = float(record.rows)
    return {f"{METRIC_PREFIX}{record.stage}.{k}": float(v) for k, v in metrics.items()}


def _logger(in_flow_run: bool) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The flow run's logger (shown in the Prefect UI) inside a run, this module's outside."""
    if in_flow_run:
        from prefect.logging import get_run_logger

        return get_run_logger()
    return log


def _publish(platform: Platform, tally: CostTally, in_flow_run: bool) -> None:
    record = tally.record
    assert record is not None
    log = _logger(in_flow_run)
    try:
        with session_scope(platform.engine) as session:
            add_run_cost(session=session, record=record)
    except Exception as error:
        log.warning("cost of %s/%s not recorded in the platform DB (%s); the artifact and "
                    "metrics below still carry it", record.model, record.stage, error)  # fmt: skip
    if in_flow_run:
        try:
            from prefect.artifacts import create_table_artifact

            create_table_artifact(
                key=artifact_key(record.stage, record.model), table=tally.table,
                description=f"cost of {record.stage} for {record.model}: {record.cost:.6f} "
                f"{record.currency}",
            )  # fmt: skip
        except Exception as error:
            log.warning("cost artifact of %s/%s not created: %s", record.model, record.stage,
                        error)  # fmt: skip
    if tally.mlflow_run_id:
        try:
            from mlflow.entities import Metric, RunTag

            now = int(time.time() * 1000)
            platform.mlflow.log_batch(
                tally.mlflow_run_id,
                metrics=[Metric(k, v, now, 0) for k, v in mlflow_metrics(record).items()],
                tags=[RunTag(f"{METRIC_PREFIX}currency", record.currency)],
            )
        except Exception as error:
            log.warning("cost metrics not logged on MLflow run %s: %s", tally.mlflow_run_id,
                        error)  # fmt: skip


@contextmanager
def run_cost(
    platform: Platform,
    *,
    model: str | None,
    stage: str | None = None,
    prices: CostSettings | None = None,
) -> Iterator[CostTally]:
    """Meter the block and record its cost on the way out, whether it completes or fails.

    Args:
        platform: where the row goes (its engine) and whose MLflow client logs the metrics.
        model: the model the run is for; None for a run over every model.
        stage: defaults to the current flow's name (the block is metered outside flows too).
        prices: the price table; default: ``CostSettings()`` from this process's environment.
    """
    prices = prices or CostSettings()
    flow_name, flow_run_id = _flow_run()
    tally = CostTally(
        stage=stage or flow_name or "adhoc", model=model or ALL_MODELS, flow_run_id=flow_run_id
    )
    started_at = dt.datetime.now(dt.UTC)
    meter = ResourceMeter(interval=prices.sample_seconds)
    status = "failed"
    try:
        with meter:
            yield tally
        status = "completed"
    finally:
        if meter.usage is not None:
            tally.record, estimate = build_record(tally, meter.usage, prices, started_at, status)
            tally.table = cost_table(tally.record, meter.usage, estimate)
            _publish(platform, tally, in_flow_run=flow_run_id is not None)
