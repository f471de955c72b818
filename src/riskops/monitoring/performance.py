"""Realised performance on late outcomes: per vintage, per band, overall, against development.

Labels are joined to decisions by :func:`riskops.monitoring.outcome_join.join_labels` (the keys
are documented there). A *vintage* is the calendar month (UTC) of the decision. For each group:
rows with an outcome, bads, bad rate, AUC (with its DeLong standard error), Gini = 2·AUC - 1, KS,
and calibration: expected vs observed bad rate per score decile, Brier score, ECE (10 equal-count
bins) and the Hosmer-Lemeshow statistic over those deciles (chi-square with g - 2 degrees of
freedom). A group with one class gets AUC = None and the reason, never an exception.

Degradation (:class:`OutcomeTolerance`): a vintage *breaches* when its AUC is below the
development AUC minus ``max_auc_drop`` (material) **and** the upper end of its one-sided
``confidence`` DeLong bound is below the development AUC (the drop is beyond sampling noise);
``confidence=None`` uses the point rule alone. A vintage with fewer than ``min_bads`` bads (or
goods) is ``insufficient``: no breach can be declared on it. ``degraded`` is True when any
vintage breaches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from riskops.monitoring.outcome_join import JoinReport, LabelJoin, join_labels
from riskops.training.metrics import binary_metrics, ks_statistic
from riskops.validation.calibration import (
    brier_score,
    calibration_table,
    expected_calibration_error,
)
from riskops.validation.discrimination import delong_auc_variance
from riskops.validation.results import jsonable

Status = Literal["ok", "breach", "insufficient", "no_benchmark"]


@dataclass(frozen=True)
class Decile:
    """One equal-count score bin: expected (mean score) against observed bad rate."""

    bin: int
    score_min: float
    score_max: float
    n: int
    expected_rate: float
    observed_rate: float
    expected_bads: float
    observed_bads: int


@dataclass(frozen=True)
class HosmerLemeshow:
    """The Hosmer-Lemeshow goodness-of-fit statistic over score deciles."""

    statistic: float | None
    df: int | None
    p_value: float | None
    reason: str | None = None  # why it was not computed


@dataclass(frozen=True)
class GroupPerformance:
    """Realised performance of one group of decisions (a vintage, a band, or all)."""

    group: str  # "overall", "vintage" or "band"
    key: str  # "all", "2026-01", "approve" ...
    decisions: int  # decisions in the group, with or without an outcome
    n: int  # decisions with an outcome
    bads: int
    bad_rate: float | None
    mean_score: float | None  # the expected bad rate if the score is calibrated
    auc: float | None
    auc_se: float | None  # DeLong; None with fewer than two rows of a class
    gini: float | None
    ks: float | None
    auc_reason: str | None  # why AUC, Gini and KS are None
    brier: float | None
    ece: float | None
    hosmer_lemeshow: HosmerLemeshow
    deciles: tuple[Decile, ...]

    @property
    def coverage(self) -> float | None:
        """Share of the group's decisions whose outcome has landed."""
        return self.n / self.decisions if self.decisions else None


@dataclass(frozen=True)
class Benchmark:
    """Development performance, as recorded at validation (the holdout's AUC and KS)."""

    auc: float
    ks: float | None = None
    source: str = ""  # e.g. "validation of credit-scoring v7, holdout of 2026-06"


@dataclass(frozen=True)
class OutcomeTolerance:
    """How far realised performance may fall below development before it is a breach."""

    max_auc_drop: float = 0.03  # spec: monitoring.max_auc_drop_on_outcomes
    min_bads: int = 30  # per vintage, and as many goods, before a breach can be declared
    confidence: float | None = 0.95  # one-sided DeLong bound; None: the point rule alone
    max_ks_drop: float | None = None  # KS breaches too when set (point rule)

    @classmethod
    def from_spec(cls, spec: Any) -> OutcomeTolerance:
        """From ``spec.monitoring``; fields it does not have yet keep these defaults."""
        monitoring = getattr(spec, "monitoring", None)
        defaults = cls()
        return cls(
            max_auc_drop=getattr(monitoring, "max_auc_drop_on_outcomes", defaults.max_auc_drop),
            min_bads=getattr(monitoring, "min_bads_per_vintage", defaults.min_bads),
            confidence=getattr(monitoring, "outcome_confidence", defaults.confidence),
            max_ks_drop=getattr(monitoring, "max_ks_drop_on_outcomes", defaults.max_ks_drop),
        )


@dataclass(frozen=True)
class Verdict:
    """One vintage's (or the pooled) comparison with the development benchmark."""

    key: str
    status: Status
    auc: float | None
    auc_drop: float | None  # benchmark AUC - realised AUC
    auc_threshold: float | None  # benchmark AUC - max_auc_drop
    auc_upper: float | None  # upper end of the one-sided bound
    ks_drop: float | None
    reason: str


@dataclass(frozen=True)
class PerformanceReport:
    """Realised performance per vintage, per band and overall, and the degradation verdict."""

    overall: GroupPerformance
    vintages: tuple[GroupPerformance, ...]
    bands: tuple[GroupPerformance, ...]
    join: JoinReport
    benchmark: Benchmark | None
    tolerance: OutcomeTolerance
    verdicts: tuple[Verdict, ...]  # one per vintage
    pooled: Verdict  # all vintages together: context, not used for ``degraded``
    degraded: bool
    breaching_vintages: tuple[str, ...]
    insufficient_vintages: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become None)."""
        out = asdict(self)
        out["join"] = self.join.to_dict()
        for name in ("overall", "vintages", "bands"):
            groups = [self.overall] if name == "overall" else getattr(self, name)
            rows = [out[name]] if name == "overall" else out[name]
            for row, group in zip(rows, groups, strict=True):
                row["coverage"] = group.coverage
        return jsonable(out)

    def to_markdown(self) -> str:
        """Markdown: the verdict, the vintage and band tables, and the join counts."""
        return render_markdown(self)


def hosmer_lemeshow(deciles: Iterable[Decile]) -> HosmerLemeshow:
    """HL = Σ (O - E)² / (E · (1 - E/n)) over the bins; p from chi-square with g - 2 df.

    Bins whose expected variance is zero (every score 0 or 1) carry no information and are left
    out of both the sum and g.
    """
    terms = []
    for d in deciles:
        variance = d.expected_bads * (1.0 - d.expected_bads / d.n)
        if variance > 0:
            terms.append((d.observed_bads - d.expected_bads) ** 2 / variance)
    if len(terms) < 3:
        return HosmerLemeshow(None, None, None, f"needs 3+ score bins, has {len(terms)}")
    statistic, df = float(sum(terms)), len(terms) - 2
    return HosmerLemeshow(statistic, df, float(chi2.sf(statistic, df)))


def deciles_of(y: np.ndarray, score: np.ndarray, bins: int = 10) -> tuple[Decile, ...]:
    """Equal-count score bins (validation's calibration table) with expected and observed bads."""
    return tuple(
        Decile(
            bin=int(row["bin"]),
            score_min=row["score_min"],
            score_max=row["score_max"],
            n=int(row["n"]),
            expected_rate=row["mean_score"],
            observed_rate=row["observed_rate"],
            expected_bads=row["n"] * row["mean_score"],
            observed_bads=round(row["n"] * row["observed_rate"]),
        )
        for row in calibration_table(y, score, bins=bins, strategy="quantile")
    )


def group_performance(
    y: np.ndarray, score: np.ndarray, *, group: str, key: str, decisions: int | None = None
) -> GroupPerformance:
    """Realised performance of 0/1 outcomes ``y`` (1 = bad) against probability ``score``."""
    y = np.asarray(y, dtype=np.int8)
    score = np.asarray(score, dtype=np.float64)
    n, bads = len(y), int(y.sum())
    total = n if decisions is None else decisions
    if n == 0:
        empty = HosmerLemeshow(None, None, None, "no outcomes")
        return GroupPerformance(
            group, key, total, 0, 0, None, None, None, None, None, None,
            "no outcomes have landed", None, None, empty, (),
        )  # fmt: skip
    auc = auc_se = gini = ks = None
    reason = None
    if bads in (0, n):
        reason = f"one class only: {bads} bads of {n}"
    else:
        ks = ks_statistic(y, score)
        if min(bads, n - bads) >= 2:
            # DeLong's midrank AUC equals scikit-learn's and comes with its variance
            auc, variance = delong_auc_variance(y, score)
            auc_se = math.sqrt(max(variance, 0.0))
        else:
            auc = binary_metrics(y, score)["auc"]
        gini = 2.0 * auc - 1.0
    deciles = deciles_of(y, score)
    return GroupPerformance(
        group=group,
        key=key,
        decisions=total,
        n=n,
        bads=bads,
        bad_rate=bads / n,
        mean_score=float(score.mean()),
        auc=auc,
        auc_se=auc_se,
        gini=gini,
        ks=ks,
        auc_reason=reason,
        brier=brier_score(y, score),
        ece=expected_calibration_error(y, score, bins=10, strategy="quantile"),
        hosmer_lemeshow=hosmer_lemeshow(deciles),
        deciles=deciles,
    )


def compare_to_benchmark(
    perf: GroupPerformance, benchmark: Benchmark | None, tolerance: OutcomeTolerance
) -> Verdict:
    """The verdict on one group (see the module docstring for the rule)."""
    if benchmark is None:
        return Verdict(perf.key, "no_benchmark", perf.auc, None, None, None, None, "no benchmark")
    threshold = benchmark.auc - tolerance.max_auc_drop
    goods = perf.n - perf.bads
    if perf.auc is None or min(perf.bads, goods) < tolerance.min_bads:
        why = perf.auc_reason or f"{perf.bads} bads and {goods} goods"
        reason = f"insufficient: {why}; a breach needs {tolerance.min_bads} of each"
        return Verdict(perf.key, "insufficient", perf.auc, None, threshold, None, None, reason)
    drop = benchmark.auc - perf.auc
    upper = None
    if tolerance.confidence is not None and perf.auc_se is not None:
        upper = perf.auc + float(norm.ppf(tolerance.confidence)) * perf.auc_se
    material = perf.auc < threshold
    significant = upper is None or upper < benchmark.auc
    ks_drop = None if benchmark.ks is None or perf.ks is None else benchmark.ks - perf.ks
    ks_breach = tolerance.max_ks_drop is not None and ks_drop is not None
    ks_breach = ks_breach and ks_drop > tolerance.max_ks_drop
    breach = (material and significant) or ks_breach
    bound = "" if upper is None else f", one-sided {tolerance.confidence:.0%} upper {upper:.4f}"
    reason = (
        f"AUC {perf.auc:.4f} vs development {benchmark.auc:.4f} (drop {drop:+.4f}, tolerance "
        f"{tolerance.max_auc_drop}{bound})"
    )
    if material and not significant:
        reason += ": below the threshold but within sampling noise"
    if ks_breach:
        reason += f"; KS drop {ks_drop:.4f} exceeds {tolerance.max_ks_drop}"
    status: Status = "breach" if breach else "ok"
    return Verdict(perf.key, status, perf.auc, drop, threshold, upper, ks_drop, reason)


def _groups(frame: pd.DataFrame, column: str, group: str) -> tuple[GroupPerformance, ...]:
    out = []
    for key, part in frame.groupby(column, sort=True, dropna=False):
        labelled = part[part["bad"].notna()]
        out.append(
            group_performance(
                labelled["bad"].to_numpy(dtype=np.int8),
                labelled["score"].to_numpy(dtype=np.float64),
                group=group,
                key=str(key),
                decisions=len(part),
            )
        )
    return tuple(out)


def realised_performance(
    decisions: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    join: LabelJoin | None = None,
    benchmark: Benchmark | None = None,
    tolerance: OutcomeTolerance | None = None,
) -> PerformanceReport:
    """Join outcomes to decisions; measure per vintage, per band and overall; judge degradation.

    Args:
        decisions: the decision-log frame (``read_decisions``), one role.
        labels: the landed label file (keys: see :mod:`riskops.monitoring.outcome_join`).
        benchmark: development AUC/KS; without it every verdict is ``no_benchmark``.
        tolerance: defaults to :class:`OutcomeTolerance` (or ``OutcomeTolerance.from_spec``).
    """
    tolerance = tolerance or OutcomeTolerance()
    frame, report = join_labels(decisions, labels, join)
    month = frame["decided_at"].dt.year * 100 + frame["decided_at"].dt.month  # UTC: see join
    frame["vintage"] = month.map({m: f"{m // 100:04d}-{m % 100:02d}" for m in month.unique()})
    if "band" not in frame.columns:
        frame["band"] = "unbanded"
    labelled = frame[frame["bad"].notna()]
    overall = group_performance(
        labelled["bad"].to_numpy(dtype=np.int8),
        labelled["score"].to_numpy(dtype=np.float64),
        group="overall",
        key="all",
        decisions=len(frame),
    )
    vintages = _groups(frame, "vintage", "vintage")
    verdicts = tuple(compare_to_benchmark(v, benchmark, tolerance) for v in vintages)
    return PerformanceReport(
        overall=overall,
        vintages=vintages,
        bands=_groups(frame, "band", "band"),
        join=report,
        benchmark=benchmark,
        tolerance=tolerance,
        verdicts=verdicts,
        pooled=compare_to_benchmark(overall, benchmark, tolerance),
        degraded=any(v.status == "breach" for v in verdicts),
        breaching_vintages=tuple(v.key for v in verdicts if v.status == "breach"),
        insufficient_vintages=tuple(v.key for v in verdicts if v.status == "insufficient"),
    )


def _cell(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def _table(groups: Iterable[GroupPerformance], verdicts: dict[str, Verdict]) -> list[str]:
    head = "| {} | decisions | n | bads | bad rate | mean score | AUC | Gini | KS | Brier | ECE "
    head += "| HL p | status |"
    lines = []
    for g in groups:
        if not lines:
            lines += [head.format(g.group), "|" + "---|" * 13]
        verdict = verdicts.get(g.key)
        lines.append(
            f"| {g.key} | {g.decisions} | {g.n} | {g.bads} | {_cell(g.bad_rate)} | "
            f"{_cell(g.mean_score)} | {_cell(g.auc)} | {_cell(g.gini)} | {_cell(g.ks)} | "
            f"{_cell(g.brier)} | {_cell(g.ece)} | {_cell(g.hosmer_lemeshow.p_value, 3)} | "
            f"{verdict.status if verdict else '—'} |"
        )
    return lines


def render_markdown(report: PerformanceReport) -> str:
    """The report as markdown tables (for Slack, the card, or a pull request)."""
    if report.benchmark is None:
        head = "No development benchmark was given: no degradation verdict."
    elif report.degraded:
        head = f"**Degraded**: vintages {', '.join(report.breaching_vintages)} breach"
    else:
        head = "Not degraded"
    if report.benchmark is not None:
        head += (
            f" (development AUC {report.benchmark.auc:.4f}, tolerance "
            f"{report.tolerance.max_auc_drop}, at least {report.tolerance.min_bads} bads)."
        )
    if report.insufficient_vintages:
        head += f" Insufficient outcomes: {', '.join(report.insufficient_vintages)}."
    by_key = {v.key: v for v in report.verdicts}
    j = report.join
    unmatched = ", ".join(f"{k} {v}" for k, v in j.unmatched_labels.items()) or "none"
    lines = [
        head,
        "",
        *_table([report.overall], {"all": report.pooled}),
        "",
        *_table(report.vintages, by_key),
        "",
        *_table(report.bands, {}),
        "",
        f"Labels: {j.labels_total} ({j.matched_by_decision_id} by decision id, "
        f"{j.matched_by_entity_time} by entity and time; unmatched: {unmatched}; "
        f"{j.duplicate_labels} duplicates, {j.conflicting_decisions} conflicting decisions). "
        f"Decisions: {j.decisions_total}, {j.labelled_decisions} with an outcome, "
        f"{j.unlabelled_decisions} without.",
    ]
    return "\n".join(lines) + "\n"
