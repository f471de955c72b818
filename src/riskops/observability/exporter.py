"""Platform metrics for Prometheus: what the monitoring loop and the records know.

The scoring service exports what happens per request; this collector exports what lives in the
platform DB and the registry, read afresh on every scrape: the newest drift comparison per model
and kind (PSI and band per feature), whether the MLflow champion alias agrees with the promotion
records, and how long ago outcome labels last landed against the model's outcome window. It is
served on the governance API's ``GET /metrics`` (:func:`metrics_route`), open on loopback like
the scoring service's, otherwise behind a principal's key.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlmodel import Session, col, func, select

from riskops import ledger
from riskops.governance.promotion import current_champion, history
from riskops.platform import Platform
from riskops.records import DriftResult, LabelsFile, ModelSpecRecord
from riskops.specs import SpecError, parse_spec

log = logging.getLogger(__name__)

BANDS = {"stable": 0, "watch": 1, "alert": 2}
DAY = 86400.0

# Every metric this collector can export (the dashboards' and rules' checks read this).
METRICS = (
    "riskops_drift_psi",
    "riskops_drift_band",
    "riskops_drift_worst_band",
    "riskops_drift_compared_timestamp_seconds",
    "riskops_champion_registry_version",
    "riskops_champion_recorded_version",
    "riskops_champion_mismatch",
    "riskops_labels_last_landed_timestamp_seconds",
    "riskops_labels_seconds_since_landed",
    "riskops_labels_outcome_window_seconds",
    "riskops_labels_overdue",
    "riskops_platform_exporter_source_up",
)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _version_number(version: str | None) -> float | None:
    try:
        return float(version) if version is not None else None
    except ValueError:
        return None


class PlatformCollector(Collector):
    """A prometheus_client collector over one platform's DB and MLflow registry."""

    def __init__(self, platform: Platform, *, now: Callable[[], float] = time.time) -> None:
        self.platform = platform
        self._now = now

    def describe(self) -> list:  # no metadata at registration: collect() reads the DB
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "riskops_platform_exporter_source_up",
            "1 when the exporter could read the source (db, registry) on this scrape.",
            labels=["source"],
        )
        try:
            with Session(self.platform.engine) as session:
                specs = {r.name: r for r in ledger.list_specs(session=session)}
                recorded = {m: history(session=session, model=m) for m in specs}
                families = [
                    *self._drift(session, list(specs)),
                    *self._labels(session, specs, recorded),
                ]
        except Exception as error:  # the DB is down: say so in a metric, not in a 500
            log.warning("platform exporter: reading the platform DB failed: %s", error)
            up.add_metric(["db"], 0)
            up.add_metric(["registry"], 0)
            yield up
            return
        up.add_metric(["db"], 1)
        yield from families
        registry_ok = True
        try:
            yield from self._champions(recorded)
        except Exception as error:
            registry_ok = False
            log.warning("platform exporter: reading the MLflow registry failed: %s", error)
        up.add_metric(["registry"], 1 if registry_ok else 0)
        yield up

    # --- drift -----------------------------------------------------------------------------
    def _drift(self, session: Session, models: list[str]) -> list[GaugeMetricFamily]:
        psi = GaugeMetricFamily(
            "riskops_drift_psi",
            "PSI of a feature in the newest drift comparison of its model and kind.",
            labels=["model", "version", "kind", "feature"],
        )
        band = GaugeMetricFamily(
            "riskops_drift_band",
            "Band of a feature in the newest drift comparison: 0 stable, 1 watch, 2 alert.",
            labels=["model", "version", "kind", "feature"],
        )
        worst = GaugeMetricFamily(
            "riskops_drift_worst_band",
            "Worst band of the newest drift comparison per model and kind (0, 1, 2).",
            labels=["model", "version", "kind"],
        )
        compared = GaugeMetricFamily(
            "riskops_drift_compared_timestamp_seconds",
            "When the newest drift comparison of the model and kind was recorded (Unix time).",
            labels=["model", "version", "kind"],
        )
        newest = (
            select(DriftResult.model, DriftResult.kind, func.max(DriftResult.id).label("id"))
            .where(col(DriftResult.model).in_(models))
            .group_by(col(DriftResult.model), col(DriftResult.kind))
            .subquery()
        )
        rows = session.exec(
            select(DriftResult).join(newest, col(DriftResult.id) == newest.c.id)
        ).all()
        for row in sorted(rows, key=lambda r: (r.model, r.kind)):
            key = [row.model, row.version, row.kind]
            compared.add_metric(key, _aware(row.created_at).timestamp())
            if row.worst_band in BANDS:
                worst.add_metric(key, BANDS[row.worst_band])
            for feature in row.features:
                name = str(feature.get("name"))
                if feature.get("psi") is not None:
                    psi.add_metric([*key, name], float(feature["psi"]))
                if feature.get("band") in BANDS:
                    band.add_metric([*key, name], BANDS[feature["band"]])
        return [psi, band, worst, compared]

    # --- champions -------------------------------------------------------------------------
    def _champions(self, recorded: dict[str, list]) -> Iterator[GaugeMetricFamily]:
        alias = GaugeMetricFamily(
            "riskops_champion_registry_version",
            "Version the MLflow champion alias points at (absent: no alias).",
            labels=["model"],
        )
        record = GaugeMetricFamily(
            "riskops_champion_recorded_version",
            "Champion version according to the platform's promotion records (absent: none).",
            labels=["model"],
        )
        mismatch = GaugeMetricFamily(
            "riskops_champion_mismatch",
            "1 when the MLflow champion alias and the promotion records disagree.",
            labels=["model"],
        )
        client = self.platform.mlflow
        for model, moves in recorded.items():
            in_registry = current_champion(client, model)
            in_records = moves[-1].version if moves else None
            for family, version in ((alias, in_registry), (record, in_records)):
                number = _version_number(version)
                if number is not None:
                    family.add_metric([model], number)
            mismatch.add_metric([model], 0 if in_registry == in_records else 1)
        yield from (alias, record, mismatch)

    # --- labels ----------------------------------------------------------------------------
    def _labels(
        self, session: Session, specs: dict[str, ModelSpecRecord], recorded: dict[str, list]
    ) -> list[GaugeMetricFamily]:
        last = GaugeMetricFamily(
            "riskops_labels_last_landed_timestamp_seconds",
            "When outcome labels last landed for the model (Unix time).",
            labels=["model"],
        )
        since = GaugeMetricFamily(
            "riskops_labels_seconds_since_landed",
            "Seconds since labels last landed, or since the first promotion when none did.",
            labels=["model"],
        )
        window = GaugeMetricFamily(
            "riskops_labels_outcome_window_seconds",
            "The spec's outcome window: labels are expected at least this often.",
            labels=["model"],
        )
        overdue = GaugeMetricFamily(
            "riskops_labels_overdue",
            "1 when no labels landed for longer than the outcome window since they were due.",
            labels=["model"],
        )
        landed = dict(
            session.exec(
                select(LabelsFile.model, func.max(LabelsFile.landed_at)).group_by(
                    col(LabelsFile.model)
                )
            ).all()
        )
        now = self._now()
        for model, record in specs.items():
            try:
                days = parse_spec(record.spec, f"platform DB spec {model}").outcome_window_days
            except SpecError as error:  # one unreadable spec must not hide every model's gauges
                log.warning("platform exporter: skipping the labels gauges of %s: %s", model, error)
                continue
            moves = recorded[model]
            newest = landed.get(model)
            if newest is not None:
                last.add_metric([model], _aware(newest).timestamp())
            start = _aware(newest) if newest is not None else None
            if start is None and moves:  # labels are due from the first decision on
                start = _aware(moves[0].moved_at)
            if start is None:
                continue  # never served, nothing is due
            age = now - start.timestamp()
            since.add_metric([model], age)
            if days:  # 0 or None: the spec sets no horizon, nothing can be overdue
                window.add_metric([model], days * DAY)
                overdue.add_metric([model], 1 if age > days * DAY else 0)
        return [last, since, window, overdue]


def platform_registry(platform: Platform, **kwargs: object) -> CollectorRegistry:
    """A registry of its own holding the platform collector (no global state)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(platform, **kwargs))  # type: ignore[arg-type]
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition format of ``registry``."""
    return generate_latest(registry)
