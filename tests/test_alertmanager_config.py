"""The example Alertmanager config: valid for amtool, routing each kind of alert where it should."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_prometheus_rules import tool

CONFIG = Path(__file__).resolve().parents[1] / "infra" / "alertmanager" / "alertmanager.yml"


@pytest.fixture(scope="module")
def amtool() -> str:
    return tool("amtool", "prometheus-alertmanager")


def _routes(amtool: str, config: Path, **labels: str) -> str:
    args = [amtool, "config", "routes", "test", f"--config.file={config}"]
    result = subprocess.run(args + [f"{k}={v}" for k, v in labels.items()], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_config_and_refuses_a_broken_one(amtool, tmp_path):
    ok = subprocess.run([amtool, "check-config", str(CONFIG)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = yaml.safe_load(CONFIG.read_text())
    broken["route"]["routes"][1]["receiver"] = "no-such-receiver"
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    bad = subprocess.run([amtool, "check-config", str(tmp_path / "broken.yml")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "no-such-receiver" in bad.stdout + bad.stderr


def test_slo_burns_reach_the_platform_and_slack_by_severity(amtool):
    slo = {"model": "credit-scoring", "slo": "errors"}
    page = _routes(amtool, CONFIG, alertname="RiskopsErrorBudgetBurn", severity="page", **slo)
    assert page == "riskops-platform,slack-pages"
    ticket = _routes(amtool, CONFIG, alertname="RiskopsLatencyBudgetBurn", severity="ticket",
                     model="credit-scoring", slo="latency")  # fmt: skip
    assert ticket == "riskops-platform,slack-tickets"


def test_other_alerts_go_to_slack_only(amtool):
    assert _routes(amtool, CONFIG, alertname="RiskopsDecisionLogDrops", severity="page",
                   model="credit-scoring") == "slack-pages"  # fmt: skip
    assert _routes(amtool, CONFIG, alertname="RiskopsLabelsOverdue", severity="ticket",
                   model="credit-scoring") == "slack-tickets"  # fmt: skip
    assert _routes(amtool, CONFIG, alertname="RiskopsDriftWatch", severity="info") == "slack-info"


def test_the_platform_receiver_is_the_governance_apis_alertmanager_route():
    receivers = {r["name"]: r for r in yaml.safe_load(CONFIG.read_text())["receivers"]}
    [hook] = receivers["riskops-platform"]["webhook_configs"]
    assert hook["url"].endswith(":5003/v1/alerts/alertmanager")
    assert hook["http_config"]["authorization"]["type"] == "Bearer"  # the receiver needs a key
