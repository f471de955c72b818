"""Feature sets and model versions in the platform DB, and the lineage walk between them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from riskops.db import insert_once
from riskops.records import (
    DatasetVersion,
    FeatureSetRecord,
    LandedObject,
    ModelVersionRecord,
)


def feature_set_id(model: str, version: str) -> str:
    return f"{model}-{version}"


def add_feature_set(*, session: Session, record: FeatureSetRecord) -> FeatureSetRecord:
    """Store a feature set once; the same version again returns the stored one."""
    return insert_once(session, record, lambda: session.get(FeatureSetRecord, record.id))


def add_model_version(*, session: Session, record: ModelVersionRecord) -> ModelVersionRecord:
    """Record a registered version once (the first record of a version stands)."""
    return insert_once(
        session,
        record,
        lambda: get_model_version(session=session, model=record.model, version=record.version),
    )


def get_model_version(*, session: Session, model: str, version: str) -> ModelVersionRecord | None:
    return session.exec(
        select(ModelVersionRecord).where(
            ModelVersionRecord.model == model, ModelVersionRecord.version == str(version)
        )
    ).first()


def version_for_feature_set(*, session: Session, feature_set_id: str) -> ModelVersionRecord | None:
    """The pipeline version trained on a feature set, if there is one (training is idempotent)."""
    return session.exec(
        select(ModelVersionRecord)
        .where(
            ModelVersionRecord.feature_set_id == feature_set_id,
            ModelVersionRecord.source == "pipeline",
        )
        .order_by(col(ModelVersionRecord.id))
    ).first()


def list_model_versions(*, session: Session, model: str) -> Sequence[ModelVersionRecord]:
    return session.exec(
        select(ModelVersionRecord)
        .where(ModelVersionRecord.model == model)
        .order_by(col(ModelVersionRecord.registered_at))
    ).all()


def lineage_of_version(*, session: Session, model: str, version: str) -> dict[str, Any]:
    """Walk back: model version → feature set → dataset version → landed file (hash, name)."""
    mv = get_model_version(session=session, model=model, version=version)
    if mv is None:
        raise LookupError(f"{model} version {version} is not in the riskops catalogue")
    fs = session.get(FeatureSetRecord, mv.feature_set_id) if mv.feature_set_id else None
    ds_id = mv.dataset_version_id or (fs.dataset_version_id if fs else None)
    ds = session.get(DatasetVersion, ds_id) if ds_id else None
    landed = None
    if ds is not None:
        landed = session.exec(
            select(LandedObject).where(
                LandedObject.model == ds.model, LandedObject.sha256 == ds.sha256
            )
        ).first()
    return {
        "model_version": mv.model_dump(mode="json"),
        "feature_set": fs.model_dump(mode="json", exclude={"manifest"}) if fs else None,
        "dataset_version": ds.model_dump(mode="json") if ds else None,
        "landed": landed.model_dump(mode="json") if landed else None,
    }


def versions_trained_on(
    *, session: Session, model: str, sha256_prefix: str
) -> list[dict[str, Any]]:
    """Walk forward: a landed file's hash (or its prefix) → the model versions built from it."""
    datasets = session.exec(
        select(DatasetVersion).where(
            DatasetVersion.model == model, col(DatasetVersion.sha256).startswith(sha256_prefix)
        )
    ).all()
    out = []
    for ds in datasets:
        versions = session.exec(
            select(ModelVersionRecord).where(ModelVersionRecord.dataset_version_id == ds.id)
        ).all()
        out.append(
            {
                "dataset_version": ds.id,
                "sha256": ds.sha256,
                "model_versions": [v.version for v in versions],
            }
        )
    return out
