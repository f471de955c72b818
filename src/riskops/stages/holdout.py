"""The holdout the platform controls: recorded at training, rebuilt and checked at validation.

Training records, in the platform DB, which rows of the catalogued feature set were held out
(the split rule with its cut times, or the holdout ids) and the digest of those rows. Validation
never reads a holdout from MLflow: it rebuilds the rows from the feature set in the lake with
the recorded rule, and refuses the version when their digest is not the recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskops import audit, catalog
from riskops.db import insert_once, session_scope
from riskops.features.plan import FeaturePlan
from riskops.features.warmup import drop_warmup
from riskops.lake.base import Lake
from riskops.records import FeatureSetRecord, HoldoutRecord
from riskops.specs import ModelSpec
from riskops.training.split import Split, SplitRule, apply_split, rows_digest

PIPELINE = "pipeline"
RECORDER = "riskops-training"


class HoldoutError(RuntimeError):
    """The platform has no trustworthy holdout for a version; validation must not go on."""


@dataclass(frozen=True)
class PlatformHoldout:
    """The rebuilt rows of a recorded split, and where they come from."""

    holdout: pd.DataFrame
    train: pd.DataFrame
    record: HoldoutRecord
    featureset: FeatureSetRecord
    plan: FeaturePlan
    why: str  # whose holdout it is and why it was chosen

    def context(self) -> dict[str, Any]:
        """What a validation report says about the rows it was measured on."""
        return {
            "holdout_of_version": self.record.version,
            "holdout_feature_set": self.featureset.id,
            "holdout_method": self.record.method,
            "holdout_digest": self.record.holdout_digest,
            "holdout_embargo_days": self.record.rule.get("embargo_days", 0.0),
            "holdout_embargo_rows": self.record.embargo_rows,
            "holdout_chosen_because": self.why,
        }


def read_feature_rows(lake: Lake, featureset: FeatureSetRecord) -> pd.DataFrame:
    """The rows of a catalogued feature set, warm-up rows left out (as training saw them)."""
    with lake.local_tree(lake.key_of(featureset.uri)) as folder:
        frame = pd.read_parquet(folder / "data")
    return drop_warmup(frame, featureset.manifest["plan"])[0]


def record_holdout(
    *, session: Session, model: str, version: str, feature_set_id: str, split: Split
) -> HoldoutRecord:
    """Store the split of a pipeline-trained version once, and its digest in the audit chain."""
    if split.rule is None:
        raise ValueError(f"the split of {model} v{version} carries no rule to record")
    record = HoldoutRecord(
        model=model,
        version=str(version),
        feature_set_id=feature_set_id,
        method=split.rule.method,
        rule=split.rule.to_dict(),
        holdout_digest=rows_digest(split.holdout),
        train_digest=rows_digest(split.train),
        holdout_rows=len(split.holdout),
        train_rows=len(split.train),
        embargo_rows=split.embargoed,
    )
    stored = insert_once(session, record, lambda: _holdout_of(session, model, str(version)))
    if stored is record:
        audit.append(
            session=session, actor=RECORDER, action="holdout.recorded",
            subject=f"{model}/{version}",
            payload={"feature_set": feature_set_id, "method": record.method,
                     "holdout_digest": record.holdout_digest, "train_digest": record.train_digest,
                     "holdout_rows": record.holdout_rows, "embargo_rows": record.embargo_rows},
        )  # fmt: skip
    return stored


def _holdout_of(session: Session, model: str, version: str) -> HoldoutRecord | None:
    return session.exec(
        select(HoldoutRecord).where(HoldoutRecord.model == model, HoldoutRecord.version == version)
    ).first()


def _newest_pipeline_holdout(session: Session, model: str) -> HoldoutRecord | None:
    return session.exec(
        select(HoldoutRecord)
        .where(HoldoutRecord.model == model)
        .order_by(col(HoldoutRecord.recorded_at).desc(), col(HoldoutRecord.id).desc())
    ).first()


def _choose(
    session: Session, model: str, version: str, champion: str | None
) -> tuple[HoldoutRecord, str]:
    """The recorded holdout to score ``version`` on, and why that one."""
    mv = catalog.get_model_version(session=session, model=model, version=version)
    if mv is not None and mv.source == PIPELINE:
        record = _holdout_of(session, model, version)
        if record is None:
            raise HoldoutError(
                f"{model} v{version} was trained by the pipeline but the platform DB holds no "
                "holdout for it; validation refused. Retrain it through the pipeline."
            )
        return record, "its own holdout, recorded when the pipeline trained it"
    # A notebook version: what it was trained on is unknown, so it is scored on rows the
    # platform held out. The champion's holdout first: it is the bar the version must clear,
    # and the champion was never trained on it, so the champion gates compare fairly.
    if champion is not None:
        record = _holdout_of(session, model, champion)
        if record is not None:
            return record, f"registered outside the pipeline: the champion v{champion}'s holdout"
    record = _newest_pipeline_holdout(session, model)
    if record is None:
        raise HoldoutError(
            f"{model} v{version} was registered outside the pipeline and no pipeline-trained "
            f"version of {model} has a platform holdout to score it on; validation refused. "
            "Train a version through the pipeline first."
        )
    return record, (
        f"registered outside the pipeline: the holdout of v{record.version}, the newest "
        "pipeline-trained version (the champion has no platform holdout)"
    )


def _checked(
    side: str, frame: pd.DataFrame, expected: str, model: str, version: str, rec: HoldoutRecord
) -> None:
    found = rows_digest(frame)
    if found != expected:
        raise HoldoutError(
            f"the {side} rows rebuilt for {model} v{version} (split of v{rec.version} on feature "
            f"set {rec.feature_set_id}) do not match the platform record: expected digest "
            f"{expected}, found {found}. The feature set in the lake or the recorded split has "
            "changed since training; validation refused."
        )


def platform_holdout(
    *, lake: Lake, engine: Engine, spec: ModelSpec, model: str, version: str,
    champion: str | None,
) -> PlatformHoldout:  # fmt: skip
    """Rebuild the platform's holdout for ``version`` and check its digest (HoldoutError)."""
    with session_scope(engine) as session:
        record, why = _choose(session, model, str(version), champion)
        featureset = session.get(FeatureSetRecord, record.feature_set_id)
        if featureset is None:
            raise HoldoutError(
                f"the holdout of {model} v{record.version} names feature set "
                f"{record.feature_set_id}, which is not in the platform DB; validation refused"
            )
    split = apply_split(read_feature_rows(lake, featureset), spec, SplitRule.from_dict(record.rule))
    _checked("holdout", split.holdout, record.holdout_digest, model, version, record)
    _checked("training", split.train, record.train_digest, model, version, record)
    plan = FeaturePlan.from_dict(featureset.manifest["plan"])
    return PlatformHoldout(split.holdout, split.train, record, featureset, plan, why)
