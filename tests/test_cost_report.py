"""Prices, per-run rows, `riskops cost report`; Spark sizing and batch chunks from settings."""

from __future__ import annotations

import ast
import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from blocks.platform import RiskopsPlatform
from riskops.cli.main import app
from riskops.cost.hook import (
    CostTally,
    artifact_key,
    build_record,
    cost_table,
    mlflow_metrics,
    run_cost,
)
from riskops.cost.meter import Usage
from riskops.cost.prices import GIB, estimate_cost
from riskops.cost.report import CostReportError, cost_report, summarise
from riskops.cost.settings import CostSettings
from riskops.cost.table import RunCost, add_run_cost, run_costs
from riskops.db import make_engine, session_scope
from riskops.features.session import LOCAL_SHUFFLE_PARTITIONS, session_conf
from riskops.lake import LocalLake
from riskops.platform import Platform
from riskops.settings import SparkSettings, load_settings
from tests.conftest import ROOT
from tests.governance_helpers import principal

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
PRICES = CostSettings(vcpu_hour=0.04, gib_hour=0.005, gpu_hour=2.5, spot_discount=0.6)


def usage(*, cpu: float = 7200.0, wall: float = 3600.0, peak_gib: float = 2.0) -> Usage:
    peak = int(peak_gib * GIB)
    return Usage(
        wall_seconds=wall, cpu_self_seconds=cpu * 0.75, cpu_children_seconds=cpu * 0.25,
        peak_rss_bytes=peak, peak_rss_self_bytes=peak // 2, sampled_peak_rss_self_bytes=peak // 2,
        peak_source="sampled", samples=10, live_descendants=1,
    )  # fmt: skip


# --- prices ------------------------------------------------------------------------------------


def test_on_demand_cost_is_cpu_hours_plus_memory_hours():
    estimate = estimate_cost(usage(), PRICES)  # 2 vCPU-hours, 2 GiB for an hour
    assert estimate.vcpu_hours == pytest.approx(2.0)
    assert estimate.gib_hours == pytest.approx(2.0)
    assert estimate.gpu_hours == 0.0 and estimate.discount == 0.0
    assert estimate.total == pytest.approx(2 * 0.04 + 2 * 0.005)
    assert estimate.currency == "EUR"


def test_spot_takes_the_discount_off_every_price():
    spot = PRICES.model_copy(update={"spot": True, "gpus": 1})
    estimate = estimate_cost(usage(wall=1800.0, cpu=1800.0), spot)  # half an hour, 1 vCPU
    on_demand = 0.5 * 0.04 + 2.0 * 0.5 * 0.005 + 0.5 * 2.5
    assert estimate.on_demand == pytest.approx(on_demand)
    assert estimate.total == pytest.approx(on_demand * 0.4)


def test_requests_larger_than_the_usage_are_what_is_charged():
    reserved = PRICES.model_copy(update={"requested_vcpus": 4, "requested_memory_gib": 8})
    estimate = estimate_cost(usage(), reserved)
    assert estimate.vcpu_hours == pytest.approx(4.0)  # 4 reserved for an hour > 2 used
    assert estimate.gib_hours == pytest.approx(8.0)
    small = PRICES.model_copy(update={"requested_vcpus": 1, "requested_memory_gib": 1})
    assert estimate_cost(usage(), small).vcpu_hours == pytest.approx(2.0)  # usage wins


def test_prices_come_from_the_environment_and_bad_ones_are_refused(monkeypatch):
    monkeypatch.setenv("RISKOPS_COST_VCPU_HOUR", "0.1")
    monkeypatch.setenv("RISKOPS_COST_SPOT", "true")
    monkeypatch.setenv("RISKOPS_COST_CURRENCY", "USD")
    prices = load_settings().cost
    assert (prices.vcpu_hour, prices.spot, prices.currency) == (0.1, True, "USD")
    with pytest.raises(ValueError, match="spot_discount"):
        CostSettings(spot_discount=1.0)


# --- the row, the artifact, the metrics --------------------------------------------------------


def test_record_table_and_metrics_carry_the_same_figures():
    t = CostTally(stage="train", model="credit-scoring", rows=12_000, mlflow_run_id="r")
    record, estimate = build_record(t, usage(), PRICES, T0, "completed")
    assert record.cpu_seconds == 7200.0 and record.peak_rss_mib == 2048.0
    assert record.cost == pytest.approx(estimate.total) and record.rows == 12_000
    assert record.estimate["prices"]["vcpu_hour"] == 0.04
    table = {row["measure"]: row["value"] for row in cost_table(record, usage(), estimate)}
    assert table["CPU-seconds"] == 7200.0 and table["peak memory (MiB)"] == 2048.0
    assert table["rows processed"] == 12_000
    assert table["estimated cost (EUR)"] == pytest.approx(0.09)
    metrics = mlflow_metrics(record)
    assert metrics["riskops.cost.train.cpu_seconds"] == 7200.0
    assert metrics["riskops.cost.train.rows"] == 12_000.0
    assert artifact_key("train", "credit-scoring") == "cost-train-credit-scoring"
    assert artifact_key("monitor", "(all)") == "cost-monitor-all"


def test_the_hook_records_a_failed_block_and_lets_the_error_through(tmp_path):
    platform = Platform(
        engine=make_engine(f"sqlite:///{tmp_path / 'riskops.db'}"),
        lake=LocalLake(tmp_path / "lake"),
        mlflow_tracking_uri=None,
    )
    with (
        platform,
        pytest.raises(RuntimeError, match="boom"),
        run_cost(platform, model="fraud-detection", stage="batch-score") as cost,
    ):
        cost.rows = 5
        raise RuntimeError("boom")
    assert cost.record is not None and cost.record.id is not None
    with session_scope(platform.engine) as session:
        (row,) = run_costs(session=session)
    assert (row.stage, row.model, row.status, row.rows) == ("batch-score", "fraud-detection",
                                                            "failed", 5)  # fmt: skip
    assert row.flow_run_id is None  # not inside a flow run: no artifact either
    assert row.wall_seconds > 0 and row.peak_rss_mib > 0


def test_a_sink_that_fails_is_logged_and_never_fails_the_run(tmp_path, caplog):
    platform = Platform(
        engine=make_engine(f"sqlite:///{tmp_path / 'riskops.db'}"),
        lake=LocalLake(tmp_path / "lake"),
        mlflow_tracking_uri=None,  # no MLflow: the metrics sink must fail
    )
    with platform, run_cost(platform, model="credit-scoring", stage="train") as cost:
        cost.mlflow_run("0123abcd")
    assert "cost metrics not logged on MLflow run 0123abcd" in caplog.text
    assert "no MLflow tracking URI" in caplog.text
    with session_scope(platform.engine) as session:
        assert [r.status for r in run_costs(session=session)] == ["completed"]


# --- the report --------------------------------------------------------------------------------


def _row(
    model: str, stage: str, *, day: int, cpu: float, rows: int | None, cost: float,
    peak: float = 100.0, currency: str = "EUR", status: str = "completed",
) -> RunCost:  # fmt: skip
    return RunCost(
        stage=stage, model=model, status=status, started_at=T0 + dt.timedelta(days=day),
        wall_seconds=cpu * 2, cpu_seconds=cpu, cpu_self_seconds=cpu, cpu_children_seconds=0.0,
        peak_rss_mib=peak, peak_rss_self_mib=peak, peak_source="sampled", rows=rows, cost=cost,
        currency=currency, estimate={},
    )  # fmt: skip


@pytest.fixture
def runs(engine):
    with session_scope(engine) as session:
        for row in [
            _row("credit-scoring", "train", day=0, cpu=10.0, rows=1000, cost=0.5, peak=900.0),
            _row("credit-scoring", "train", day=5, cpu=30.0, rows=3000, cost=1.5, peak=700.0),
            _row("credit-scoring", "feature-build", day=5, cpu=60.0, rows=3000, cost=2.0),
            _row("fraud-detection", "batch-score", day=6, cpu=5.0, rows=None, cost=0.25,
                 status="failed"),
        ]:  # fmt: skip
            add_run_cost(session=session, record=row)
    return engine


def test_the_report_sums_by_model_and_stage(runs):
    lines = {(line.model, line.stage): line for line in cost_report(runs)}
    assert list(lines) == [("credit-scoring", "feature-build"), ("credit-scoring", "train"),
                           ("fraud-detection", "batch-score")]  # fmt: skip
    train = lines["credit-scoring", "train"]
    assert (train.runs, train.cpu_seconds, train.wall_seconds, train.rows) == (2, 40.0, 80.0, 4000)
    assert train.cost == pytest.approx(2.0) and train.max_peak_rss_mib == 900.0
    batch = lines["fraud-detection", "batch-score"]
    assert (batch.failed, batch.rows, batch.runs_without_rows) == (1, 0, 1)


def test_the_report_since_a_date_leaves_older_runs_out(runs):
    lines = cost_report(runs, since=T0 + dt.timedelta(days=1))
    train = next(line for line in lines if line.stage == "train")
    assert (train.runs, train.cpu_seconds, train.rows) == (1, 30.0, 3000)
    assert cost_report(runs, since=T0 + dt.timedelta(days=30)) == []


def test_runs_priced_in_two_currencies_are_not_summed():
    rows = [_row("m", "train", day=0, cpu=1, rows=1, cost=1),
            _row("m", "train", day=1, cpu=1, rows=1, cost=1, currency="USD")]  # fmt: skip
    with pytest.raises(CostReportError, match="m/train are priced in EUR, USD"):
        summarise(rows)


def test_cli_cost_report_for_a_reader_and_refused_to_the_scoring_service(settings, runs):
    auditor = principal(runs, "audit@bank", "auditor")
    service = principal(runs, "scorer", "service")
    ok = CliRunner().invoke(app, ["cost", "report", "--since", "2026-11-03", "--json"],
                            env={"RISKOPS_API_KEY": auditor})  # fmt: skip
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.output)
    assert body["since"] == "2026-11-03T00:00:00+00:00"
    assert [(x["stage"], x["runs"], x["cpu_seconds"]) for x in body["lines"]] == [
        ("feature-build", 1, 60.0), ("train", 1, 30.0), ("batch-score", 1, 5.0)
    ]  # fmt: skip
    table = CliRunner().invoke(app, ["cost", "report"], env={"RISKOPS_API_KEY": auditor})
    assert table.exit_code == 0 and "credit-scoring" in table.output and "4,000" in table.output
    refused = CliRunner().invoke(app, ["cost", "report"], env={"RISKOPS_API_KEY": service})
    assert refused.exit_code == 3 and "may not cost.read" in refused.output
    bad = CliRunner().invoke(app, ["cost", "report", "--since", "last week"],
                             env={"RISKOPS_API_KEY": auditor})  # fmt: skip
    assert bad.exit_code == 2 and "is not a date" in bad.output


# --- Spark sizing and batch chunks from settings ----------------------------------------------


def test_spark_defaults_are_todays_configuration():
    options = SparkSettings().session_options()
    conf = session_conf(**options)
    assert conf["spark.driver.memory"] == "4g"
    assert conf["spark.sql.shuffle.partitions"] == str(LOCAL_SHUFFLE_PARTITIONS)
    assert not {k for k in conf if k.startswith("spark.executor.") or k == "spark.driver.cores"}
    cluster = session_conf(**SparkSettings(master="spark://cluster:7077").session_options())
    assert "spark.sql.shuffle.partitions" not in cluster  # Spark's own 200


def test_spark_executor_sizing_comes_from_the_environment(monkeypatch):
    for key, value in {"MASTER": "k8s://https://api:6443", "EXECUTOR_MEMORY": "8g",
                       "EXECUTOR_CORES": "4", "EXECUTOR_INSTANCES": "6", "DRIVER_CORES": "2",
                       "SHUFFLE_PARTITIONS": "96"}.items():  # fmt: skip
        monkeypatch.setenv(f"RISKOPS_SPARK_{key}", value)
    conf = session_conf(**load_settings().spark.session_options())
    assert {k: conf[k] for k in ("spark.executor.memory", "spark.executor.cores",
            "spark.executor.instances", "spark.driver.cores", "spark.sql.shuffle.partitions")} == {
        "spark.executor.memory": "8g", "spark.executor.cores": "4",
        "spark.executor.instances": "6", "spark.driver.cores": "2",
        "spark.sql.shuffle.partitions": "96",
    }  # fmt: skip


def test_the_platform_block_carries_spark_sizing_and_batch_chunks_to_flow_runs(
    settings, monkeypatch
):
    monkeypatch.setenv("RISKOPS_SCORING_BATCH_CHUNK_ROWS", "2000")
    assert Platform.from_settings(load_settings(), with_secrets=False).batch_chunk_rows == 2000
    block = RiskopsPlatform(
        database_url=settings.database_url, lake_root=str(settings.lake_root),
        spark_executor_memory="8g", spark_executor_cores=4, spark_shuffle_partitions=64,
        batch_chunk_rows=2000,
    )  # fmt: skip
    with block.platform() as platform:
        assert platform.spark.executor_memory == "8g" and platform.spark.executor_cores == 4
        assert platform.spark.shuffle_partitions == 64 and platform.batch_chunk_rows == 2000
    with RiskopsPlatform(database_url=settings.database_url,
                         lake_root=str(settings.lake_root)).platform() as default:  # fmt: skip
        assert default.batch_chunk_rows == 50_000 and default.spark == SparkSettings()


# --- every flow is metered ---------------------------------------------------------------------


def _flows_without_the_hook(source: str) -> list[str]:
    """Names of @flow functions in ``source`` that never call run_cost."""
    missing = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
        if not any(isinstance(d, ast.Name) and d.id == "flow" for d in decorators):
            continue
        calls = {
            n.func.id for n in ast.walk(node)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }  # fmt: skip
        if "run_cost" not in calls:
            missing.append(node.name)
    return missing


def test_every_flow_is_metered():
    sources = {p.name: p.read_text() for p in sorted((ROOT / "flows").glob("*.py"))}
    flows = sum(s.count("@flow(") for s in sources.values())
    assert flows >= 11  # contract, features, train, validate, sign-off, promote, reconcile, ...
    assert {name: _flows_without_the_hook(s) for name, s in sources.items()} == {
        name: [] for name in sources
    }
    bare = 'from prefect import flow\n\n@flow(name="x")\ndef x() -> None:\n    pass\n'
    assert _flows_without_the_hook(bare) == ["x"]  # the check sees a flow without the hook
