"""Feature build stage: an accepted dataset version becomes a versioned feature set."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy.engine import Engine

from riskops import audit, catalog, events, ledger, outbox
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.features.featureset import build_feature_set, featureset_version
from riskops.features.plan import feature_plan
from riskops.features.session import spark_session
from riskops.lake.base import FEATURESETS, Lake
from riskops.monitoring.baselines import profile_feature_set, safely
from riskops.records import DatasetVersion, FeatureSetRecord
from riskops.settings import SparkSettings
from riskops.specs import ModelSpec

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class FeatureStageResult:
    record: FeatureSetRecord
    event: RiskopsEvent
    rebuilt: bool
    outbox_id: str | None = None  # None: the feature set existed already (not announced again)


def features_built_event(record: FeatureSetRecord, dataset: DatasetVersion) -> RiskopsEvent:
    return RiskopsEvent(
        name=events.FEATURES_BUILT,
        resource_id=events.featureset_resource(record.model, record.version),
        payload={
            "model": record.model,
            "featureset_version": record.version,
            "featureset_id": record.id,
            "uri": record.uri,
            "row_count": record.row_count,
            "dataset_version": dataset.id,
            "dataset_sha256": dataset.sha256,
            "definitions_hash": record.definitions_hash,
        },
        related=((events.dataset_resource(dataset.model, dataset.sha256), "dataset"),),
    )


def _already_built(
    engine: Engine, data_path: Path, spec: ModelSpec, dataset: DatasetVersion, code: str
) -> FeatureSetRecord | None:
    """The stored feature set of this exact input, if any (a re-delivered event, a retry)."""
    plan = feature_plan(spec, pq.read_schema(data_path).names)
    version = featureset_version(dataset.sha256, plan.definitions_hash(), code)
    with session_scope(engine) as session:
        return session.get(FeatureSetRecord, catalog.feature_set_id(spec.name, version))


def build_feature_stage(
    *,
    lake: Lake,
    engine: Engine,
    dataset_version_id: str,
    spark: SparkSettings,
    pseudonym_key: str,
    code_version: str,
    progress: Progress | None = None,
) -> FeatureStageResult:
    """Build (or find) the feature set of a dataset version, store it, and describe the event."""
    with session_scope(engine) as session:
        dataset = session.get(DatasetVersion, dataset_version_id)
        if dataset is None:
            raise LookupError(f"dataset version {dataset_version_id} is not in the platform DB")
        spec = ledger.spec_version(session=session, name=dataset.model, spec_hash=dataset.spec_hash)
    with lake.local_copy(lake.key_of(dataset.uri)) as data_path:
        existing = _already_built(engine, data_path, spec, dataset, code_version)
        if existing is not None:
            return FeatureStageResult(existing, features_built_event(existing, dataset), False)
        return _build(
            lake, engine, data_path, spec, dataset, spark, pseudonym_key, code_version, progress
        )


def _build(
    lake: Lake, engine: Engine, data_path: Path, spec: ModelSpec, dataset: DatasetVersion,
    spark: SparkSettings, pseudonym_key: str, code_version: str, progress: Progress | None,
) -> FeatureStageResult:  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="riskops-features-") as tmp,
        spark_session(**spark.session_options()) as session_,
    ):
        if progress is not None:
            progress(0.0, f"feature build on {spark.describe()}")
        out = Path(tmp) / "featureset"
        manifest = build_feature_set(
            session_, data_path, out, spec,
            dataset_version=dataset.id, dataset_sha256=dataset.sha256,
            code_version=code_version, pseudonym_key=pseudonym_key, progress=progress,
        )  # fmt: skip
        prefix = f"{FEATURESETS}/{spec.name}/{manifest.version}"
        rebuilt = not lake.exists(f"{prefix}/manifest.json")
        uri = lake.put_tree(prefix, out, last="manifest.json") if rebuilt else lake.uri(prefix)
        if rebuilt:
            with session_scope(engine) as session:  # for the monitor; never fails the build
                safely(f"feature set {manifest.version}", profile_feature_set, session, lake,
                       spec, out / "data", version=manifest.version,
                       numeric=manifest.numeric_features,
                       categorical=manifest.categorical_features)  # fmt: skip
    record = FeatureSetRecord(
        id=catalog.feature_set_id(spec.name, manifest.version),
        model=spec.name,
        version=manifest.version,
        dataset_version_id=dataset.id,
        uri=uri,
        row_count=manifest.row_count,
        definitions_hash=manifest.definitions_hash,
        code_version=code_version,
        manifest=manifest.to_dict(),
    )
    event_id = None
    with session_scope(engine) as session:
        stored = catalog.add_feature_set(session=session, record=record)
        if stored is record:  # new: record, audit and announce it in one transaction
            audit.append(
                session=session, actor="riskops-feature-build", action="features.built",
                subject=f"{spec.name}/featureset/{record.version}",
                payload={"dataset_version": dataset.id, "rows": record.row_count,
                         "definitions_hash": record.definitions_hash,
                         "code_version": code_version, "uri": record.uri},
            )  # fmt: skip
            event_id = outbox.enqueue(session=session, event=features_built_event(stored, dataset))
    return FeatureStageResult(stored, features_built_event(stored, dataset), rebuilt, event_id)
