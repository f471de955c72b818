"""Load a registered version for serving: artifact, spec, feature plan, checks, warm-up.

Everything expensive happens here, once per version and off the request path: the artifact is
downloaded through the platform's MLflow client, its scorer state read without unpickling, the
feature plan and vocabulary taken from the feature set the version was trained on, and the
version is refused (:class:`LoadRefused`) unless

* it is the champion the platform's records say should serve (an alias moved by hand in MLflow
  does not serve: the reconciler's mismatch, not a new champion), or, for a challenger, a version
  whose validation passed;
* the artifact's signature names exactly the inputs the feature plan builds;
* the fast path scores the platform's holdout rows as the registered pyfunc does (1e-9).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.artifacts
import numpy as np
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from sqlmodel import select

from riskops import catalog
from riskops.db import session_scope
from riskops.features.definitions import MISSING, UNSEEN, WHITESPACE
from riskops.features.online import OnlineFeatureBuilder, OnlineRow
from riskops.features.online_store import EventStore
from riskops.features.plan import FeaturePlan
from riskops.governance.promotion import recorded_champion
from riskops.platform import Platform
from riskops.records import FeatureSetRecord, ValidationRecord
from riskops.serving.engines import engine_for
from riskops.serving.schema import RequestSchema
from riskops.serving.served import Bands, LoadRefused, ServedModel
from riskops.specs import ModelSpec
from riskops.training.scorers import artifact_digest, load_scorer
from riskops.validation.explain import reason_groups, reference_values

log = logging.getLogger(__name__)
WARM_ROWS = 256
CHAMPION, CHALLENGER = "champion", "challenger"


class PassthroughBuilder:
    """Model inputs taken from the request, for a version trained on its own columns (no
    plan): numbers as they come, categories normalised as the feature build does (stripped,
    lower case; blank is ``__missing__``; a value the model never saw is ``__unseen__``,
    counted), the entity pseudonymised."""

    def __init__(
        self,
        inputs: Sequence[str],
        categories: Mapping[str, Sequence[str]],
        *,
        entity_column: str | None,
        pseudonym_key: str,
    ) -> None:
        self.inputs = list(inputs)
        self.known = {name: frozenset(values) for name, values in categories.items()}
        self.entity_column = entity_column
        self._key = pseudonym_key.encode("utf-8")

    def compute(self, record: Mapping[str, Any], *, record_event: bool = True) -> OnlineRow:
        """The record's inputs; a missing number is NaN."""
        features: dict[str, Any] = {}
        unseen: list[str] = []
        for name in self.inputs:
            value = record.get(name)
            known = self.known.get(name)
            if known is None:
                features[name] = float("nan") if value is None else value
                continue
            text = None if value is None else str(value).strip(WHITESPACE).lower() or None
            if text is None:
                text = MISSING
            elif text not in known:
                text = UNSEEN
                unseen.append(name)
            features[name] = text
        entity = record.get(self.entity_column) if self.entity_column else None
        pseudonym = (
            None if entity is None
            else hmac.new(self._key, str(entity).encode("utf-8"), hashlib.sha256).hexdigest()
        )  # fmt: skip
        return OnlineRow(features=features, unseen=tuple(unseen), entity=pseudonym)


def _artifact_files(model_dir: Path) -> tuple[dict[str, str], list[str] | None]:
    """(scorer artifact files, signature input names) from a downloaded pyfunc directory."""
    meta_path = model_dir / "MLmodel"
    if not meta_path.exists():
        raise LoadRefused(f"{model_dir} holds no MLmodel file: not an MLflow model")
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) or {}
    pyfunc = (meta.get("flavors") or {}).get("python_function") or {}
    files: dict[str, str] = {}
    for name, entry in (pyfunc.get("artifacts") or {}).items():
        path = entry.get("path") if isinstance(entry, dict) else None
        if path:
            files[name] = str(model_dir / path)
    if "scorer" not in files:
        raise LoadRefused(
            "the artifact has no riskops scorer state (scorer.json): only models logged by the "
            "riskops training stage (or riskops.training.publish) can be served"
        )
    names = None
    signature = meta.get("signature") or {}
    if signature.get("inputs"):
        inputs = yaml.safe_load(signature["inputs"]) if isinstance(signature["inputs"], str) else []
        names = [spec.get("name") for spec in inputs or [] if isinstance(spec, dict)]
    return files, names


def _pyfunc_scores(model_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Any type hint is inferred")
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(str(model_dir))
        return np.asarray(model.predict(frame), dtype=np.float64).ravel()


def raw_input_fields(schema: RequestSchema, spec: ModelSpec) -> tuple[str, ...]:
    """The request fields the decision log may keep raw: an allow-list, the spec's declared
    feature columns that the request carries as numbers or categories, never the entity, the
    time, the id column or a protected attribute (a field's kind alone is inferred, and a column
    the spec does not declare as a feature is not kept)."""
    declared = set(spec.feature_columns)
    never = {spec.entity_column, spec.timestamp_column, spec.data.id_column,
             *spec.protected_attributes}  # fmt: skip
    return tuple(
        f.name
        for f in schema.fields.values()
        if f.name in declared and f.name not in never and f.kind in ("number", "category")
    )


def build_served(
    *,
    name: str,
    version: str,
    role: str,
    spec: ModelSpec,
    files: Mapping[str, str],
    signature: list[str] | None,
    plan: FeaturePlan | None,
    vocabulary: Mapping[str, Sequence[str]] | None,
    pseudonym_key: str,
    store: EventStore | None,
    sample: pd.DataFrame | None,
    reason_count: int = 4,
    reference_scores: np.ndarray | None = None,
) -> ServedModel:
    """Assemble and check a served model from its parts (the registry loader and the
    standalone server both come here). ``sample``: feature rows for warm-up and reference
    values; ``reference_scores``: what the registered model scores on them."""
    started = time.perf_counter()
    try:
        scorer = load_scorer(files)
        engine = engine_for(scorer)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LoadRefused(
            f"{name} v{version}: the scorer artifact does not load: {error}"
        ) from error
    if signature is not None and list(signature) != list(engine.inputs):
        raise LoadRefused(
            f"{name} v{version}: the artifact's signature {signature} does not match the "
            f"scorer's inputs {engine.inputs}"
        )
    categorical = sorted(engine.categorical)
    if plan is not None:
        if list(plan.features) != list(engine.inputs):
            raise LoadRefused(
                f"{name} v{version}: the model's inputs {engine.inputs} are not what its feature "
                f"plan builds {list(plan.features)}: the signature does not match the spec"
            )
        builder: Any = OnlineFeatureBuilder(
            plan, dict(vocabulary or {}), pseudonym_key=pseudonym_key, store=store, namespace=name
        )
        groups = reason_groups(plan.sources(), engine.inputs)
    else:
        missing = [c for c in engine.inputs if c not in spec.feature_columns]
        if missing:
            raise LoadRefused(
                f"{name} v{version}: inputs {missing} are neither spec features nor built by a "
                "feature plan; the version cannot be fed from a request"
            )
        builder = PassthroughBuilder(
            engine.inputs,
            {name: getattr(engine.scorer, "categories", {}).get(name, []) for name in categorical},
            entity_column=spec.entity_column,
            pseudonym_key=pseudonym_key,
        )
        groups = reason_groups(None, engine.inputs)
    schema = RequestSchema.from_spec(spec, plan, engine.inputs)
    bands = Bands.from_spec(spec)
    reference: dict[str, Any] = {}
    if sample is not None and len(sample):
        numeric = [c for c in engine.inputs if c not in engine.categorical]
        reference = reference_values(sample, numeric, categorical)
        rows = [
            {c: (None if _missing(v) else v) for c, v in zip(engine.inputs, values, strict=True)}
            for values in sample[engine.inputs].itertuples(index=False, name=None)
        ]
        for row in rows:
            for c in numeric:
                row[c] = float("nan") if row[c] is None else float(row[c])
        matrix = engine.matrix(rows)
        ours = engine.probabilities(matrix)
        engine.contributions(matrix[: min(32, len(rows))])  # warm the explainer
        if reference_scores is not None:
            worst = float(np.max(np.abs(ours - reference_scores))) if len(ours) else 0.0
            if not np.isfinite(worst) or worst > 1e-9:
                raise LoadRefused(
                    f"{name} v{version}: the serving path scores the holdout differently from "
                    f"the registered model (max difference {worst:.3g}); not served"
                )
    served = ServedModel(
        name=name,
        version=str(version),
        role=role,
        spec=spec,
        schema=schema,
        builder=builder,
        engine=engine,
        bands=bands,
        groups=groups,
        reference=reference,
        reason_count=reason_count,
        artifact_sha256=artifact_digest(files),
        files=dict(files),
        input_key=pseudonym_key.encode("utf-8"),
        plan=plan,
        vocabulary={c: list(v) for c, v in (vocabulary or {}).items()} if plan else None,
        input_fields=raw_input_fields(schema, spec) if plan is not None else (),
    )
    served.load_seconds = time.perf_counter() - started
    return served


def _input_example(model_dir: Path) -> pd.DataFrame | None:
    """The input example MLflow saved with the model, as a frame (None when there is none)."""
    from mlflow.models import Model

    try:
        example = Model.load(str(model_dir)).load_input_example(str(model_dir))
    except Exception as error:  # a missing or unreadable example file
        log.warning("serving: no input example in %s (%s)", model_dir, error)
        return None
    return example if isinstance(example, pd.DataFrame) else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def _allowed_to_serve(platform: Platform, name: str, version: str, role: str) -> None:
    with session_scope(platform.engine) as session:
        if role == CHAMPION:
            recorded = recorded_champion(session=session, model=name)
            if recorded != str(version):
                raise LoadRefused(
                    f"the registry's champion of {name} is v{version} but the platform's "
                    f"records say v{recorded}: an alias moved outside the platform is not served "
                    "(run `riskops reconcile --restore` or promote through the platform)",
                    retry=True,
                )
        record = session.exec(
            select(ValidationRecord).where(
                ValidationRecord.model == name, ValidationRecord.version == str(version)
            )
        ).first()
        if record is None or not record.passed:
            raise LoadRefused(
                f"{name} v{version} has not passed validation; it is not served", retry=True
            )


def _plan_of(platform: Platform, name: str, version: str) -> tuple[Any, Any]:
    with session_scope(platform.engine) as session:
        record = catalog.get_model_version(session=session, model=name, version=str(version))
        if record is None or not record.feature_set_id:
            return None, None
        featureset = session.get(FeatureSetRecord, record.feature_set_id)
        if featureset is None:
            raise LoadRefused(
                f"{name} v{version} names feature set {record.feature_set_id}, which is not in "
                "the platform DB"
            )
        manifest = featureset.manifest
    return FeaturePlan.from_dict(manifest["plan"]), manifest["vocabulary"]


def _holdout_sample(platform: Platform, spec: ModelSpec, name: str, version: str) -> Any:
    from riskops.stages.holdout import HoldoutError, platform_holdout

    try:
        holdout = platform_holdout(
            lake=platform.lake, engine=platform.engine, spec=spec, model=name,
            version=str(version), champion=None,
        )  # fmt: skip
    except (HoldoutError, LookupError, OSError, ValueError) as error:
        log.warning("serving: no platform holdout for %s v%s (%s); reasons say "
                    "'unfavourable' instead of high/low", name, version, error)  # fmt: skip
        return None
    frame = holdout.holdout
    return frame.sample(n=min(WARM_ROWS, len(frame)), random_state=0) if len(frame) else None


def resolve_version(platform: Platform, name: str, role: str) -> str | None:
    """The version ``role``'s alias names in the registry; None when there is no alias."""
    try:
        return str(platform.mlflow.get_model_version_by_alias(name, role).version)
    except MlflowException as error:
        if "not found" in error.message.lower():
            return None
        raise


def load_version(
    platform: Platform,
    name: str,
    role: str,
    *,
    store: EventStore | None,
    cache_dir: Path,
    reason_count: int = 4,
    version: str | None = None,
) -> ServedModel | None:
    """``version`` (default: the one ``role``'s alias names), loaded and checked; None when
    there is no alias."""
    from riskops.stages.validation import spec_of_version

    client = platform.mlflow
    version = version or resolve_version(platform, name, role)
    if version is None:
        return None
    mv = client.get_model_version(name, version)
    _allowed_to_serve(platform, name, version, role)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix=f"{name}-v{version}-", dir=cache_dir))
    uri = None
    if getattr(mv, "model_id", None):
        uri = client.get_logged_model(mv.model_id).artifact_location
    uri = uri or client.get_model_version_download_uri(name, version)
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(target), tracking_uri=client.tracking_uri
            )
        )
    except (MlflowException, OSError) as error:  # transient: the next poll tries again
        raise RuntimeError(
            f"{name} v{version}: downloading the artifact failed: {error}"
        ) from error
    files, signature = _artifact_files(local)
    spec = spec_of_version(platform.engine, name, version)
    plan, vocabulary = _plan_of(platform, name, version)
    sample = _holdout_sample(platform, spec, name, version)
    if sample is None:  # no platform holdout: the rows logged with the model, at least
        sample = _input_example(local)
    if sample is None or not len(sample):
        raise LoadRefused(
            f"{name} v{version}: neither a platform holdout nor an input example to check the "
            "serving path against the registered model; not served",
            retry=True,
        )
    columns = signature or list(sample.columns)
    try:
        reference_scores = _pyfunc_scores(local, sample[columns])
    except Exception as error:  # the registered model itself does not load
        raise LoadRefused(
            f"{name} v{version}: the registered model does not load: {error}"
        ) from error
    return build_served(
        name=name,
        version=version,
        role=role,
        spec=spec,
        files=files,
        signature=signature,
        plan=plan,
        vocabulary=vocabulary,
        pseudonym_key=platform.require_pseudonym_key(),
        store=store,
        sample=sample,
        reason_count=reason_count,
        reference_scores=reference_scores,
    )
