"""The model spec contract: good specs load, bad ones are refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from riskops import ledger
from riskops.cli.main import app
from riskops.db import make_engine, session_scope
from riskops.specs import SpecError, load_spec, parse_spec
from tests.conftest import MODELS
from tests.governance_helpers import principal


def _credit() -> dict:
    return yaml.safe_load((MODELS / "credit-scoring.yaml").read_text())


def test_shipped_specs_load(all_specs):
    assert set(all_specs) == {"credit-scoring", "fraud-detection", "transaction-risk"}
    for name, spec in all_specs.items():
        assert spec.name == name
        assert spec.target not in spec.feature_columns
        assert set(spec.feature_columns) <= set(spec.required_columns)


def test_protected_attributes_are_not_features_unless_listed(credit_spec):
    assert {"age", "gender"} <= set(credit_spec.required_columns)
    assert not {"age", "gender"} & set(credit_spec.feature_columns)


def test_typo_in_field_is_refused_with_field_named_and_suggestion():
    data = _credit()
    data["featurse"] = data.pop("features")
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "credit.yaml")
    paths = dict(caught.value.problems)
    assert "featurse" in paths and "did you mean 'features'" in paths["featurse"]
    assert paths["features"] == "required field is missing"


def test_typo_in_nested_field_is_named_with_its_path():
    data = _credit()
    data["gates"]["min_acu"] = data["gates"].pop("min_auc")
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "credit.yaml")
    assert caught.value.problems == [("gates.min_acu", "unknown field (did you mean 'min_auc'?)")]


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"name": "Credit Scoring"}, "name", "pattern"),
        ({"family": "mortgages"}, "family", "credit_scoring"),
        ({"risk_class": "extreme"}, "risk_class", "high"),
        ({"positive_label": "bad"}, "(spec)", "target_values is required"),
        ({"target_values": [0, 1], "positive_label": 2}, "(spec)", "positive_label 2 not in"),
        ({"target": "income"}, "(spec)", "leakage"),
        ({"columns": {"salary": {"min": 0}}}, "(spec)", "salary"),
        ({"monotonic": [{"feature": "region", "direction": "increasing"}]}, "(spec)", "region"),
        ({"monitoring": {"psi_warn": 0.3, "psi_alert": 0.2}}, "monitoring", "psi_warn"),
    ],
)
def test_bad_values_are_refused(change, field, fragment):
    data = _credit() | change
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "credit.yaml")
    problems = dict(caught.value.problems)
    assert field in problems, problems
    assert fragment in problems[field]


def test_unreadable_yaml_is_refused(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"\(yaml\)"):
        load_spec(bad)


def test_string_target_spec_with_spaces_and_symbols(tmp_path: Path):
    spec = parse_spec(
        {
            "name": "sme-overdraft",
            "family": "other",
            "risk_class": "high",
            "owner": "sme-lending",
            "intended_use": "Overdraft limits for small businesses.",
            "target": "outcome",
            "positive_label": "bad",
            "target_values": ["good", "bad"],
            "features": {"numeric": ["turnover €"], "categorical": ["sector / NACE"]},
        }
    )
    assert spec.resolved_target_values == ["good", "bad"]
    assert spec.required_columns == ["turnover €", "sector / NACE", "outcome"]


def test_cli_onboard_refuses_typo_with_exit_2_and_registers_nothing(settings, tmp_path):
    data = _credit()
    data["intended_usage"] = data.pop("intended_use")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["onboard", str(path)])
    assert result.exit_code == 2
    assert "intended_usage" in result.output and "intended_use" in result.output
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        assert ledger.list_specs(session=session) == []
    engine.dispose()


def test_cli_onboard_is_idempotent(settings, monkeypatch):
    engine = make_engine(settings.database_url)
    monkeypatch.setenv("RISKOPS_API_KEY", principal(engine, "dev@bank", "model-developer"))
    engine.dispose()
    runner = CliRunner()
    first = runner.invoke(app, ["onboard", str(MODELS / "fraud-detection.yaml"), "--json"])
    second = runner.invoke(app, ["onboard", str(MODELS / "fraud-detection.yaml"), "--json"])
    assert first.exit_code == 0, first.output
    assert '"created": true' in first.output and '"created": false' in second.output
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert '"fraud-detection"' in listed.output


def test_every_slo_latency_threshold_is_a_bucket_edge_of_the_service_histogram():
    from riskops.serving.metrics import LATENCY_BUCKETS
    from riskops.specs import LATENCY_THRESHOLDS_MS

    assert all(edge / 1000 in LATENCY_BUCKETS for edge in LATENCY_THRESHOLDS_MS)


def test_an_slo_threshold_between_bucket_edges_is_refused_with_the_edges_named():
    from riskops.specs import Slo

    with pytest.raises(ValueError, match="not a latency histogram bucket edge; choose one of 5"):
        Slo(latency_threshold_ms=42)
    assert Slo(latency_threshold_ms=20).latency_objective == 0.99


def test_per_feature_drift_overrides_are_checked_against_the_model():
    base = yaml.safe_load((MODELS / "fraud-detection.yaml").read_text())
    spec = parse_spec(base, "fraud")
    assert spec.monitoring.features["mcc"].new_category_alert == 0.10
    unknown = {**base, "monitoring": {**base["monitoring"], "features": {"mcc_code": {}}}}
    with pytest.raises(SpecError, match=r"monitoring.features names \['mcc_code'\]"):
        parse_spec(unknown, "fraud")
    crossed = {**base, "monitoring": {**base["monitoring"],
               "features": {"amount": {"psi_warn": 0.3}}}}  # fmt: skip
    with pytest.raises(SpecError, match=r"features.amount: psi_warn \(0.3\) exceeds psi_alert"):
        parse_spec(crossed, "fraud")
    prediction = {**base, "monitoring": {**base["monitoring"],
                  "features": {"score": {"psi_alert": 0.2}}}}  # fmt: skip
    assert parse_spec(prediction, "fraud").monitoring.features["score"].psi_alert == 0.2
