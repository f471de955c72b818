"""Compare two profiles (reference, target) and say which features drifted, and how much.

One function serves data drift (features of a window vs the training reference), prediction
drift (the score profiled as one numeric column) and training-serving skew (serving features vs
the training reference): :func:`compare_profiles` only ever reads the two views' sketches.

Per numeric feature: PSI (a.k.a. CSI) over the reference's quantile bins, its sample-size
critical values, KS statistic and p-value, Jensen-Shannon distance over the same bins, and the
Wasserstein distance divided by the reference's standard deviation (by its IQR when the standard
deviation is 0; unscaled when both are 0). Per categorical feature: PSI, chi-square and JS over
the reference's frequent categories plus "(other)", and categories the reference never saw.
Both: the change of the null rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any, Literal

from riskops.monitoring import sketch_stats as st
from riskops.monitoring.schema import Role, roles_from_metadata
from riskops.monitoring.thresholds import DriftThresholds
from riskops.monitoring.whylogs_compat import ColumnProfileView, DatasetProfileView

Kind = Literal["data", "prediction", "skew"]


class Band(IntEnum):
    """Ordered severity; ``str(band)`` is its lower-case name."""

    STABLE = 0
    WATCH = 1
    ALERT = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class FeatureDrift:
    """How one feature moved between the reference and the target profile.

    ``band`` is None when either side has fewer than ``min_rows`` rows: nothing is judged.
    Statistics that do not apply to the feature's role are None.
    """

    name: str
    role: Role
    reference_rows: int
    target_rows: int
    band: Band | None
    reasons: tuple[str, ...]
    psi: float | None = None
    psi_critical: float | None = None  # at the thresholds' confidence: a band needs PSI above it
    psi_critical_95: float | None = None
    psi_critical_99: float | None = None
    js_distance: float | None = None
    ks: float | None = None
    ks_pvalue: float | None = None
    wasserstein_norm: float | None = None
    chi2: float | None = None
    chi2_pvalue: float | None = None
    null_rate_reference: float = 0.0
    null_rate_target: float = 0.0
    new_categories: tuple[str, ...] = ()
    new_category_share: float = 0.0
    bins: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()
    reference_shares: tuple[float, ...] = ()
    target_shares: tuple[float, ...] = ()

    @property
    def null_rate_change(self) -> float:
        return self.null_rate_target - self.null_rate_reference

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["band"] = None if self.band is None else str(self.band)
        out["null_rate_change"] = self.null_rate_change
        return {k: _jsonable(v) for k, v in out.items()}


@dataclass(frozen=True)
class DriftReport:
    """Every compared feature of one (reference, target) pair; immutable."""

    kind: Kind
    reference_rows: int
    target_rows: int
    features: tuple[FeatureDrift, ...]
    thresholds: DriftThresholds

    @property
    def worst_band(self) -> Band | None:
        """The most severe band raised on any feature; None when no feature could be judged."""
        bands = [f.band for f in self.features if f.band is not None]
        return max(bands) if bands else None

    def __getitem__(self, name: str) -> FeatureDrift:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(f"feature {name!r} was not compared; compared: {self.names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def drifted(self, at_least: Band = Band.WATCH) -> tuple[str, ...]:
        """Names of the features whose band is ``at_least`` or worse."""
        return tuple(f.name for f in self.features if f.band is not None and f.band >= at_least)

    def alerts(self) -> tuple[str, ...]:
        return self.drifted(Band.ALERT)

    def to_dict(self) -> dict[str, Any]:
        worst = self.worst_band
        return {
            "kind": self.kind,
            "reference_rows": self.reference_rows,
            "target_rows": self.target_rows,
            "worst_band": None if worst is None else str(worst),
            "drifted": list(self.drifted()),
            "alerts": list(self.alerts()),
            "thresholds": self.thresholds.model_dump(mode="json"),
            "features": [f.to_dict() for f in self.features],
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no inf/nan
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _rows(view: DatasetProfileView) -> int:
    counts = [c.get_metric("counts") for c in view.get_columns().values()]
    return max((int(c.n.value) for c in counts if c is not None), default=0)


def _infer_role(column: ColumnProfileView) -> Role | None:
    types = column.get_metric("types")
    dist = column.get_metric("distribution")
    textual = types is not None and (types.string.value + types.boolean.value) > 0
    if dist is not None and dist.n > 0 and not textual:
        return "numeric"
    if column.get_metric("frequent_items") is not None:
        return "categorical"
    return None


def _roles(reference: DatasetProfileView) -> dict[str, Role]:
    roles = roles_from_metadata(reference.metadata)
    for name, column in reference.get_columns().items():
        if name not in roles and (role := _infer_role(column)) is not None:
            roles[name] = role  # a view from why.log: decide from what it tracked
    return roles


def compare_profiles(
    reference: DatasetProfileView,
    target: DatasetProfileView,
    *,
    thresholds: DriftThresholds | None = None,
    columns: Iterable[str] | None = None,
    kind: Kind = "data",
) -> DriftReport:
    """Drift of every profiled feature of ``target`` against ``reference``, from sketches alone.

    Args:
        reference: the baseline (training features, or the reference window).
        target: the window to judge (serving features, decisions' inputs, scores).
        thresholds: bands and sample-size settings; default banking bands.
        columns: features to compare; default every column profiled in the reference.
        kind: a label for the report (data, prediction or skew); it changes nothing else.

    Returns:
        A :class:`DriftReport`; a feature absent from the target is an alert.
    """
    thresholds = thresholds or DriftThresholds()
    roles = _roles(reference)
    names = list(roles) if columns is None else list(columns)
    unknown = [n for n in names if n not in roles]
    if unknown:
        raise KeyError(
            f"cannot compare {unknown}: the reference profile does not track them "
            f"(it has {sorted(roles)})"
        )
    features = tuple(
        _compare_column(
            name,
            roles[name],
            reference.get_column(name),
            target.get_column(name),
            thresholds.for_feature(name),
        )
        for name in names
    )
    return DriftReport(
        kind=kind,
        reference_rows=_rows(reference),
        target_rows=_rows(target),
        features=features,
        thresholds=thresholds,
    )


def _null_rate(column: ColumnProfileView) -> tuple[int, float]:
    counts = column.get_metric("counts")
    n = int(counts.n.value)
    return n, (int(counts.null.value) / n if n else 0.0)


def _compare_column(
    name: str,
    role: Role,
    ref: ColumnProfileView,
    tgt: ColumnProfileView | None,
    th: DriftThresholds,
) -> FeatureDrift:
    n_ref, null_ref = _null_rate(ref)
    if tgt is None:
        return FeatureDrift(
            name=name, role=role, reference_rows=n_ref, target_rows=0, band=Band.ALERT,
            reasons=(f"{name} is absent from the target profile (was it dropped upstream?)",),
            null_rate_reference=null_ref,
        )  # fmt: skip
    n_tgt, null_tgt = _null_rate(tgt)
    judged = n_ref >= th.min_rows and n_tgt >= th.min_rows
    stats = _numeric(ref, tgt, th) if role == "numeric" else _categorical(ref, tgt, th)
    band, reasons = Band.STABLE, []
    if judged:
        for raised, why in _bands(stats, n_ref, null_ref, n_tgt, null_tgt, th):
            band = max(band, raised)
            reasons.append(why)
    else:
        reasons.append(f"not judged: {min(n_ref, n_tgt)} rows < min_rows {th.min_rows}")
    return FeatureDrift(
        name=name,
        role=role,
        reference_rows=n_ref,
        target_rows=n_tgt,
        band=band if judged else None,
        reasons=tuple(reasons),
        null_rate_reference=null_ref,
        null_rate_target=null_tgt,
        **stats,
    )


def _psi_fields(bins: st.Bins, n_ref: int, n_tgt: int, confidence: float) -> dict[str, Any]:
    """PSI, its critical values (over the bins either side occupies; values, nulls aside), JS."""
    size = int(((bins.reference > 0) | (bins.target > 0)).sum())
    return {
        "psi": st.psi(bins.reference, bins.target),
        "psi_critical": st.psi_critical(n_ref, n_tgt, size, confidence),
        "psi_critical_95": st.psi_critical(n_ref, n_tgt, size, 0.95),
        "psi_critical_99": st.psi_critical(n_ref, n_tgt, size, 0.99),
        "js_distance": st.js_distance(bins.reference, bins.target),
        "bins": bins.labels,
        "edges": bins.edges,
        "reference_shares": tuple(float(x) for x in bins.reference),
        "target_shares": tuple(float(x) for x in bins.target),
    }


def _numeric(ref: ColumnProfileView, tgt: ColumnProfileView, th: DriftThresholds) -> dict:
    rd, td = ref.get_metric("distribution"), tgt.get_metric("distribution")
    if rd is None or td is None or rd.n == 0 or td.n == 0:
        return {}  # no values on one side: only the null rate can speak
    rk, tk = rd.kll.value, td.kll.value
    n_ref, n_tgt = int(rd.n), int(td.n)
    bins = st.numeric_bins(rk, tk, th.bins)
    ks = st.ks_statistic(rk, tk)
    scale = rd.stddev
    if not scale or not math.isfinite(scale):
        q1, q3 = rk.get_quantiles([0.25, 0.75])
        scale = (q3 - q1) or 1.0
    return {
        **_psi_fields(bins, n_ref, n_tgt, th.confidence),
        "ks": ks,
        "ks_pvalue": st.ks_pvalue(ks, n_ref, n_tgt),
        "wasserstein_norm": st.wasserstein(rk, tk) / scale,
    }


def _categorical(ref: ColumnProfileView, tgt: ColumnProfileView, th: DriftThresholds) -> dict:
    rf, tf = ref.get_metric("frequent_items"), tgt.get_metric("frequent_items")
    rc, tc = ref.get_metric("counts"), tgt.get_metric("counts")
    n_ref = int(rc.n.value - rc.null.value)
    n_tgt = int(tc.n.value - tc.null.value)
    if rf is None or tf is None or n_ref == 0 or n_tgt == 0:
        return {}
    rs, ts = rf.frequent_strings.value, tf.frequent_strings.value
    bins = st.category_bins(rs, ts, n_ref, n_tgt, th.max_categories)
    chi2, pvalue = st.chi_square(bins, n_ref, n_tgt)
    unseen = st.new_categories(rs, ts)
    return {
        **_psi_fields(bins, n_ref, n_tgt, th.confidence),
        "chi2": chi2,
        "chi2_pvalue": pvalue,
        "new_categories": tuple(value for value, _ in unseen),
        "new_category_share": sum(count for _, count in unseen) / n_tgt,
    }


def _level(value: float, warn: float, alert: float) -> Band:
    return Band.ALERT if value > alert else Band.WATCH if value > warn else Band.STABLE


def _bands(
    stats: dict, n_ref: int, null_ref: float, n_tgt: int, null_tgt: float, th: DriftThresholds
) -> Iterable[tuple[Band, str]]:
    """(band, reason) for each test that raised one; PSI needs band AND critical value."""
    value = stats.get("psi")
    if value is not None:
        critical = stats["psi_critical"]
        level = _level(value, th.psi_warn, th.psi_alert)
        if level > Band.STABLE and value > critical:
            limit = th.psi_alert if level == Band.ALERT else th.psi_warn
            yield level, f"PSI {value:.3f} > {limit} (critical {critical:.3f} at {th.confidence})"
    change = abs(null_tgt - null_ref)
    level = _level(change, th.null_rate_warn, th.null_rate_alert)
    z = st.proportion_z(null_ref, n_ref, null_tgt, n_tgt)
    z_critical = st.normal_quantile(th.confidence)
    if level > Band.STABLE and abs(z) > z_critical:
        yield level, f"null rate {null_ref:.3f} -> {null_tgt:.3f} (z = {z:.1f})"
    share = stats.get("new_category_share", 0.0)
    level = _level(share, th.new_category_warn, th.new_category_alert)
    if level > Band.STABLE:
        shown = ", ".join(stats["new_categories"][:5])
        yield level, f"{share:.1%} of rows in categories the reference never saw ({shown})"
