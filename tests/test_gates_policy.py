"""Finding 4 (issue 7) "skipped gates pass": for a high-risk model an unmeasured gate fails unless
the spec waives it in writing; a waived gate is reported as such; elsewhere a skipped gate is
never reported as a pass; waivers that waive nothing are reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.synthetic import generate
from riskops.validation.gates import run_gates
from riskops.validation.policy import apply_waivers, waiver_for
from riskops.validation.results import GateReport, measured, not_applicable, skipped

ROOT = Path(__file__).resolve().parents[1]
STABILITY_WAIVER = "version trained in a notebook; its training rows are not kept by the bank"


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return load_spec(ROOT / "models" / "credit-scoring.yaml")


@pytest.fixture(scope="module")
def holdout(tmp_path_factory: pytest.TempPathFactory, spec: ModelSpec) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("data") / "credit.parquet"
    generate("credit_scoring", 3_000, 11, path, progress=False)
    frame = pd.read_parquet(path)
    for name in spec.features.numeric:
        frame[name] = frame[name].astype("float64")
    return frame


def _score(frame: pd.DataFrame) -> np.ndarray:
    """A plain scorecard on the credit inputs: enough to measure every gate."""
    logit = (
        -3.0
        + 1.0 * np.log(frame["debt_to_income"].fillna(0.3).clip(0.01) / 0.3)
        + 0.45 * frame["num_delinquencies"].fillna(0).clip(0, 4)
        - 0.5 * (np.log(frame["income"].fillna(40_000).clip(1_000)) - 10.6)
    )
    return (1 / (1 + np.exp(-logit))).to_numpy(dtype=float)


def _with(spec: ModelSpec, **changes) -> ModelSpec:
    data = spec.model_dump(mode="json")
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return parse_spec(data)


def _run(spec: ModelSpec, holdout: pd.DataFrame, tmp_path: Path) -> GateReport:
    return run_gates(
        spec=spec, holdout=holdout, train_sample=None, score=_score,
        numeric=spec.features.numeric, categorical=spec.features.categorical,
        plots_dir=tmp_path, latency_calls=20,
    )  # fmt: skip


def test_high_risk_without_training_sample_fails_stability(spec, holdout, tmp_path):
    report = _run(spec, holdout, tmp_path)
    for name in ("stability.feature_psi", "stability.score_psi"):
        result = report.get(name)
        assert not result.passed and result.status == "FAIL" and not result.skipped
        assert "high-risk" in result.message and f"gates.waivers['{name}']" in result.message
    assert {"stability.feature_psi", "stability.score_psi"} <= set(report.failed)
    assert not report.passed
    # nothing to compare with is not a missing measurement: the first version may pass
    assert report.get("champion.auc_drop").status == "skipped"


def test_a_waived_gate_is_reported_as_waived_with_its_reason(spec, holdout, tmp_path):
    waived_spec = _with(spec, gates={"waivers": {"stability": STABILITY_WAIVER}})
    report = _run(waived_spec, holdout, tmp_path)
    result = report.get("stability.feature_psi")
    assert result.status == "waived" and result.passed and result.waiver == STABILITY_WAIVER
    assert "stability.feature_psi" not in report.failed
    data = report.to_dict()
    assert data["waived"]["stability.score_psi"] == STABILITY_WAIVER
    row = next(r for r in data["results"] if r["name"] == "stability.feature_psi")
    assert row["status"] == "waived" and row["waiver"] == STABILITY_WAIVER
    table = {r["gate"]: r for r in report.to_table_rows()}
    assert table["stability.feature_psi"]["status"] == "waived"
    assert table["stability.feature_psi"]["waiver"] == STABILITY_WAIVER
    markdown = report.to_markdown()
    assert f"Waived by the spec: **stability.feature_psi**: {STABILITY_WAIVER}" in markdown
    assert "| waived |" in markdown and "2 waived" in markdown.splitlines()[0]
    assert report.context["waivers_applied"]["stability.score_psi"] == STABILITY_WAIVER


def test_limited_risk_skipped_gate_is_skipped_never_pass(spec, holdout, tmp_path):
    limited = _with(spec, risk_class="limited", family="other")  # credit is high by family
    report = _run(limited, holdout, tmp_path)
    result = report.get("stability.feature_psi")
    assert result.status == "skipped" and result.passed  # does not block ...
    assert report.to_dict()["results"][report.names().index(result.name)]["status"] == "skipped"
    assert {r["gate"]: r["status"] for r in report.to_table_rows()}[result.name] == "skipped"
    assert "| stability.feature_psi | — | <= 0.25 | skipped |" in report.to_markdown()
    assert result.name in report.to_dict()["skipped"]  # ... and is listed as not measured


def test_waivers_that_waive_nothing_are_reported(spec, holdout, tmp_path):
    waivers = {
        "stabilty.feature_psi": "typo in the gate name; meant to waive stability in writing",
        "discrimination.auc": "an attempt to waive a measured gate away, which cannot work",
    }
    report = _run(_with(spec, gates={"waivers": waivers}), holdout, tmp_path)
    unused = {item["gate"]: item["why"] for item in report.context["unused_waivers"]}
    assert set(unused) == set(waivers)
    assert "no gate" in unused["stabilty.feature_psi"]
    assert "measured" in unused["discrimination.auc"]
    assert report.get("stability.feature_psi").status == "FAIL"  # the typo waived nothing
    assert "Unused waiver **stabilty.feature_psi**" in report.to_markdown()


def test_a_waiver_never_turns_a_measured_failure_into_a_pass():
    failed = measured("fairness.age", 0.6, 0.8, ">=", "Disparate impact")
    unmeasured = skipped("fairness.age.equal_opportunity", "Fewer than two groups.")
    first = not_applicable("champion.auc_drop", "no champion yet")
    waivers = {"fairness.age": "fewer than 50 applicants under 25 in the holdout; accepted"}
    out, context = apply_waivers([failed, unmeasured, first], risk_class="high", waivers=waivers)
    assert [r.status for r in out] == ["FAIL", "waived", "skipped"]
    assert out[1].waiver == waivers["fairness.age"]  # a dotted prefix covers the sub-gate
    assert context["unused_waivers"] == []
    assert waiver_for("fairness.age.equal_opportunity", waivers) == "fairness.age"
    assert waiver_for("fairness.agency", waivers) is None  # prefixes end at a dot
