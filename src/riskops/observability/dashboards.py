"""Grafana dashboards as code (Grafana's foundation SDK): scoring, SLO burn, drift and records.

``python -m riskops.observability.dashboards`` writes the JSON under
``infra/grafana/dashboards/`` (checked in; a test fails when it differs from what this module
builds, and another when a panel queries a metric nobody exports). Every dashboard has a
Prometheus data-source variable and a ``model`` variable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, stat, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

from riskops.observability.generated import write_or_check
from riskops.observability.promql import BUILTIN, exported_names, metric_names, recorded_names
from riskops.observability.windows import BURN_WINDOWS

DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
MODEL = 'model=~"$model"'
RATE = "$__rate_interval"
OUT = Path("infra/grafana/dashboards")


def _query(expr: str, legend: str, ref: str = "A") -> prom.Dataquery:
    return prom.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)


def _targets(panel: Any, queries: list[tuple[str, str]]) -> Any:
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(_query(expr, legend, chr(ord("A") + i)))
    return panel


def _series(title: str, unit: str, queries: list[tuple[str, str]], *, span: int = 12,
            stacked: bool = False, description: str = "") -> timeseries.Panel:  # fmt: skip
    panel = timeseries.Panel().title(title).unit(unit).span(span).height(8).datasource(DS)
    if description:
        panel = panel.description(description)
    if stacked:
        from grafana_foundation_sdk.builders.common import StackingConfig
        from grafana_foundation_sdk.models.common import StackingMode

        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(60)
    return _targets(panel, queries)


def _variables(dashboard: db.Dashboard, model_metric: str) -> db.Dashboard:
    source = db.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
    model = (
        db.QueryVariable("model").label("Model").datasource(DS)
        .query(f"label_values({model_metric}, model)")
        .multi(True).include_all(True).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )  # fmt: skip
    return dashboard.with_variable(source).with_variable(model)


def _dashboard(uid: str, title: str, description: str, model_metric: str) -> db.Dashboard:
    board = (
        db.Dashboard(title).uid(uid).description(description).tags(["riskops"])
        .time("now-6h", "now").refresh("30s").timezone("utc").editable()
    )  # fmt: skip
    return _variables(board, model_metric)


def scoring_dashboard() -> db.Dashboard:
    """Throughput, latency, decision bands, score distribution and the service's health."""
    latency = "riskops_scoring_request_duration_seconds_bucket"
    board = _dashboard("riskops-scoring", "riskops · scoring service",
                       "Per model: traffic, latency, decisions and scores of the scoring service.",
                       "riskops_scoring_requests_total")  # fmt: skip
    board = board.with_row(db.Row("Throughput")).with_panel(_series(
        "Requests by status code", "reqps",
        [(f"sum by (model, code) (rate(riskops_scoring_requests_total{{{MODEL}}}[{RATE}]))",
          "{{model}} {{code}}")], span=12,
    )).with_panel(_series(
        "Records scored by role", "rps",
        [(f"sum by (model, version, role) (rate(riskops_scoring_records_total{{{MODEL}}}[{RATE}]))",
          "{{model}} v{{version}} {{role}}")], span=12,
    ))  # fmt: skip
    quantiles = [
        (f"histogram_quantile({q}, sum by (le, model, endpoint) "
         f"(rate({latency}{{{MODEL}}}[{RATE}])))",
         f"p{int(q * 100)} {{{{model}}}} {{{{endpoint}}}}")
        for q in (0.5, 0.95, 0.99)
    ]  # fmt: skip
    board = board.with_row(db.Row("Latency")).with_panel(_series(
        "Latency quantiles per endpoint", "s", quantiles, span=12,
        description="Request received to response ready, inside the service.",
    )).with_panel(
        heatmap.Panel().title("Latency distribution").span(12).height(8).datasource(DS)
        .calculate(False)
        .with_target(_query(f"sum by (le) (increase({latency}{{{MODEL}}}[{RATE}]))", "{{le}}")
                     .format(_heatmap_format()))
    )  # fmt: skip
    board = board.with_row(db.Row("Decisions and scores")).with_panel(_series(
        "Decision bands (share of decisions)", "percentunit",
        [(f"sum by (model, band) (rate(riskops_scoring_decisions_total{{{MODEL}}}[{RATE}]))"
          f" / ignoring (band) group_left sum by (model) "
          f"(rate(riskops_scoring_decisions_total{{{MODEL}}}[{RATE}]))", "{{model}} {{band}}")],
        span=12, stacked=True,
    )).with_panel(
        heatmap.Panel().title("Score distribution (champion)").span(12).height(8).datasource(DS)
        .calculate(False)
        .with_target(_query(f"sum by (le) (increase(riskops_scoring_score_bucket{{{MODEL}}}"
                            f"[{RATE}]))", "{{le}}").format(_heatmap_format()))
    )  # fmt: skip
    board = board.with_row(db.Row("Health")).with_panel(_series(
        "5xx and refused input", "reqps",
        [(f"sum by (model, endpoint) (rate(riskops_scoring_errors_total{{{MODEL}}}[{RATE}]))",
          "5xx {{model}} {{endpoint}}"),
         (f"sum by (model, field) (rate(riskops_scoring_validation_failures_total{{{MODEL}}}"
          f"[{RATE}]))", "refused {{model}} {{field}}"),
         (f"sum by (model, feature) (rate(riskops_scoring_unseen_categories_total{{{MODEL}}}"
          f"[{RATE}]))", "unseen {{model}} {{feature}}")], span=8,
    )).with_panel(_series(
        "Decision log", "short",
        [("sum(riskops_decision_log_queue_depth)", "queue depth"),
         (f"sum by (model) (increase(riskops_decision_log_dropped_total{{{MODEL}}}[{RATE}]))",
          "dropped {{model}}")], span=8,
    )).with_panel(
        stat.Panel().title("Champion served").span(8).height(8).datasource(DS)
        .with_target(_query(f'riskops_model_current_version{{{MODEL},role="champion"}}',
                            "{{model}} v"))
        .with_target(_query(f"riskops_model_ready{{{MODEL}}}", "{{model}} ready", "B"))
    )  # fmt: skip
    return board


def _heatmap_format() -> Any:
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

    return PromQueryFormat.HEATMAP


def slo_dashboard() -> db.Dashboard:
    """Burn rates of each model's error and latency budgets over the alert windows."""
    board = _dashboard("riskops-slo", "riskops · SLO burn",
                       "Burn rate = bad share / budget (1 - objective); the alert rules page "
                       "at 14.4x (1h and 5m) or 6x (6h and 30m) and ticket at 3x or 1x.",
                       "riskops:slo_errors:budget")  # fmt: skip
    windows = sorted({w.long for w in BURN_WINDOWS} | {w.short for w in BURN_WINDOWS},
                     key=lambda w: ("mhd".index(w[-1]), int(w[:-1])))  # fmt: skip
    for slo, ratio, budget in (
        ("errors", "riskops:scoring_errors:ratio_rate", "riskops:slo_errors:budget"),
        ("latency", "riskops:scoring_latency_bad:ratio_rate", "riskops:slo_latency:budget"),
    ):
        queries = [(f"{ratio}{w}{{{MODEL}}} / on (model) {budget}{{{MODEL}}}", f"{{{{model}}}} {w}")
                   for w in windows]  # fmt: skip
        board = board.with_row(db.Row(f"{slo.capitalize()} budget")).with_panel(_series(
            f"{slo.capitalize()} budget burn rate", "x", queries, span=16,
        )).with_panel(
            bargauge.Panel().title(f"{slo.capitalize()}: bad share over 1h").span(8).height(8)
            .datasource(DS).unit("percentunit")
            .with_target(_query(f"{ratio}1h{{{MODEL}}}", "{{model}}"))
        )  # fmt: skip
    board = board.with_row(db.Row("Alerts")).with_panel(
        stat.Panel().title("Firing SLO alerts").span(24).height(6).datasource(DS)
        .with_target(_query('count by (model, slo, severity) (ALERTS{alertstate="firing",'
                            f'alertname=~"RiskopsLatencyBudgetBurn|RiskopsErrorBudgetBurn",{MODEL}}})',
                            "{{model}} {{slo}} {{severity}}"))
    )  # fmt: skip
    return board


def drift_dashboard() -> db.Dashboard:
    """The monitoring loop's drift per feature, champion agreement and labels, from the exporter."""
    board = _dashboard("riskops-drift", "riskops · drift and records",
                       "The platform exporter (governance API /metrics): the newest drift "
                       "comparison per model and kind, champion alias vs records, labels.",
                       "riskops_drift_worst_band")  # fmt: skip
    board = board.with_row(db.Row("Drift per feature")).with_panel(
        bargauge.Panel().title("PSI per feature (newest comparison)").span(16).height(10)
        .datasource(DS).min(0)
        .with_target(_query(f"riskops_drift_psi{{{MODEL}}}", "{{model}} {{kind}} {{feature}}"))
    ).with_panel(_series(
        "Worst band per kind (0 stable, 1 watch, 2 alert)", "short",
        [(f"riskops_drift_worst_band{{{MODEL}}}", "{{model}} {{kind}}")], span=8,
    )).with_panel(_series(
        "Band per feature over time", "short",
        [(f"riskops_drift_band{{{MODEL}}}", "{{model}} {{kind}} {{feature}}")], span=12,
    )).with_panel(_series(
        "Age of the newest comparison", "s",
        [(f"time() - riskops_drift_compared_timestamp_seconds{{{MODEL}}}", "{{model}} {{kind}}")],
        span=12,
    ))  # fmt: skip
    board = board.with_row(db.Row("Champion and labels")).with_panel(
        stat.Panel().title("Champion: registry vs records").span(8).height(6).datasource(DS)
        .with_target(_query(f"riskops_champion_registry_version{{{MODEL}}}", "{{model}} MLflow"))
        .with_target(_query(f"riskops_champion_recorded_version{{{MODEL}}}", "{{model}} records",
                            "B"))
        .with_target(_query(f"riskops_champion_mismatch{{{MODEL}}}", "{{model}} mismatch", "C"))
    ).with_panel(_series(
        "Days since labels landed vs outcome window", "d",
        [(f"riskops_labels_seconds_since_landed{{{MODEL}}} / 86400", "{{model}} since"),
         (f"riskops_labels_outcome_window_seconds{{{MODEL}}} / 86400", "{{model}} window")],
        span=10,
    )).with_panel(
        stat.Panel().title("Exporter sources up").span(6).height(6).datasource(DS)
        .with_target(_query("riskops_platform_exporter_source_up", "{{source}}"))
    )  # fmt: skip
    return board


DASHBOARDS: dict[str, Callable[[], db.Dashboard]] = {
    "riskops-scoring.json": scoring_dashboard,
    "riskops-slo.json": slo_dashboard,
    "riskops-drift.json": drift_dashboard,
}


def render(board: db.Dashboard) -> str:
    """The dashboard's JSON as Grafana imports it (sorted keys, stable for diffs)."""
    return json.dumps(board.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def dashboard_files() -> dict[str, str]:
    """File name -> JSON of every dashboard."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def panel_queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target of a dashboard's JSON."""
    out = []
    for panel in document.get("panels", []):
        for nested in [panel, *panel.get("panels", [])]:
            for target in nested.get("targets", []) or []:
                if target.get("expr"):
                    out.append((nested.get("title", "?"), target["expr"]))
    return out


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the dashboard JSON files."""
    parser = argparse.ArgumentParser(description="Generate riskops' Grafana dashboards.")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--check", action="store_true", help="fail if the files differ")
    args = parser.parse_args(argv)
    stale = write_or_check(dashboard_files(), args.out, check=args.check)
    if stale:
        print(f"out of date: {', '.join(stale)}; run `python -m riskops.observability.dashboards`",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def known_metrics(rule_files: list[dict[str, Any]]) -> set[str]:
    """Every name a panel may query: the service's, the platform exporter's, the rules' records."""
    from riskops.observability.exporter import METRICS
    from riskops.serving.metrics import ServiceMetrics

    service = exported_names(ServiceMetrics().registry)
    return service | set(METRICS) | recorded_names(rule_files) | BUILTIN


def unknown_metrics(document: dict[str, Any], known: set[str]) -> list[str]:
    """``panel: metric`` per metric a panel (or the model variable) reads that none exports."""
    found = []
    for title, expr in panel_queries(document):
        found += [f"{title}: {name}" for name in sorted(metric_names(expr) - known)]
    for variable in document.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            inner = query.removeprefix("label_values(").split(",")[0]
            found += [
                f"variable {variable['name']}: {n}" for n in sorted(metric_names(inner) - known)
            ]
    return found
