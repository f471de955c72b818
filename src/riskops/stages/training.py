"""Training stage: a feature set becomes a tracked, registered model version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import Engine

from riskops import audit, catalog, events, ledger, outbox
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.features.plan import FeaturePlan
from riskops.lake.base import Lake
from riskops.records import DatasetVersion, FeatureSetRecord, ModelVersionRecord
from riskops.specs import ModelSpec
from riskops.stages.holdout import read_feature_rows, record_holdout
from riskops.training.lineage import NOT_FROM_IMAGE, Lineage
from riskops.training.split import holdout_split
from riskops.training.track import train_and_register


@dataclass(frozen=True)
class TrainingStageResult:
    record: ModelVersionRecord
    event: RiskopsEvent
    result: dict[str, Any]
    outbox_id: str | None = None


def model_registered_event(
    record: ModelVersionRecord, dataset: DatasetVersion, featureset: FeatureSetRecord
) -> RiskopsEvent:
    return RiskopsEvent(
        name=events.MODEL_REGISTERED,
        resource_id=events.model_resource(record.model, record.version),
        payload={
            "model": record.model,
            "version": record.version,
            "run_id": record.run_id,
            "source": record.source,
            "trainer": record.trainer,
            "metrics": record.metrics,
            "featureset_version": featureset.version,
            "dataset_version": dataset.id,
            "dataset_sha256": dataset.sha256,
        },
        related=(
            (events.dataset_resource(dataset.model, dataset.sha256), "dataset"),
            (events.featureset_resource(featureset.model, featureset.version), "featureset"),
            (f"riskops.mlflow-run.{record.run_id}", "run"),
        ),
    )


MIN_ROWS_PER_CLASS = 20


def _check_trainable(spec: ModelSpec, features: pd.DataFrame, dataset_id: str) -> None:
    """Refuse, with the counts, data that cannot give a meaningful model and holdout."""
    positives = int((features[spec.target].astype(str) == str(spec.positive_label)).sum())
    negatives = len(features) - positives
    if min(positives, negatives) < MIN_ROWS_PER_CLASS:
        raise ValueError(
            f"cannot train {spec.name} on dataset {dataset_id}: {len(features)} rows with "
            f"{positives} positive ({spec.positive_label!r}) and {negatives} other labels; "
            f"need at least {MIN_ROWS_PER_CLASS} of each. Land more data for this model."
        )


def train_stage(
    *,
    lake: Lake,
    engine: Engine,
    client: MlflowClient,
    feature_set_id: str,
    trainer: str,
    code_version: str,
    seed: int = 42,
    progress: Callable[[str], None] | None = None,
    image_digest: str = NOT_FROM_IMAGE,
) -> TrainingStageResult:
    """Train on a stored feature set, register the model, record the lineage and the holdout.

    ``code_version`` (the git commit) and ``image_digest`` (the container image, see
    :mod:`riskops.training.provenance`) are tagged on the run and on the version.

    The split is recorded in the platform DB (rule, cut times or ids, digests) beside the
    version, so that validation scores rows the platform chose, not rows the run logged.
    """
    with session_scope(engine) as session:
        featureset = session.get(FeatureSetRecord, feature_set_id)
        if featureset is None:
            raise LookupError(f"feature set {feature_set_id} is not in the platform DB")
        dataset = session.get(DatasetVersion, featureset.dataset_version_id)
        assert dataset is not None, f"dataset of feature set {feature_set_id} is missing"
        spec = ledger.spec_version(session=session, name=dataset.model, spec_hash=dataset.spec_hash)
        landing = ledger.get_landing(session=session, model=dataset.model, sha256=dataset.sha256)
    manifest = featureset.manifest
    features = read_feature_rows(lake, featureset)
    dropped = featureset.row_count - len(features)
    if progress and dropped > 0:
        progress(f"left out {dropped} warm-up rows (velocity windows not yet full)")
    _check_trainable(spec, features, dataset.id)
    split = holdout_split(features, spec, seed=seed)
    if split.embargoed:  # the embargo may leave too few labelled training rows of a class
        window = f"{spec.outcome_window_days}-day embargo before the holdout"
        _check_trainable(spec, split.train, f"{dataset.id} (training rows left by the {window})")
    lineage = Lineage(
        dataset_version=dataset.id,
        dataset_sha256=dataset.sha256,
        featureset_version=featureset.version,
        featureset_uri=featureset.uri,
        spec_hash=dataset.spec_hash,
        definitions_hash=featureset.definitions_hash,
        code_version=code_version,
        trainer=trainer,
        landed_event_id=landing.event_id if landing else None,
        image_digest=image_digest,
    )
    result = train_and_register(
        client=client,
        spec=spec,
        features=features,
        numeric=list(manifest["numeric_features"]),
        categorical=list(manifest["categorical_features"]),
        lineage=lineage,
        seed=seed,
        progress=progress,
        split=split,
        plan=FeaturePlan.from_dict(manifest["plan"]),
    )
    record = ModelVersionRecord(
        model=spec.name,
        version=str(result.version),
        run_id=result.run_id,
        feature_set_id=featureset.id,
        dataset_version_id=dataset.id,
        source="pipeline",
        trainer=trainer,
        metrics=dict(result.metrics),
    )
    event = model_registered_event(record, dataset, featureset)
    with session_scope(engine) as session:
        stored = catalog.add_model_version(session=session, record=record)
        event_id = None
        if stored is record:  # the registration, its holdout, audit row and event commit together
            record_holdout(
                session=session, model=spec.name, version=record.version,
                feature_set_id=featureset.id, split=split,
            )  # fmt: skip
            audit.append(
                session=session, actor=trainer, action="model.registered",
                subject=f"{spec.name}/{record.version}",
                payload={"run_id": record.run_id, "source": "pipeline",
                         "feature_set": featureset.id, "dataset_version": dataset.id,
                         "code_version": code_version, "image_digest": image_digest,
                         "metrics": dict(record.metrics)},
            )  # fmt: skip
            event_id = outbox.enqueue(session=session, event=event)
    return TrainingStageResult(stored, event, result.to_dict(), event_id)
