"""Training: holdout split, leakage, metrics; train_and_register against a real MLflow server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy.stats import ks_2samp
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.synthetic import generate
from riskops.training.lineage import Lineage, git_commit
from riskops.training.metrics import binary_metrics
from riskops.training.models import train_binned_logistic, train_lightgbm
from riskops.training.plots import PLOT_FILES, evaluation_plots
from riskops.training.split import holdout_split, target01
from riskops.training.track import HOLDOUT_FILE, train_and_register

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"

pytestmark = [
    # MLflow's tracking client opens HTTP sessions that it never closes explicitly; CPython
    # reports them when they are collected. Already ignored project-wide; restated for clarity.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


# --- data --------------------------------------------------------------------------------------


def as_features(raw: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """The feature-build contract, simply: numerics as float, categoricals as strings."""
    frame = raw.copy()
    for name in spec.features.numeric:
        frame[name] = frame[name].astype("float64")
    for name in spec.features.categorical:
        frame[name] = frame[name].astype("object").where(frame[name].notna(), "__missing__")
    return frame


def inputs(spec: ModelSpec) -> tuple[list[str], list[str]]:
    return list(spec.features.numeric), list(spec.features.categorical)


@pytest.fixture(scope="module")
def specs() -> dict[str, ModelSpec]:
    return {p.stem: load_spec(p) for p in MODELS.glob("*.yaml")}


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory, specs: dict[str, ModelSpec]) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("data") / "credit.parquet"
    generate("credit_scoring", 20_000, 11, path, progress=False)
    return as_features(pd.read_parquet(path), specs["credit-scoring"])


@pytest.fixture(scope="module")
def fraud(tmp_path_factory: pytest.TempPathFactory, specs: dict[str, ModelSpec]) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("data") / "fraud.parquet"
    generate("fraud_detection", 50_000, 12, path, progress=False)
    return as_features(pd.read_parquet(path), specs["fraud-detection"])


def untimed(spec: ModelSpec) -> ModelSpec:
    return parse_spec({**spec.model_dump(mode="json"), "timestamp_column": None})


def unwindowed(spec: ModelSpec) -> ModelSpec:
    """The spec without an outcome window: for toy frames spanning days, not the 365-day window."""
    return parse_spec({**spec.model_dump(mode="json"), "outcome_window_days": None})


def lineage_for(spec: ModelSpec, **overrides: str) -> Lineage:
    fields = {
        "dataset_version": f"{spec.name}-0123456789abcdef",
        "dataset_sha256": "a" * 64,
        "featureset_version": "20261128T000000Z-1",
        "featureset_uri": f"file:///lake/features/{spec.name}/1",
        "spec_hash": spec.spec_hash(),
        "definitions_hash": "b" * 64,
        "code_version": git_commit(ROOT),
        "trainer": "pipeline:test",
        "landed_event_id": "evt-123",
    }
    return Lineage(**{**fields, **overrides})


# --- MLflow server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MLflow server (SQLite + local artifacts) for this module; stopped afterwards."""
    home = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", str(home / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    # The job runner (huey consumers for GenAI jobs) is not needed and costs ~1.5 GB.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (home / "server.log").open("wb")
    # Own process group: mlflow starts uvicorn as a child, and both must stop with the fixture.
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=home, start_new_session=True
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited: {(home / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                tail = (home / "server.log").read_text()[-2000:]
                pytest.fail(f"mlflow server not healthy in 60 s: {tail}")
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def client(mlflow_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)


# --- split -------------------------------------------------------------------------------------


def test_time_split_puts_the_latest_rows_in_the_holdout(credit, specs):
    spec = specs["credit-scoring"]
    split = holdout_split(credit, spec)
    assert split.train["applied_at"].max() < split.holdout["applied_at"].min()
    # finding 5: the rows of the outcome window before the holdout are in neither side
    assert len(split.train) + split.embargoed + len(split.holdout) == len(credit)
    assert len(split.holdout) == pytest.approx(0.2 * len(credit), abs=2)
    d = split.description
    assert d["method"] == "time"
    assert pd.Timestamp(d["boundary_time"]) == split.holdout["applied_at"].min()
    assert d["holdout_positive_rate"] == pytest.approx(split.holdout["default_12m"].mean())
    again = holdout_split(credit.sample(frac=1.0, random_state=3), spec)  # row order is irrelevant
    assert set(again.holdout["application_id"]) == set(split.holdout["application_id"])


def test_time_split_keeps_rows_of_the_boundary_timestamp_together(specs):
    spec = unwindowed(specs["credit-scoring"])
    moments = pd.to_datetime(["2025-01-01"] * 6 + ["2025-01-02"] * 3 + ["2025-01-03"], utc=True)
    frame = pd.DataFrame({
        "application_id": [f"A{i}" for i in range(10)],
        "applied_at": moments,
        "default_12m": [0, 1, 0, 1, 0, 0, 1, 0, 1, 0],
    })  # fmt: skip
    split = holdout_split(frame, spec, test_share=0.3)  # the 30% cut falls inside the 2nd day
    assert sorted(split.holdout["application_id"]) == ["A6", "A7", "A8", "A9"]
    assert split.train["applied_at"].max() < split.holdout["applied_at"].min()


def test_stratified_split_keeps_the_positive_rate_and_is_seeded(credit, specs):
    spec = untimed(specs["credit-scoring"])
    split = holdout_split(credit, spec, seed=7)
    d = split.description
    assert d["method"] == "stratified" and d["boundary_time"] is None
    assert d["holdout_positive_rate"] == pytest.approx(d["train_positive_rate"], abs=0.002)
    assert len(split.holdout) == pytest.approx(0.2 * len(credit), abs=1)
    same = holdout_split(credit, spec, seed=7)
    other = holdout_split(credit, spec, seed=8)
    assert same.holdout["application_id"].tolist() == split.holdout["application_id"].tolist()
    assert other.holdout["application_id"].tolist() != split.holdout["application_id"].tolist()


def test_split_refuses_unknown_target_labels(credit, specs):
    frame = credit.head(100).copy()
    frame.loc[frame.index[3], "default_12m"] = 2
    with pytest.raises(ValueError, match="outside"):
        holdout_split(frame, specs["credit-scoring"])


def test_string_labels_map_to_one_for_the_positive_label(specs):
    spec = _string_spec(specs["credit-scoring"])
    values = pd.Series(["good", "bad", "good", "bad", "bad"])
    assert target01(values, spec).tolist() == [0, 1, 0, 1, 1]


# --- leakage -----------------------------------------------------------------------------------


def test_holdout_and_early_stopping_rows_never_meet_training(credit, specs):
    spec = specs["credit-scoring"]
    split = holdout_split(credit, spec)
    numeric, categorical = inputs(spec)
    fitted = train_lightgbm(
        split.train, numeric, categorical, target01(split.train[spec.target], spec),
        seed=1, family=spec.family, time_column=spec.timestamp_column,
    )  # fmt: skip
    train_ids = set(split.train["application_id"])
    holdout_ids = set(split.holdout["application_id"])
    valid = split.train.loc[fitted.validation_index]
    valid_ids = set(valid["application_id"])
    assert not train_ids & holdout_ids
    assert valid_ids and valid_ids <= train_ids and not valid_ids & holdout_ids
    assert fitted.metadata["validation_method"] == "time"
    fit_rows = split.train.drop(index=fitted.validation_index)
    assert fit_rows["applied_at"].max() < valid["applied_at"].min()
    assert fitted.metadata["fit_rows"] + fitted.metadata["validation_rows"] == len(split.train)


def test_lightgbm_is_deterministic_and_respects_monotonic_debt(credit, specs):
    spec = specs["credit-scoring"]
    split = holdout_split(credit, spec)
    numeric, categorical = inputs(spec)
    y = target01(split.train[spec.target], spec)
    monotone = {"debt_to_income": 1}
    first = train_lightgbm(split.train, numeric, categorical, y, seed=5, monotone=monotone)
    second = train_lightgbm(split.train, numeric, categorical, y, seed=5, monotone=monotone)
    rows = split.holdout.head(2000)
    base = first.predict_proba_positive(rows)
    np.testing.assert_array_equal(base, second.predict_proba_positive(rows))
    more_debt = rows.assign(debt_to_income=rows["debt_to_income"] * 1.5 + 0.1)
    assert (first.predict_proba_positive(more_debt) >= base - 1e-12).all()


def test_binned_logistic_scores_like_sklearn_and_handles_unseen(credit, specs):
    spec = specs["credit-scoring"]
    split = holdout_split(credit, spec)
    numeric, categorical = inputs(spec)
    fitted = train_binned_logistic(
        split.train, numeric, categorical, target01(split.train[spec.target], spec)
    )
    rows = split.holdout.head(500).copy()
    rows.loc[rows.index[:5], "employment_type"] = "astronaut"
    rows.loc[rows.index[5:10], "income"] = np.nan
    scores = fitted.predict_proba_positive(rows)
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()
    auc = roc_auc_score(target01(split.holdout[spec.target], spec),
                        fitted.predict_proba_positive(split.holdout))  # fmt: skip
    assert auc > 0.7


# --- metrics and plots -------------------------------------------------------------------------


def test_metrics_of_a_perfect_scorer():
    y = np.array([0, 0, 1, 0, 1, 1, 0, 0])
    m = binary_metrics(y, y.astype(float) * 0.98 + 0.01)
    assert m["auc"] == 1.0 and m["gini"] == 1.0 and m["ks"] == 1.0 and m["pr_auc"] == 1.0
    assert m["positive_rate"] == 3 / 8 and m["n"] == 8
    assert m["brier"] == pytest.approx(0.01**2)


def test_metrics_of_a_random_scorer_agree_with_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    y = (rng.random(20_000) < 0.1).astype(int)
    p = rng.random(20_000)
    m = binary_metrics(y, p)
    assert m["auc"] == pytest.approx(0.5, abs=0.03)
    assert m["gini"] == pytest.approx(2 * m["auc"] - 1)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    assert m["ks"] == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic)
    assert m["ks"] < 0.05


def test_metrics_refuse_one_class_and_non_probabilities():
    with pytest.raises(ValueError, match="both classes"):
        binary_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="probabilities"):
        binary_metrics([0, 1], [0.1, 1.5])


def test_evaluation_plots_write_five_pngs(tmp_path):
    rng = np.random.default_rng(1)
    y = (rng.random(3000) < 0.05).astype(int)
    p = np.clip(rng.beta(1, 12, 3000) + 0.2 * y, 0, 1)
    paths = evaluation_plots(y, p, {"a": 0.7, "b": 0.3}, tmp_path / "plots", label="t")
    assert [p.name for p in paths] == list(PLOT_FILES)
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- lineage -----------------------------------------------------------------------------------


def test_lineage_tags_and_git_commit(tmp_path, specs):
    lineage = lineage_for(specs["credit-scoring"])
    tags = lineage.tags()
    assert tags["riskops.source"] == "pipeline"
    assert tags["riskops.git_commit"] == lineage.code_version
    assert tags["riskops.landed_event_id"] == "evt-123"
    assert all(key.startswith("riskops.") for key in tags)
    assert (
        "riskops.landed_event_id"
        not in lineage_for(specs["credit-scoring"], landed_event_id="").tags()
    )
    head = git_commit(ROOT)
    assert head == "unknown" or len(head) == 40
    assert git_commit(tmp_path) == "unknown"


# --- train_and_register against MLflow ---------------------------------------------------------


def test_credit_trains_registers_and_serves(
    client, mlflow_uri, credit, specs, tmp_path, monkeypatch
):
    spec = specs["credit-scoring"]
    numeric, categorical = inputs(spec)
    lineage = lineage_for(spec)
    messages: list[str] = []
    result = train_and_register(
        client=client, spec=spec, features=credit, numeric=numeric, categorical=categorical,
        lineage=lineage, progress=messages.append,
    )  # fmt: skip
    assert messages and result.model_name == "credit-scoring"
    assert result.metrics["holdout_auc"] > 0.7
    assert result.train_rows + result.split["embargo_rows"] + result.holdout_rows == len(credit)

    version = client.get_model_version(spec.name, result.version)
    assert lineage.tags().items() <= version.tags.items()
    assert version.tags["riskops.benchmark_run_id"] == result.benchmark_run_id
    assert version.run_id == result.run_id
    registered = client.get_registered_model(spec.name)
    assert registered.description == spec.intended_use
    assert registered.tags == {"family": "credit_scoring", "risk_class": "high",
                               "owner": "credit-risk-team"}  # fmt: skip

    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["riskops.role"] == "candidate"
    assert lineage.tags().items() <= run.data.tags.items()
    for name in ("auc", "gini", "ks", "pr_auc", "brier", "log_loss"):
        assert run.data.metrics[f"holdout_{name}"] == pytest.approx(
            result.metrics[f"holdout_{name}"]
        )
        assert f"train_{name}" in run.data.metrics
    plots = {a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert plots == {f"plots/{name}" for name in PLOT_FILES}

    local = client.download_artifacts(result.run_id, HOLDOUT_FILE, str(tmp_path))
    holdout = pd.read_parquet(local)
    expected = holdout_split(credit, spec, seed=42).holdout
    assert holdout["application_id"].tolist() == expected["application_id"].tolist()
    assert client.download_artifacts(result.run_id, "holdout/split.json", str(tmp_path))

    bench = client.get_run(result.benchmark_run_id)
    assert bench.data.tags["riskops.role"] == "benchmark"
    assert bench.data.metrics["holdout_auc"] > 0.7
    assert result.benchmark_metrics["holdout_auc"] == pytest.approx(
        bench.data.metrics["holdout_auc"]
    )

    # What serving does: load by registry URI; the default tracking URI comes from the env.
    import mlflow.pyfunc

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    model = mlflow.pyfunc.load_model(f"models:/credit-scoring/{result.version}")
    example = model.input_example
    assert list(example.columns) == numeric + categorical
    scores = np.asarray(model.predict(example))
    assert scores.shape == (len(example),) and ((scores >= 0) & (scores <= 1)).all()
    rows = holdout.head(50)
    served = np.asarray(model.predict(rows[numeric + categorical]))
    assert served.min() >= 0 and served.max() <= 1 and np.unique(served).size > 1


def test_fraud_trains_with_imbalance_handling_and_no_benchmark(client, fraud, specs):
    spec = specs["fraud-detection"]
    numeric, categorical = inputs(spec)
    assert fraud["is_fraud"].mean() < 0.02
    result = train_and_register(
        client=client, spec=spec, features=fraud, numeric=numeric, categorical=categorical,
        lineage=lineage_for(spec),
    )  # fmt: skip
    assert result.benchmark_run_id is None and result.benchmark_metrics is None
    assert result.metrics["scale_pos_weight"] > 5
    assert result.metrics["holdout_pr_auc"] > result.metrics["holdout_positive_rate"]
    # raw spec columns only (no per-card velocity features from the feature build): modest AUC
    assert result.metrics["holdout_auc"] > 0.65
    # the prior correction keeps scores calibrated despite the up-weighting
    assert result.metrics["holdout_brier"] < result.metrics["holdout_positive_rate"]
    version = client.get_model_version(spec.name, result.version)
    assert "riskops.benchmark_run_id" not in version.tags
    runs = client.search_runs([result.experiment_id])
    assert {r.data.tags["riskops.role"] for r in runs} == {"candidate"}


def _string_spec(spec: ModelSpec) -> ModelSpec:
    data = {**spec.model_dump(mode="json"), "name": "credit-scoring-labels"}
    return parse_spec({**data, "positive_label": "bad", "target_values": ["good", "bad"]})


def test_string_target_spec_trains(client, credit, specs):
    # 8,000 rows span less than the 365-day outcome window: not what this test is about
    spec = unwindowed(_string_spec(specs["credit-scoring"]))
    frame = credit.head(8000).copy()
    frame["default_12m"] = np.where(frame["default_12m"] == 1, "bad", "good")
    numeric, categorical = inputs(spec)
    result = train_and_register(
        client=client, spec=spec, features=frame, numeric=numeric, categorical=categorical,
        lineage=lineage_for(spec),
    )  # fmt: skip
    holdout = holdout_split(frame, spec).holdout
    assert result.metrics["holdout_positive_rate"] == pytest.approx(
        (holdout["default_12m"] == "bad").mean()
    )
    assert result.metrics["holdout_auc"] > 0.6
    assert result.to_dict()["version"] == result.version


# MLflow 3.17's SQL store still uses SQLAlchemy's ``noload`` option, deprecated in SQLAlchemy 2.1
# (pinned by the project); only a store opened in-process (no server) reaches that code.
@pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)
def test_registers_through_a_database_registry_without_a_server(
    credit, specs, tmp_path, monkeypatch
):
    """A client opened straight on SQLite (as in library tests) registers the version too."""
    monkeypatch.chdir(tmp_path)  # the store's default artifact root is ./mlruns
    spec = unwindowed(specs["credit-scoring"])  # 6,000 rows span less than the outcome window
    numeric, categorical = inputs(spec)
    direct = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = train_and_register(
        client=direct, spec=spec, features=credit.head(6000), numeric=numeric,
        categorical=categorical, lineage=lineage_for(spec),
    )  # fmt: skip
    version = direct.get_model_version(spec.name, result.version)
    assert version.tags["riskops.logged_model_id"] == result.model_id
    assert json.loads(json.dumps(result.to_dict()))["model_uri"] == result.model_uri
