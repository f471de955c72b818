"""Validate a registered model version on a holdout; fetch its model(s) through one client.

The validation stage passes the holdout the platform recorded (``riskops.stages.holdout``); a
holdout read from the version's own run is a fallback for library use and says so in the report.

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

from riskops.features.families import derived_features
from riskops.features.plan import FeaturePlan
from riskops.governance.policy import effective_risk_class
from riskops.specs import ModelSpec
from riskops.validation.explain import lightgbm_contributions, plan_sources
from riskops.validation.gates import run_gates
from riskops.validation.policy import apply_waivers
from riskops.validation.results import ContribFn, GateReport, GateResult, ScoreFn
from riskops.validation.robustness import applicant_monotonic_gate

HOLDOUT_ARTIFACT = "holdout/holdout.parquet"  # riskops.training.track.HOLDOUT_FILE
_NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "boolean"})


class MissingInputs(ValueError):
    """The version reads input columns the holdout does not hold: it cannot be measured."""


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
    """The holdout rows the version's own run logged (``holdout/holdout.parquet``).

    Not trusted by the validation stage (the run's owner controls them); the mutable
    ``riskops.holdout_uri`` tag is not followed at all.
    """
    run_id = client.get_model_version(name, str(version)).run_id
    if not run_id:
        raise ValueError(f"model {name} version {version} has no run, so no holdout to validate on")
    local = client.download_artifacts(run_id, HOLDOUT_ARTIFACT, str(directory))
    return pd.read_parquet(local)


def _applicant_monotonic(
    spec: ModelSpec, holdout: pd.DataFrame, candidate: LoadedVersion, plan: FeaturePlan | None,
    seed: int,
) -> GateResult:  # fmt: skip
    """The monotonic gate on raw inputs, derived inputs recomputed (finding 6)."""
    definitions = plan.derived if plan is not None else derived_features(spec.family)
    rows = holdout.reset_index(drop=True)
    sample = rows.sample(n=min(100, len(rows)), random_state=seed)
    rules = [(m.feature, m.direction) for m in spec.monotonic]
    return applicant_monotonic_gate(
        candidate.scorer(), sample, rules, candidate.inputs, definitions, reference=rows
    )


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
    holdout: pd.DataFrame | None = None,
    plan: FeaturePlan | None = None,
) -> GateReport:
    """Run every gate on version ``version`` against ``holdout`` (and the champion's scores).

    ``holdout`` is the platform's holdout (without it, the rows the version's run logged are
    used and the report says so). ``train_sample`` (rows of the training feature set) enables
    the train-vs-holdout stability gates; without it they are reported as skipped. ``plan`` (the
    feature set's plan; default: the family's definitions) lets the monotonic gate change raw
    inputs and recompute the features derived from them.
    """
    say = progress or (lambda _message: None)
    source = "platform" if holdout is not None else "run artifact (not platform-controlled)"
    with tempfile.TemporaryDirectory(prefix="riskops-validate-") as tmp:
        folder = Path(tmp)
        if holdout is None:
            holdout = download_holdout(client, model_name, version, folder / "holdout")
        say(f"holdout: {len(holdout)} rows ({source})")
        candidate = load_version(client, model_name, version, folder / "candidate")
        champion_score = None
        if champion_version is not None and str(champion_version) != str(version):
            champion = load_version(client, model_name, str(champion_version), folder / "champion")
            champion_score = champion.scorer()
        missing = [c for c in candidate.inputs if c not in holdout.columns]
        if missing:
            raise MissingInputs(
                f"{model_name} v{version} reads input columns {missing} that the holdout "
                f"({source}) does not hold, so no gate can be measured; register a model whose "
                "inputs are columns of the model's catalogued feature set"
            )
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
        # run_gates sees model inputs only; the monotonic rules are checked on raw inputs.
        monotonic = _applicant_monotonic(spec, holdout, candidate, plan, seed)
        # the same unmeasured-gate rule as every other gate (a skip fails for high risk)
        [monotonic], _ = apply_waivers(
            [monotonic], risk_class=effective_risk_class(spec), waivers=spec.gates.waivers
        )
    results = tuple(monotonic if r.name == monotonic.name else r for r in report.results)
    replaced = any(r.name == monotonic.name for r in report.results)
    if not replaced and len(results) > 1:  # not a scoring failure: keep the check
        results = (*results, monotonic)
    context = {
        **report.context,
        "model": model_name,
        "version": str(version),
        "champion_version": None if champion_version is None else str(champion_version),
        "holdout_source": source,
    }
    return GateReport(results, context)
