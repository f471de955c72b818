"""Code, image and data lineage of model versions: RISKOPS_GIT_COMMIT / RISKOPS_IMAGE_DIGEST
resolution, the MLflow tags training sets from them (a real SQLite MLflow store), and
`riskops models lineage`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from riskops import catalog
from riskops.cli.main import app
from riskops.db import session_scope
from riskops.governance.signoff import Verdict, record_submission
from riskops.provenance import NOT_RECORDED
from riskops.records import ModelVersionRecord
from riskops.stages.training import train_stage
from riskops.synthetic import generate
from riskops.training.provenance import (
    NOT_FROM_IMAGE,
    UNKNOWN_COMMIT,
    ProvenanceSettings,
    checkout_commit,
)
from tests.test_retraining import MODEL, Built, _accept_and_build

# MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy 2.1 deprecates (as in test_retraining)
pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")]

COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "ghcr.io/riskops/riskops-flows@sha256:" + "ab" * 32


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


# --- resolution --------------------------------------------------------------------------------


def test_ci_values_win_and_bad_values_are_refused_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("RISKOPS_GIT_COMMIT", raising=False)
    monkeypatch.delenv("RISKOPS_IMAGE_DIGEST", raising=False)
    unset = ProvenanceSettings()
    assert unset.image() == NOT_FROM_IMAGE
    assert unset.code_version(tmp_path / "nowhere.py") == UNKNOWN_COMMIT  # no checkout: no guess

    monkeypatch.setenv("RISKOPS_GIT_COMMIT", COMMIT.upper())
    monkeypatch.setenv("RISKOPS_IMAGE_DIGEST", DIGEST)
    given = ProvenanceSettings()
    assert given.code_version(tmp_path / "nowhere.py") == COMMIT and given.image() == DIGEST

    monkeypatch.setenv("RISKOPS_GIT_COMMIT", "abc123")
    with pytest.raises(ValidationError, match=r"not a full git commit.*git rev-parse HEAD"):
        ProvenanceSettings()
    monkeypatch.setenv("RISKOPS_GIT_COMMIT", "")  # as an image built without the build arg
    monkeypatch.setenv("RISKOPS_IMAGE_DIGEST", "ghcr.io/riskops/riskops-flows:latest")
    with pytest.raises(ValidationError, match="not an image digest"):
        ProvenanceSettings()


def test_the_commit_is_that_of_the_checkout_tracking_the_code(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "flow.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text(".venv/\n")
    _git(repo, "add", "flow.py", ".gitignore")
    _git(
        repo,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-qm",
        "one",
    )
    head = _git(repo, "rev-parse", "HEAD")
    assert checkout_commit(repo / "flow.py") == head
    # an installed copy inside the checkout (an ignored .venv) is not the checkout's code
    (repo / ".venv").mkdir()
    (repo / ".venv" / "flow.py").write_text("x = 2\n")
    assert checkout_commit(repo / ".venv" / "flow.py") == UNKNOWN_COMMIT
    assert checkout_commit(tmp_path / "elsewhere.py") == UNKNOWN_COMMIT


# --- training records them; `riskops models lineage` shows them --------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Built, str]]:
    root = tmp_path_factory.mktemp("provenance")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # MLflow's default artifact root is ./mlruns
        for key in list(os.environ):
            if key.startswith("RISKOPS_") and key != "RISKOPS_TEST_DATABASE_URL":
                patch.delenv(key)
        patch.setenv("RISKOPS_GIT_COMMIT", COMMIT)
        patch.setenv("RISKOPS_IMAGE_DIGEST", DIGEST)
        generate("credit_scoring", 6_000, 3, root / "raw.parquet", progress=False)
        built = Built(root)
        record = _accept_and_build(built, root / "raw.parquet")
        provenance = ProvenanceSettings()  # what flows/train.py does
        stage = train_stage(
            lake=built.lake, engine=built.engine, client=built.client,
            feature_set_id=record.id, trainer="riskops-pipeline",
            code_version=provenance.code_version(Path(__file__)), image_digest=provenance.image(),
        )  # fmt: skip
        with session_scope(built.engine) as session:
            record_submission(
                session=session, model=MODEL, version=stage.record.version, approver="rita",
                decision="approve", justification="gates passed", verdict=Verdict(True),
                approver_role="risk_officer", verified=True, channel="governance-api",
            )  # fmt: skip
        patch.setenv("RISKOPS_HOME", str(root / "home"))
        patch.setenv("RISKOPS_DATABASE_URL", f"sqlite:///{root / 'riskops.db'}")
        patch.setenv("RISKOPS_MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
        patch.setenv("RISKOPS_LAKE_ROOT", str(root / "lake"))
        yield built, stage.record.version
    built.engine.dispose()


def test_training_tags_commit_and_image_on_the_run_and_the_version(trained):
    built, version = trained
    registered = built.client.get_model_version(MODEL, version)
    run = built.client.get_run(registered.run_id)
    for tags in (registered.tags, run.data.tags):
        assert tags["riskops.git_commit"] == COMMIT
        assert tags["riskops.image_digest"] == DIGEST
    assert run.data.tags["mlflow.source.git.commit"] == COMMIT


def test_models_lineage_names_code_image_data_run_and_approver(trained):
    built, version = trained
    result = CliRunner().invoke(app, ["models", "lineage", MODEL, "--json"])
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.output)
    with session_scope(built.engine) as session:
        record = catalog.get_model_version(session=session, model=MODEL, version=version)
        walk = catalog.lineage_of_version(session=session, model=MODEL, version=version)
    assert item["version"] == version and item["run_id"] == record.run_id
    assert (item["code_commit"], item["image_digest"]) == (COMMIT, DIGEST)
    assert item["dataset_version_id"] == walk["dataset_version"]["id"]
    assert item["dataset_sha256"] == walk["dataset_version"]["sha256"]
    assert item["feature_set_version"] == walk["feature_set"]["version"]
    assert item["landed"] == walk["landed"]  # the full records of the walk are kept
    assert [(a["approver"], a["role"], a["verified"]) for a in item["approved_by"]] == [
        ("rita", "risk_officer", True)
    ]
    text = CliRunner().invoke(app, ["models", "lineage", MODEL, "--version", version])
    assert text.exit_code == 0, text.output
    expected = [COMMIT, DIGEST, item["dataset_sha256"], item["feature_set_version"], item["run_id"]]
    for shown in [*expected, "rita (risk_officer"]:
        assert shown in text.output


def test_a_version_registered_without_the_tags_says_not_recorded(trained):
    built, _ = trained
    other = built.client.create_model_version(MODEL, "file:///elsewhere/model")  # no riskops tags
    with session_scope(built.engine) as session:
        catalog.add_model_version(
            session=session,
            record=ModelVersionRecord(model=MODEL, version=str(other.version),
                                      source="mlflow-webhook", trainer="someone"),
        )  # fmt: skip
    result = CliRunner().invoke(app, ["models", "lineage", MODEL, "--version", other.version,
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    item = json.loads(result.output)
    assert item["code_commit"] == NOT_RECORDED and item["image_digest"] == NOT_RECORDED
    assert item["approved_by"] == [] and item["dataset_version_id"] is None
    both = CliRunner().invoke(app, ["models", "lineage", MODEL, "--version", "1", "--sha256", "a"])
    assert both.exit_code == 2 and "at most one of --version or --sha256" in both.output


def test_without_a_registry_client_the_tags_are_not_read_rather_than_not_recorded(trained):
    from riskops.provenance import NOT_READ, version_provenance

    built, version = trained
    with session_scope(built.engine) as session:
        item = version_provenance(session=session, client=None, model=MODEL, version=version)
    assert item["code_commit"] == NOT_READ and item["image_digest"] == NOT_READ
    assert item["run_id"] and item["approved_by"]  # the platform DB's part is still there
