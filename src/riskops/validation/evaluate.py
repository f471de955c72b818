"""Validate a registered model version: fetch its holdout and model(s) through one client.

Nothing here touches MLflow's global tracking or registry URI: the version is resolved with the
given ``MlflowClient``, its artifacts are downloaded with that client's tracking URI
(``mlflow.artifacts.download_artifacts(..., tracking_uri=...)``) and loaded from the local copy
with ``mlflow.pyfunc.load_model(path)``. (``load_model("models:/name/version")`` would resolve the
name through the global registry URI, which may name another server.)
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.artifacts
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from riskops.specs import ModelSpec
from riskops.validation.explain import lightgbm_contributions, plan_sources
from riskops.validation.gates import run_gates
from riskops.validation.results import ContribFn, GateReport, ScoreFn

HOLDOUT_ARTIFACT = "holdout/holdout.parquet"  # riskops.training.track.HOLDOUT_FILE
_NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "boolean"})


@dataclass(frozen=True)
class LoadedVersion:
    """A registered version loaded locally: pyfunc model, input columns, optional TreeSHAP."""

    name: str
    version: str
    model: Any  # mlflow.pyfunc.PyFuncModel
    numeric: list[str]
    categorical: list[str]
    contributions: ContribFn | None

    @property
    def inputs(self) -> list[str]:
        """All input columns, in signature order."""
        return [*self.numeric, *self.categorical]

    def scorer(self) -> ScoreFn:
        """Positive-class probabilities for a frame holding (at least) the input columns."""
        columns = self.inputs

        def score(frame: pd.DataFrame) -> np.ndarray:
            return np.asarray(self.model.predict(frame[columns]), dtype=np.float64).ravel()

        return score


def _pyfunc() -> Any:
    with warnings.catch_warnings():
        # mlflow 3.17 warns about its own agent type hints on the first import of mlflow.pyfunc
        warnings.filterwarnings(
            "ignore", message=".*Any type hint is inferred", category=UserWarning
        )
        import mlflow.pyfunc

    return mlflow.pyfunc


def _input_columns(model: Any) -> tuple[list[str], list[str]]:
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        raise ValueError("the model has no named input signature; cannot choose its columns")
    numeric, categorical = [], []
    for spec in schema.inputs:
        kind = str(getattr(spec.type, "name", spec.type)).lower()
        (numeric if kind in _NUMERIC_TYPES else categorical).append(spec.name)
    return numeric, categorical


def _tree_contributions(model: Any) -> ContribFn | None:
    try:
        scorer = getattr(model.unwrap_python_model(), "scorer", None)
    except Exception:  # not a python-function model of ours: fall back to perturbation
        return None
    if getattr(scorer, "kind", None) == "lightgbm" and hasattr(scorer, "booster"):
        return lightgbm_contributions(scorer)
    return None


def load_version(client: MlflowClient, name: str, version: str, directory: Path) -> LoadedVersion:
    """Download version ``version`` of ``name`` with ``client`` into ``directory``; load it."""
    mv = client.get_model_version(name, str(version))
    uri = None
    if getattr(mv, "model_id", None):
        uri = client.get_logged_model(mv.model_id).artifact_location
    uri = uri or client.get_model_version_download_uri(name, str(version))
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=uri, dst_path=str(directory), tracking_uri=client.tracking_uri
    )
    model = _pyfunc().load_model(local)
    numeric, categorical = _input_columns(model)
    return LoadedVersion(
        name, str(version), model, numeric, categorical, _tree_contributions(model)
    )


def download_holdout(
    client: MlflowClient, name: str, version: str, directory: Path
) -> pd.DataFrame:
    """The exact holdout rows of the version's candidate run (``holdout/holdout.parquet``)."""
    mv = client.get_model_version(name, str(version))
    run_id = mv.run_id
    tag = (mv.tags or {}).get("riskops.holdout_uri", "")
    if tag.startswith("runs:/"):
        run_id, _, path = tag.removeprefix("runs:/").partition("/")
    else:
        path = HOLDOUT_ARTIFACT
    if not run_id:
        raise ValueError(f"model {name} version {version} has no run, so no holdout to validate on")
    local = client.download_artifacts(run_id, path or HOLDOUT_ARTIFACT, str(directory))
    return pd.read_parquet(local)


def evaluate_version(
    *,
    client: MlflowClient,
    spec: ModelSpec,
    model_name: str,
    version: str,
    champion_version: str | None,
    plots_dir: Path,
    train_sample: pd.DataFrame | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> GateReport:
    """Run every gate on version ``version`` against its own holdout (and the champion's scores).

    ``train_sample`` (rows of the training feature set) enables the train-vs-holdout stability
    gates; without it they are reported as skipped.
    """
    say = progress or (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="riskops-validate-") as tmp:
        folder = Path(tmp)
        holdout = download_holdout(client, model_name, version, folder / "holdout")
        say(f"holdout: {len(holdout)} rows")
        candidate = load_version(client, model_name, version, folder / "candidate")
        champion_score = None
        if champion_version is not None and str(champion_version) != str(version):
            champion = load_version(client, model_name, str(champion_version), folder / "champion")
            champion_score = champion.scorer()
        missing = [c for c in candidate.inputs if c not in holdout.columns]
        if missing:
            raise ValueError(f"the holdout lacks the model's input columns {missing}")
        say(f"gates on {model_name} v{version} (champion: {champion_version or 'none'})")
        report = run_gates(
            spec=spec,
            holdout=holdout,
            train_sample=train_sample,
            score=candidate.scorer(),
            numeric=candidate.numeric,
            categorical=candidate.categorical,
            champion_score=champion_score,
            contributions=candidate.contributions,
            plots_dir=Path(plots_dir),
            seed=seed,
            sources=plan_sources(spec, holdout.columns),
        )
    context = {
        **report.context,
        "model": model_name,
        "version": str(version),
        "champion_version": None if champion_version is None else str(champion_version),
    }
    return GateReport(report.results, context)
