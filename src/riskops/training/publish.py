"""Logging a fitted scorer as an MLflow 3 LoggedModel and registering it, through one client.

This is what ``mlflow.pyfunc.log_model`` does, spelled out against an explicit ``MlflowClient``
(no fluent run or tracking-URI globals): create the LoggedModel linked to the run, save a
models-from-code pyfunc (``scorers.py`` + plain-file artifacts, no pickle) with its signature and
input example, upload it, finalize it, and register ``models:/<model_id>`` as a model version.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModel,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    RunStatus,
)
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature, infer_signature
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, DataType, Schema

from riskops.specs import ModelSpec
from riskops.training import scorers
from riskops.training.models import FittedModel

MODEL_CODE = Path(scorers.__file__)
_BASE_REQUIREMENTS = ("mlflow", "numpy", "pandas")
_PARAMS_PER_BATCH = 100  # the tracking server's limit per log_batch request


def _requirements(algorithm: str) -> list[str]:
    names = [*_BASE_REQUIREMENTS, *(["lightgbm"] if algorithm == "lightgbm" else [])]
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def _signature(fitted: FittedModel, scores: np.ndarray) -> ModelSignature:
    """Every input column required (its values may be missing); numerics double, others string."""
    scorer = fitted.scorer
    inputs = Schema(
        [ColSpec(DataType.double, name) for name in scorer.numeric]
        + [ColSpec(DataType.string, name) for name in scorer.categorical]
    )
    return ModelSignature(inputs=inputs, outputs=infer_signature(None, scores).outputs)


def _already_exists(error: MlflowException) -> bool:
    return error.error_code == ErrorCode.Name(RESOURCE_ALREADY_EXISTS)


def log_fitted_model(
    client: MlflowClient,
    *,
    experiment_id: str,
    run_id: str,
    fitted: FittedModel,
    input_example: pd.DataFrame,
    name: str = "model",
    tags: Mapping[str, str] | None = None,
) -> LoggedModel:
    """Save ``fitted`` as a pyfunc, check the saved copy scores the same, log it to the run."""
    example = input_example[fitted.scorer.input_columns].reset_index(drop=True)
    expected = fitted.predict_proba_positive(example)
    signature = _signature(fitted, expected)
    params = {k: str(v)[:6000] for k, v in fitted.params.items()}
    logged = client.create_logged_model(
        experiment_id,
        name=name,
        source_run_id=run_id,
        tags={**(tags or {}), "riskops.algorithm": fitted.algorithm},
        params=params,
        model_type="riskops-scorer",
    )
    try:
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        with tempfile.TemporaryDirectory(prefix="riskops-model-") as tmp:
            files = fitted.scorer.save(Path(tmp) / "state")
            local = Path(tmp) / "model"
            description = Model(
                artifact_path=logged.artifact_location,
                run_id=run_id,
                model_uuid=logged.model_id,
                model_id=logged.model_id,
                metadata={"riskops_algorithm": fitted.algorithm},
            )
            mlflow.pyfunc.save_model(
                path=str(local),
                python_model=str(MODEL_CODE),
                artifacts=files,
                signature=signature,
                input_example=example,
                pip_requirements=_requirements(fitted.algorithm),
                mlflow_model=description,
            )
            got = np.asarray(mlflow.pyfunc.load_model(str(local)).predict(example), dtype=float)
            if got.shape != expected.shape or not np.allclose(got, expected, rtol=0, atol=1e-12):
                raise RuntimeError(
                    "the saved model does not reproduce the fitted model's scores "
                    f"(max difference {np.max(np.abs(got - expected)):.3g})"
                )
            client.log_model_artifacts(logged.model_id, str(local))
        return client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise


def ensure_registered_model(client: MlflowClient, spec: ModelSpec) -> None:
    """Create the registered model ``spec.name`` if missing; keep description and tags current."""
    tags = {"family": spec.family, "risk_class": spec.risk_class, "owner": spec.owner}
    try:
        client.create_registered_model(spec.name, tags=tags, description=spec.intended_use)
        return
    except MlflowException as error:
        if not _already_exists(error):
            raise
    current = client.get_registered_model(spec.name)
    if (current.description or "") != spec.intended_use:
        client.update_registered_model(spec.name, description=spec.intended_use)
    for key, value in tags.items():
        if current.tags.get(key) != value:
            client.set_registered_model_tag(spec.name, key, value)


def register_version(
    client: MlflowClient,
    *,
    spec: ModelSpec,
    logged: LoggedModel,
    run_id: str,
    tags: Mapping[str, str],
    description: str | None = None,
) -> ModelVersion:
    """A new version of ``spec.name`` whose source is the LoggedModel ``models:/<model_id>``."""
    ensure_registered_model(client, spec)
    fields = {"run_id": run_id, "tags": dict(tags), "description": description}
    try:
        return client.create_model_version(
            spec.name, f"models:/{logged.model_id}", model_id=logged.model_id, **fields
        )
    except MlflowException as error:
        # A registry opened straight on a database resolves models:/<id> through MLflow's
        # *global* tracking URI (sqlalchemy_store.create_model_version), which may name another
        # store; the LoggedModel's artifact location names the same files without that lookup.
        if "Unable to fetch model from model URI" not in error.message:
            raise
    return client.create_model_version(
        spec.name, logged.artifact_location, model_id=logged.model_id, **fields
    )


def experiment_id_for(client: MlflowClient, spec: ModelSpec) -> str:
    """Id of the experiment ``riskops/<model name>``, created (or restored) when needed."""
    name = f"riskops/{spec.name}"
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, tags={"riskops.model": spec.name})
        except MlflowException as error:
            if not _already_exists(error):
                raise
            experiment = client.get_experiment_by_name(name)
            assert experiment is not None
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


def describe(value: Any) -> str:
    """A parameter value as MLflow stores it (string, at most 6000 characters)."""
    return str(value)[:6000]


@contextlib.contextmanager
def tracked_run(
    client: MlflowClient, experiment_id: str, name: str, tags: Mapping[str, str]
) -> Iterator[str]:
    """An MLflow run that ends FINISHED, or FAILED (and re-raises) when the body fails."""
    run_id = client.create_run(experiment_id, run_name=name, tags=dict(tags)).info.run_id
    try:
        yield run_id
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))


def log_run_results(
    client: MlflowClient,
    run_id: str,
    *,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    datasets: Mapping[str, Dataset],
    model_id: str,
    plots: Path,
    fit_info: Mapping[str, Any],
) -> None:
    """Inputs, params, metrics (linked to the model and, by prefix, to a dataset), plots."""
    client.log_inputs(
        run_id,
        [
            DatasetInput(data, [InputTag("mlflow.data.context", side)])
            for side, data in datasets.items()
        ],
    )
    items = [Param(key, describe(value)) for key, value in sorted(params.items())]
    for start in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + _PARAMS_PER_BATCH])
    now = int(time.time() * 1000)
    entries = []
    for key, value in sorted(metrics.items()):
        data = datasets.get(key.split("_", 1)[0])  # holdout_auc -> the holdout dataset
        entries.append(
            Metric(
                key,
                float(value),
                now,
                0,
                model_id=model_id,
                dataset_name=data.name if data else None,
                dataset_digest=data.digest if data else None,
            )
        )
    client.log_batch(run_id, metrics=entries)
    client.log_artifacts(run_id, str(plots), "plots")
    client.log_dict(run_id, dict(fit_info), "training/fit.json")
