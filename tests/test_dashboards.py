"""Grafana dashboards as code: regenerated JSON is what is checked in; every query is exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from riskops.observability import dashboards
from riskops.observability.dashboards import known_metrics, panel_queries, unknown_metrics
from riskops.observability.promql import metric_names

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "infra" / "grafana" / "dashboards"
RULES = [
    yaml.safe_load(p.read_text()) for p in sorted((ROOT / "infra/prometheus/rules").glob("*.yml"))
]


@pytest.fixture(scope="module")
def known() -> set[str]:
    return known_metrics(RULES)


def _checked_in() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(BOARDS.glob("*.json"))}


def test_regenerating_the_dashboards_gives_the_checked_in_json(tmp_path):
    files = dashboards.dashboard_files()
    assert set(files) == set(_checked_in()), "a dashboard file is missing or left over"
    for name, text in files.items():
        assert (BOARDS / name).read_text() == text, (
            f"{BOARDS / name} differs from what riskops.observability.dashboards builds: run "
            "`python -m riskops.observability.dashboards` and commit it"
        )
    assert dashboards.main(["--out", str(BOARDS), "--check"]) == 0
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace("Latency quantiles", "Latency"))
    assert dashboards.main(["--out", str(tmp_path), "--check"]) == 1


def test_every_panel_queries_only_metrics_that_are_exported(known):
    for name, document in _checked_in().items():
        queries = panel_queries(document)
        assert queries, f"{name} has no queries"
        assert unknown_metrics(document, known) == [], name
        for panel in document["panels"]:
            if panel["type"] != "row":
                assert panel.get("targets"), f"{name}: panel {panel['title']!r} queries nothing"
                assert panel["datasource"]["uid"] == "${datasource}"


def test_the_check_fails_on_a_panel_that_queries_an_unknown_metric(known):
    document = _checked_in()["riskops-scoring.json"]
    document["panels"][1]["targets"][0]["expr"] = (
        "histogram_quantile(0.99, sum by (le) "
        '(rate(riskops_scoring_latency_seconds_bucket{model=~"$model"}[5m])))'
    )
    document["templating"]["list"][1]["query"] = "label_values(riskops_requests_total, model)"
    assert unknown_metrics(document, known) == [
        "Requests by status code: riskops_scoring_latency_seconds_bucket",
        "variable model: riskops_requests_total",
    ]


def test_the_dashboards_cover_latency_throughput_bands_scores_drift_and_burn():
    read = set()
    for document in _checked_in().values():
        for _title, expr in panel_queries(document):
            read |= metric_names(expr)
    assert read >= {
        "riskops_scoring_request_duration_seconds_bucket",  # latency
        "riskops_scoring_requests_total",  # throughput
        "riskops_scoring_decisions_total",  # decision bands
        "riskops_scoring_score_bucket",  # score distribution
        "riskops_drift_psi",  # drift per feature
        "riskops:scoring_errors:ratio_rate1h",  # SLO burn
        "riskops:scoring_latency_bad:ratio_rate5m",
        "riskops:slo_errors:budget",
    }


def test_the_rules_read_only_metrics_that_are_exported(known):
    for rule_file in RULES:
        for group in rule_file["groups"]:
            for rule in group["rules"]:
                missing = metric_names(rule["expr"]) - known
                assert not missing, f"{rule.get('alert') or rule.get('record')}: {missing}"


def test_the_promql_parser_finds_metrics_not_functions_labels_or_durations():
    expr = (
        'sum by (model, le) (rate(a_bucket{le="0.02",model=~"$model"}[$__rate_interval])) '
        "/ on (model) group_left b:ratio_rate1h offset 1d > 14.4 * 0.001 "
        'unless ALERTS{alertname="x"}'
    )
    assert metric_names(expr) == {"a_bucket", "b:ratio_rate1h", "ALERTS"}
    assert metric_names("vector(0.001)") == set()
