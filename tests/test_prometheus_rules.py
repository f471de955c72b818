"""The Prometheus rules: generated from the specs, checked and unit-tested with promtool."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from riskops.observability import rules
from riskops.observability.windows import ERROR_ALERT, LATENCY_ALERT
from riskops.specs import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
PROM = ROOT / "infra" / "prometheus"
RULES = PROM / "rules"


def tool(name: str, package: str) -> str:
    """The Debian tool's path; on CI (CI=true) a missing tool fails instead of skipping."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is missing on CI: .ci/run installs Debian's {package} package")
    pytest.skip(f"{name} not installed (apt-get install {package}); CI installs it via .ci/run")


@pytest.fixture(scope="module")
def promtool() -> str:
    return tool("promtool", "prometheus")


def _loaded(name: str) -> dict:
    return yaml.safe_load((RULES / name).read_text())


def _with_slo(spec: ModelSpec, **slo: float) -> ModelSpec:
    return spec.model_copy(update={"slo": spec.slo.model_copy(update=slo)})


def test_the_checked_in_rules_are_what_the_specs_generate(tmp_path):
    specs = rules.load_specs(ROOT / "models")
    for name, text in rules.rule_files(specs).items():
        assert (RULES / name).read_text() == text, (
            f"{RULES / name} is out of date with models/*.yaml: run "
            "`python -m riskops.observability.rules` and commit it"
        )
    assert rules.main(["--specs", str(ROOT / "models"), "--out", str(RULES), "--check"]) == 0
    # A changed objective makes --check fail on the same checked-in files.
    changed = tmp_path / "models"
    shutil.copytree(ROOT / "models", changed)
    path = changed / "fraud-detection.yaml"
    path.write_text(path.read_text().replace("availability_objective: 0.999", "availability_"
                                             "objective: 0.995"))  # fmt: skip
    assert rules.main(["--specs", str(changed), "--out", str(RULES), "--check"]) == 1


def test_each_model_is_held_to_its_own_objectives(credit_spec, all_specs):
    strict = _with_slo(credit_spec, latency_threshold_ms=50, availability_objective=0.9995,
                       latency_objective=0.95)  # fmt: skip
    generated = rules.slo_rules([strict, all_specs["fraud-detection"]])
    alerts = {
        (a["labels"]["model"], a["labels"]["slo"], a["labels"]["severity"]): a["expr"]
        for a in rules.alert_rules(generated)
    }
    assert len(alerts) == 2 * 2 * 2
    assert "> 14.4 * 0.0005" in alerts[("credit-scoring", "errors", "page")]
    assert "> 14.4 * 0.001" in alerts[("fraud-detection", "errors", "page")]
    assert "> 1 * 0.05" in alerts[("credit-scoring", "latency", "ticket")]
    recording = [r for g in generated["groups"] for r in g["rules"] if "record" in r]
    latency = [r for r in recording if r["record"] == rules.latency_bad_ratio("1h")]
    by_model = {r["labels"]["model"]: r["expr"] for r in latency}
    assert 'le="0.05"' in by_model["credit-scoring"] and 'le="0.02"' in by_model["fraud-detection"]
    assert {r["record"] for r in recording} >= {rules.error_ratio(w) for w in ("5m", "3d")}


def test_a_threshold_off_the_histogram_buckets_is_refused():
    assert rules.bucket_edge(7.5) == "0.0075" and rules.bucket_edge(1000) == "1.0"
    with pytest.raises(ValueError, match=r"7 ms is not a bucket edge.*slo\.latency_threshold_ms"):
        rules.bucket_edge(7)


def test_slo_alerts_carry_the_names_and_labels_the_breach_receiver_expects():
    slo = rules.alert_rules(_loaded("slo.yml"))
    assert {a["alert"] for a in slo} == {LATENCY_ALERT, ERROR_ALERT}
    for alert in slo:
        labels = alert["labels"]
        assert set(labels) == {"model", "slo", "severity"}
        assert labels["slo"] == ("latency" if alert["alert"] == LATENCY_ALERT else "errors")
        assert labels["severity"] in ("page", "ticket")
        assert set(alert["annotations"]) >= {"summary", "runbook_url"}
    models = {a["labels"]["model"] for a in slo}
    assert models == {p.stem for p in (ROOT / "models").glob("*.yaml")}


def test_every_alert_points_at_a_runbook_that_exists():
    for name in ("slo.yml", "platform.yml"):
        for alert in rules.alert_rules(_loaded(name)):
            url = alert["annotations"]["runbook_url"]
            assert url.startswith(rules.RUNBOOK_BASE), url
            assert (ROOT / url).is_file(), f"{alert['alert']}: runbook {url} does not exist"


def test_every_alert_is_unit_tested_firing_and_silent():
    fired, silent = set(), set()
    for path in (PROM / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for n in ("slo.yml", "platform.yml") for a in rules.alert_rules(_loaded(n))}
    assert names <= fired, f"never seen firing: {sorted(names - fired)}"
    # Drift watch and alert are one band gauge: each test's silence is the other's firing.
    assert names - {"RiskopsDriftWatch", "RiskopsDriftAlert"} <= silent, sorted(names - silent)


def test_promtool_checks_the_rule_files_and_refuses_a_broken_one(promtool, tmp_path):
    ok = subprocess.run([promtool, "check", "rules", *map(str, sorted(RULES.glob("*.yml")))],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = _loaded("platform.yml")
    broken["groups"][0]["rules"][0]["expr"] = "sum by (model (riskops_model_ready)"
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    bad = subprocess.run([promtool, "check", "rules", str(tmp_path / "broken.yml")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "parse error" in (bad.stdout + bad.stderr)


def test_promtool_unit_tests_pass(promtool):
    tests = sorted(str(p.relative_to(PROM)) for p in (PROM / "tests").glob("*.yml"))
    result = subprocess.run([promtool, "test", "rules", *tests], cwd=PROM, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests)


def test_promtool_unit_tests_catch_rules_with_a_wrong_objective(promtool, tmp_path, all_specs):
    lax = [_with_slo(s, availability_objective=0.98) for s in all_specs.values()]
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "slo.yml").write_text(rules.render(rules.slo_rules(lax)))
    shutil.copytree(PROM / "tests", tmp_path / "tests")
    result = subprocess.run([promtool, "test", "rules", "tests/slo_errors.yml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert "RiskopsErrorBudgetBurn" in result.stdout + result.stderr
