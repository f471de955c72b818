"""Train, evaluate on the holdout, track in MLflow and register: one call per feature set."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Dataset, LoggedModel
from mlflow.tracking import MlflowClient

from riskops.features.families import derived_features
from riskops.features.plan import MIN_CATEGORY_COUNT, FeaturePlan
from riskops.specs import ModelSpec
from riskops.training.lineage import Lineage
from riskops.training.metrics import binary_metrics
from riskops.training.models import FittedModel, train_binned_logistic, train_lightgbm
from riskops.training.monotone import Constraints, carried_constraints
from riskops.training.plots import evaluation_plots
from riskops.training.publish import (
    experiment_id_for,
    log_fitted_model,
    log_run_results,
    register_version,
    tracked_run,
)
from riskops.training.split import Split, frame_digest, holdout_split, rows_digest, target01

HOLDOUT_FILE = "holdout/holdout.parquet"


@dataclass(frozen=True)
class TrainingResult:
    """What one training produced: the registered version, its runs and holdout metrics."""

    model_name: str
    version: str
    run_id: str
    benchmark_run_id: str | None
    metrics: dict[str, float]
    benchmark_metrics: dict[str, float] | None
    holdout_rows: int
    train_rows: int
    seconds: float
    experiment_id: str = ""
    model_id: str = ""  # the MLflow LoggedModel behind the version
    model_uri: str = ""  # models:/<name>/<version>
    split: dict[str, Any] | None = None
    phases: dict[str, float] | None = None  # seconds per phase

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class _Evaluated:
    fitted: FittedModel
    metrics: dict[str, float]  # train_*, holdout_*, validation_* and numeric fit facts
    plots: Path


def _check_inputs(
    spec: ModelSpec, features: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> None:
    keys = [c for c in (spec.target, spec.timestamp_column, spec.data.id_column) if c]
    missing = [c for c in [*numeric, *categorical, *keys] if c not in features.columns]
    if missing:
        raise ValueError(f"feature frame for {spec.name!r} lacks columns {missing}")
    leaking = sorted(set(keys) & {*numeric, *categorical})
    if leaking:
        raise ValueError(f"target, time or id columns listed as model inputs: {leaking}")
    id_column = spec.data.id_column
    if id_column and features[id_column].duplicated().any():
        dupes = features.loc[features[id_column].duplicated(), id_column].head(5).tolist()
        raise ValueError(f"id column {id_column!r} is not unique (e.g. {dupes})")


def _evaluate(fitted: FittedModel, split: Split, spec: ModelSpec, folder: Path) -> _Evaluated:
    metrics: dict[str, float] = {}
    scored = {}
    for side, frame in (("train", split.train), ("holdout", split.holdout)):
        scored[side] = (target01(frame[spec.target], spec), fitted.predict_proba_positive(frame))
        metrics |= {f"{side}_{k}": v for k, v in binary_metrics(*scored[side]).items()}
    for key, value in fitted.metadata.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[key] = float(value)
    plots = folder / fitted.algorithm / "plots"
    label = f"{spec.name} {fitted.algorithm}"
    evaluation_plots(*scored["holdout"], fitted.feature_importance(), plots, label=label)
    return _Evaluated(fitted, metrics, plots)


def _datasets(spec: ModelSpec, lineage: Lineage, split: Split) -> dict[str, Dataset]:
    source = json.dumps({"uri": lineage.featureset_uri, "version": lineage.featureset_version})
    return {
        side: Dataset(
            name=f"{spec.name}-{side}",
            digest=frame_digest(frame),
            source_type="riskops-featureset",
            source=source,
            profile=json.dumps({"num_rows": len(frame), "split": split.description["method"]}),
        )
        for side, frame in (("train", split.train), ("holdout", split.holdout))
    }


def _constraints(spec: ModelSpec, numeric: Sequence[str], plan: FeaturePlan | None) -> Constraints:
    """The spec's monotonic rules carried over to derived inputs (finding 6)."""
    # Without a plan, the family's definitions name the derived inputs: a derived copy of a
    # constrained column must never go unconstrained because the caller gave no plan.
    definitions = plan.derived if plan is not None else derived_features(spec.family)
    return carried_constraints(spec, numeric, definitions)


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def train_and_register(
    *,
    client: MlflowClient,
    spec: ModelSpec,
    features: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    lineage: Lineage,
    seed: int = 42,
    progress: Callable[[str], None] | None = None,
    lightgbm_params: Mapping[str, Any] | None = None,
    split: Split | None = None,
    plan: FeaturePlan | None = None,
) -> TrainingResult:
    """Split, fit the LightGBM candidate (and for credit the scorecard benchmark), log, register.

    Each model gets its own run in experiment ``riskops/<name>`` (the benchmark tagged
    ``riskops.role=benchmark``); the candidate run also holds a copy of the holdout rows (for
    people; validation uses the split the platform recorded), and the candidate becomes a new
    version of the registered model ``spec.name``. ``split`` is the split the caller records
    (default: :func:`holdout_split` of ``features``); ``plan`` the feature plan, whose
    definitions carry the spec's monotonic constraints over to derived inputs.
    """
    say = progress or (lambda _message: None)
    began = time.perf_counter()
    phases: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        phases[name] = round(time.perf_counter() - start, 3)

    _check_inputs(spec, features, numeric, categorical)
    constraints = _constraints(spec, numeric, plan)
    for reason in constraints.dropped.values():
        say(reason)
    numeric = [n for n in numeric if n not in constraints.dropped]
    monotone = {k: v for k, v in constraints.directions.items() if v and k in numeric}
    min_count = plan.min_category_count if plan is not None else MIN_CATEGORY_COUNT
    with phase("split"):
        split = split if split is not None else holdout_split(features, spec, seed=seed)
    info = split.description
    say(
        f"split by {info['method']}: {info['train_rows']} train, {info['holdout_rows']} holdout"
        + (f", {info['embargo_rows']} embargoed" if info.get("embargo_rows") else "")
    )
    y_train = target01(split.train[spec.target], spec)
    with phase("fit_lightgbm"):
        candidate = train_lightgbm(
            split.train,
            numeric,
            categorical,
            y_train,
            seed=seed,
            family=spec.family,
            time_column=spec.timestamp_column,
            monotone=monotone,
            params=lightgbm_params,
            min_category_count=min_count,
        )
    say(f"lightgbm: {candidate.metadata['best_iteration']} trees")
    models = [candidate]
    if spec.family == "credit_scoring":
        with phase("fit_benchmark"):
            models.append(
                train_binned_logistic(
                    split.train,
                    numeric,
                    categorical,
                    y_train,
                    monotone=monotone,
                    min_category_count=min_count,
                )
            )
        say("benchmark: binned logistic scorecard fitted")

    with tempfile.TemporaryDirectory(prefix="riskops-train-") as tmp:
        folder = Path(tmp)
        with phase("metrics_plots"):
            evaluated = [_evaluate(model, split, spec, folder) for model in models]
            datasets = _datasets(spec, lineage, split)
        say(f"holdout AUC {evaluated[0].metrics['holdout_auc']:.4f}")

        with phase("logging_registration"):
            holdout_dir = folder / "holdout"
            holdout_dir.mkdir()
            split.holdout.to_parquet(holdout_dir / "holdout.parquet", index=False)
            split_info = {
                **info,
                "holdout_digest": datasets["holdout"].digest,
                "holdout_rows_digest": rows_digest(split.holdout),
                "columns": {"numeric": list(numeric), "categorical": list(categorical)},
                "monotone_constraints": monotone,
                "dropped_features": constraints.dropped,
            }
            (holdout_dir / "split.json").write_text(json.dumps(split_info, indent=1, default=str))
            experiment_id = experiment_id_for(client, spec)
            extra_params = {
                "seed": seed,
                "split_method": info["method"],
                "test_share": info["test_share"],
                "n_numeric": len(numeric),
                "n_categorical": len(categorical),
            }
            base_tags = {
                **lineage.tags(),
                "riskops.model": spec.name,
                "riskops.family": spec.family,
                "mlflow.user": lineage.trainer,
            }
            if lineage.code_version != "unknown":
                base_tags["mlflow.source.git.commit"] = lineage.code_version

            @contextlib.contextmanager
            def publish(
                item: _Evaluated, role: str, tags: Mapping[str, str]
            ) -> Iterator[tuple[str, LoggedModel]]:
                """Log one fitted model into its own run; the body runs inside the open run."""
                fitted = item.fitted
                tags = {
                    **base_tags,
                    **tags,
                    "riskops.role": role,
                    "riskops.algorithm": fitted.algorithm,
                }
                with tracked_run(client, experiment_id, f"{spec.name}-{role}", tags) as run_id:
                    logged = log_fitted_model(
                        client,
                        experiment_id=experiment_id,
                        run_id=run_id,
                        fitted=fitted,
                        input_example=split.holdout.head(5),
                        tags=tags,
                    )
                    log_run_results(
                        client,
                        run_id,
                        params={**fitted.params, **extra_params},
                        metrics=item.metrics,
                        datasets=datasets,
                        model_id=logged.model_id,
                        plots=item.plots,
                        fit_info={
                            "algorithm": fitted.algorithm,
                            "metadata": fitted.metadata,
                            "feature_importance": fitted.feature_importance(),
                        },
                    )
                    yield run_id, logged

            benchmark_run_id = None
            if len(evaluated) > 1:
                with publish(evaluated[1], "benchmark", {}) as (benchmark_run_id, _):
                    client.log_dict(benchmark_run_id, split_info, "holdout/split.json")
                say(f"benchmark run {benchmark_run_id}")

            links = {"riskops.benchmark_run_id": benchmark_run_id} if benchmark_run_id else {}
            with publish(evaluated[0], "candidate", links) as (run_id, logged):
                client.log_artifacts(run_id, str(holdout_dir), "holdout")
                version = register_version(
                    client,
                    spec=spec,
                    logged=logged,
                    run_id=run_id,
                    tags={
                        **lineage.tags(),
                        **links,
                        "riskops.run_id": run_id,
                        "riskops.logged_model_id": logged.model_id,
                        "riskops.algorithm": candidate.algorithm,
                        "riskops.holdout_uri": f"runs:/{run_id}/{HOLDOUT_FILE}",
                        "riskops.holdout_digest": datasets["holdout"].digest,
                    },
                    description=f"LightGBM candidate on feature set {lineage.featureset_version}"
                    f"; holdout AUC {evaluated[0].metrics['holdout_auc']:.4f}",
                )
                client.set_tag(run_id, "riskops.model_version", str(version.version))
            say(f"registered {spec.name} version {version.version}")

    return TrainingResult(
        model_name=spec.name,
        version=str(version.version),
        run_id=run_id,
        benchmark_run_id=benchmark_run_id,
        metrics=_finite(evaluated[0].metrics),
        benchmark_metrics=_finite(evaluated[1].metrics) if len(evaluated) > 1 else None,
        holdout_rows=len(split.holdout),
        train_rows=len(split.train),
        seconds=round(time.perf_counter() - began, 3),
        experiment_id=experiment_id,
        model_id=logged.model_id,
        model_uri=f"models:/{spec.name}/{version.version}",
        split=split_info,
        phases=phases,
    )
