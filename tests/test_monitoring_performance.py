"""Realised performance on late outcomes: metrics, vintage/band tables, degradation, the join."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, ks_2samp
from sklearn.metrics import brier_score_loss, roc_auc_score

from riskops.monitoring.outcome_join import LabelJoin, join_labels
from riskops.monitoring.performance import (
    Benchmark,
    OutcomeTolerance,
    deciles_of,
    group_performance,
    hosmer_lemeshow,
    realised_performance,
)
from riskops.specs import Monitoring

START = pd.Timestamp("2026-01-01", tz="UTC")
MONTH_STARTS = pd.date_range(START, periods=7, freq="MS")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _decisions(rng: np.random.Generator, per_month: list[int]) -> tuple[pd.DataFrame, np.ndarray]:
    """Decisions over consecutive months (counts per month given) and the latent risk factor."""
    months = np.repeat(np.arange(len(per_month)), per_month)
    n = len(months)
    span = (MONTH_STARTS[months + 1] - MONTH_STARTS[months]).total_seconds().to_numpy()
    offset = pd.to_timedelta(np.floor(rng.random(n) * span), unit="s")
    x = rng.normal(size=n)
    score = _sigmoid(-1.6 + 1.3 * x)
    band = np.where(score < 0.08, "approve", np.where(score >= 0.20, "decline", "refer"))
    frame = pd.DataFrame(
        {
            "decision_id": [f"dec-{i:06d}" for i in range(n)],
            "decided_at": MONTH_STARTS[months] + offset,
            "score": score,
            "band": band,
            "entity": [f"{i:064x}" for i in range(n)],
        }
    )
    return frame, x


def _labels(frame: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"decision_id": frame["decision_id"], "label": y.astype(int)})


@pytest.fixture(scope="module")
def benchmark() -> Benchmark:
    """The development AUC/KS of the model, measured on a large holdout of its own population."""
    rng = np.random.default_rng(12345)
    x = rng.normal(size=300_000)
    p = _sigmoid(-1.6 + 1.3 * x)
    y = rng.random(len(x)) < p
    ks = ks_2samp(p[y], p[~y]).statistic
    return Benchmark(auc=float(roc_auc_score(y, p)), ks=float(ks), source="synthetic holdout")


def test_auc_gini_ks_brier_equal_scikit_learn_and_scipy() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=5000)
    p = _sigmoid(-1.0 + 1.1 * x)
    y = (rng.random(5000) < p).astype(int)
    p = np.round(p, 2)  # ties, which both sides must count half
    perf = group_performance(y, p, group="overall", key="all")
    auc = roc_auc_score(y, p)
    assert perf.auc == pytest.approx(auc, abs=1e-12)
    assert perf.gini == pytest.approx(2 * auc - 1, abs=1e-12)
    assert perf.ks == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic, abs=1e-12)
    assert perf.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert (perf.n, perf.bads) == (5000, int(y.sum()))
    assert 0.005 < perf.auc_se < 0.02


def test_hosmer_lemeshow_matches_textbook_and_separates_calibration() -> None:
    rng = np.random.default_rng(2)
    p = _sigmoid(-2.0 + 1.2 * rng.normal(size=20_000))
    y = (rng.random(len(p)) < p).astype(int)
    calibrated = hosmer_lemeshow(deciles_of(y, p))
    # the textbook form over pandas' deciles of risk, computed independently
    groups = pd.DataFrame({"y": y, "p": p}).groupby(pd.qcut(p, 10), observed=True)
    o, e, n = groups["y"].sum(), groups["p"].sum(), groups.size()
    textbook = float((((o - e) ** 2) / (e * (1 - e / n))).sum())
    assert calibrated.statistic == pytest.approx(textbook, rel=1e-9)
    assert calibrated.df == 8
    assert calibrated.p_value == pytest.approx(chi2.sf(textbook, 8))
    assert calibrated.p_value > 0.05
    miscalibrated = hosmer_lemeshow(deciles_of(y, p**0.6))
    assert miscalibrated.p_value < 1e-6
    print(f"HL p: calibrated {calibrated.p_value:.3f}, p**0.6 {miscalibrated.p_value:.2e}")


def test_vintage_and_band_tables_have_exact_counts(benchmark: Benchmark) -> None:
    rng = np.random.default_rng(3)
    per_month = [400, 250, 0, 330, 120]  # March has no decisions at all
    frame, _ = _decisions(rng, per_month)
    y = (rng.random(len(frame)) < frame["score"]).to_numpy().astype(int)
    landed = rng.random(len(frame)) < 0.8  # a fifth of the outcomes have not landed yet
    report = realised_performance(frame, _labels(frame[landed], y[landed]), benchmark=benchmark)

    months = np.repeat(np.arange(len(per_month)), per_month)
    expected_vintages = [f"2026-{m + 1:02d}" for m, c in enumerate(per_month) if c]
    assert [v.key for v in report.vintages] == expected_vintages
    for v in report.vintages:
        inside = months == int(v.key[-2:]) - 1
        assert v.decisions == int(inside.sum())
        assert v.n == int((inside & landed).sum())
        assert v.bads == int(y[inside & landed].sum())
        assert v.bad_rate == pytest.approx(y[inside & landed].mean())
        assert sum(d.n for d in v.deciles) == v.n
        assert sum(d.observed_bads for d in v.deciles) == v.bads
    bands = frame["band"].to_numpy()
    assert [b.key for b in report.bands] == ["approve", "decline", "refer"]
    for b in report.bands:
        inside = bands == b.key
        assert (b.decisions, b.n) == (int(inside.sum()), int((inside & landed).sum()))
        assert b.bads == int(y[inside & landed].sum())
    assert (report.overall.decisions, report.overall.n) == (len(frame), int(landed.sum()))
    assert report.join.unlabelled_decisions == int((~landed).sum())
    assert report.overall.coverage == pytest.approx(landed.mean())


def test_vintage_is_the_utc_month_of_the_decision() -> None:
    local = pd.to_datetime(["2026-01-31 20:30", "2026-01-31 18:00"]).tz_localize("America/New_York")
    frame = pd.DataFrame(
        {"decision_id": ["a", "b"], "decided_at": local, "score": [0.1, 0.2], "band": "refer"}
    )
    report = realised_performance(frame, pd.DataFrame({"decision_id": ["a", "b"], "label": [0, 1]}))
    # 20:30 in New York on 31 January is 01:30 UTC on 1 February
    assert [(v.key, v.decisions) for v in report.vintages] == [("2026-01", 1), ("2026-02", 1)]
    assert report.vintages[0].auc is None
    assert "one class" in report.vintages[0].auc_reason
    assert report.verdicts[0].status == "no_benchmark"


def test_degradation_detected_when_the_relationship_weakens(benchmark: Benchmark) -> None:
    rng = np.random.default_rng(4)
    frame, x = _decisions(rng, [5000, 5000, 5000])
    # outcomes from a weaker relationship than the scores assume: AUC about 0.08 lower
    y = (rng.random(len(frame)) < _sigmoid(-1.5 + 0.85 * x)).astype(int)
    report = realised_performance(frame, _labels(frame, y), benchmark=benchmark)
    drops = [v.auc_drop for v in report.verdicts]
    print(f"development AUC {benchmark.auc:.4f}, drops {[round(d, 4) for d in drops]}")
    assert all(0.05 < d < 0.11 for d in drops)
    assert report.degraded
    assert report.breaching_vintages == ("2026-01", "2026-02", "2026-03")
    assert report.pooled.status == "breach"


def test_no_degradation_declared_on_an_unchanged_relationship(benchmark: Benchmark) -> None:
    false_alarms, worst = 0, 0.0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        frame, _ = _decisions(rng, [4000, 4000, 4000])
        y = (rng.random(len(frame)) < frame["score"]).to_numpy().astype(int)
        report = realised_performance(frame, _labels(frame, y), benchmark=benchmark)
        assert all(v.status == "ok" for v in report.verdicts), report.to_markdown()
        false_alarms += report.degraded
        worst = max(worst, *(v.auc_drop for v in report.verdicts))
    print(f"false degradation alarms over 20 seeds: {false_alarms}; largest drop {worst:.4f}")
    assert false_alarms == 0


def test_too_few_bads_is_insufficient_not_a_breach(benchmark: Benchmark) -> None:
    rng = np.random.default_rng(5)
    frame, _ = _decisions(rng, [4000, 60])
    y = (rng.random(len(frame)) < frame["score"]).to_numpy().astype(int)
    small = frame["decided_at"] >= MONTH_STARTS[1]
    # the small vintage's outcomes are noise: a breach would be declared if its size allowed
    y[small.to_numpy()] = (rng.random(int(small.sum())) < 0.2).astype(int)
    report = realised_performance(frame, _labels(frame, y), benchmark=benchmark)
    january, february = report.verdicts
    assert february.status == "insufficient"
    assert "a breach needs 30 of each" in february.reason
    assert report.vintages[1].bads < 30
    assert january.status == "ok"
    assert not report.degraded
    assert report.insufficient_vintages == ("2026-02",)
    # with the point rule and a low bar the same vintage does breach: the bar is what held it
    loose = OutcomeTolerance(min_bads=5, confidence=None)
    assert realised_performance(
        frame, _labels(frame, y), benchmark=benchmark, tolerance=loose
    ).degraded


def test_unmatched_labels_and_decisions_are_counted() -> None:
    at = pd.Timestamp("2026-03-10 12:00", tz="UTC")
    ent = [f"{i:064x}" for i in range(6)]
    decisions = pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(8)],
            "decided_at": [at + pd.Timedelta(hours=h) for h in (0, 1, 2, 3, 4, 5, 6, 7)],
            "score": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            "band": "refer",
            "entity": [ent[0], ent[1], ent[2], ent[2], ent[3], ent[4], ent[5], None],
        }
    )
    labels = pd.DataFrame(
        {
            "decision_id": ["d0", "d0", "d1", "d1", "zz", None, None, None, None, None, "d6"],
            "label": [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, None],
            "entity": [None, None, None, None, None, ent[3], ent[2], ent[4], None, ent[5], None],
            "decided_at": [
                *[None] * 5,
                at + pd.Timedelta(hours=5),  # d4 within a day: matched
                at + pd.Timedelta(hours=2),  # d2 and d3 both within a day: ambiguous
                at + pd.Timedelta(days=3),  # d5 three days away: outside the tolerance
                at,  # no entity: no key
                at + pd.Timedelta(hours=6),  # d6 by entity and time
                None,
            ],
        }
    )
    frame, report = join_labels(decisions, labels, LabelJoin())
    assert report.labels_total == 11
    assert report.matched_by_decision_id == 4  # d0 twice, d1 twice
    assert report.matched_by_entity_time == 2  # d4, d6
    assert report.unmatched_labels == {
        "ambiguous_entity_time": 1,
        "decision_id_not_found": 1,
        "label_missing": 1,
        "no_decision_within_tolerance": 1,
        "no_key": 1,
    }
    assert report.unmatched_total == 5
    assert report.duplicate_labels == 1  # d0's second, equal label
    assert report.conflicting_decisions == 1  # d1: 0 and 1
    assert report.decisions_total == 8
    assert report.labelled_decisions == 3  # d0, d4, d6
    assert report.unlabelled_decisions == 5
    assert frame.set_index("decision_id")["bad"].dropna().astype(int).to_dict() == {
        "d0": 1,
        "d4": 1,
        "d6": 1,
    }
    counts = sum(report.unmatched_labels.values()) + 4 + 2
    assert counts == report.labels_total  # every label row is accounted for
    markdown = realised_performance(decisions, labels).to_markdown()
    assert "unmatched: ambiguous_entity_time 1, decision_id_not_found 1" in markdown


def test_raw_entities_are_refused_against_pseudonymised_decisions() -> None:
    decisions = pd.DataFrame(
        {
            "decision_id": ["d0"],
            "decided_at": [START],
            "score": [0.1],
            "entity": [f"{7:064x}"],
        }
    )
    labels = pd.DataFrame({"entity": ["customer-7"], "decided_at": [START], "label": [1]})
    with pytest.raises(ValueError, match="pseudonymise them with the platform key"):
        join_labels(decisions, labels)


def test_refuses_repeated_decision_ids_and_a_third_label_value() -> None:
    decisions = pd.DataFrame({"decision_id": ["d0", "d0"], "decided_at": [START] * 2, "score": 0.1})
    with pytest.raises(ValueError, match="role='champion'"):
        join_labels(decisions, pd.DataFrame({"decision_id": ["d0"], "label": [1]}))
    decisions = decisions.iloc[:1]
    with pytest.raises(ValueError, match="more than two values"):
        join_labels(decisions, pd.DataFrame({"decision_id": ["d0"] * 3, "label": [0, 1, 2]}))


def test_report_is_json_and_markdown(benchmark: Benchmark) -> None:
    rng = np.random.default_rng(6)
    frame, x = _decisions(rng, [3000, 3000])
    y = (rng.random(len(frame)) < _sigmoid(-1.5 + 0.85 * x)).astype(int)
    report = realised_performance(frame, _labels(frame, y), benchmark=benchmark)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["degraded"] is True
    assert data["vintages"][0]["coverage"] == 1.0
    assert len(data["vintages"][0]["deciles"]) == 10
    assert data["join"]["unmatched_total"] == 0
    text = report.to_markdown()
    assert text.startswith("**Degraded**: vintages 2026-01, 2026-02 breach")
    assert "| 2026-02 | 3000 | 3000 |" in text
    assert text.count("\n| approve |") == 1


def test_tolerance_from_spec_keeps_defaults_until_the_spec_has_the_fields() -> None:
    today = SimpleNamespace(monitoring=Monitoring())
    assert OutcomeTolerance.from_spec(today) == OutcomeTolerance()
    planned = SimpleNamespace(
        monitoring=SimpleNamespace(max_auc_drop_on_outcomes=0.05, min_bads_per_vintage=50)
    )
    tolerance = OutcomeTolerance.from_spec(planned)
    assert (tolerance.max_auc_drop, tolerance.min_bads) == (0.05, 50)
