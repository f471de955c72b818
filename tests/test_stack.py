"""The real local stack: Prefect server, MLflow server, process worker, watcher.

Nothing here calls a flow: files are landed, and the triggers in prefect.yaml must do the rest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from sqlmodel import select

from riskops import audit, catalog, events, ledger
from riskops.compliance import ANNEX_IV_SECTIONS
from riskops.db import make_engine, session_scope
from riskops.governance import remote
from riskops.governance.promotion import current_champion
from riskops.lake import LocalLake
from riskops.landing.client import land_file, wait_for_check
from riskops.platform import Platform
from riskops.records import ValidationRecord
from riskops.settings import Settings, load_settings
from riskops.specs import load_spec
from riskops.stack import local, processes
from riskops.stack.ports import PortInUseError, free_port
from riskops.stack.runs import deployment_runs, read_events
from riskops.synthetic import generate
from tests.conftest import MODELS, ROOT
from tests.test_contracts import credit_frame

pytestmark = pytest.mark.slow

FOURTH_MODEL = {
    "name": "sme-overdraft",
    "family": "other",
    "risk_class": "high",
    "owner": "sme-lending",
    "intended_use": "Rank small-business overdraft applications; never seen by the code.",
    "target": "repayment status",
    "positive_label": "bad",
    "target_values": ["good", "bad"],
    "entity_column": "business id",
    "features": {"numeric": ["turnover (€)", "days overdrawn"], "categorical": ["sector / NACE"]},
    "columns": {"sector / NACE": {"allowed": ["C — manufacturing", "G: retail & wholesale"]}},
}


def _env(home: Path) -> dict[str, str]:
    return {
        "RISKOPS_HOME": str(home),
        "RISKOPS_PROJECT_DIR": str(ROOT),
        "RISKOPS_PREFECT_PORT": str(free_port()),
        "RISKOPS_MLFLOW_PORT": str(free_port()),
        "RISKOPS_WEBHOOK_PORT": str(free_port()),
        "RISKOPS_GOVERNANCE_PORT": str(free_port()),
        "RISKOPS_SCORING_PORT": str(free_port()),
        "RISKOPS_SLACK_RECEIVER_PORT": str(free_port()),
        # The flow runs' feature builds and batch scoring go through the stack's Connect server.
        "RISKOPS_SPARK_CONNECT_PORT": str(free_port()),
        "RISKOPS_SPARK_CONNECT_DRIVER_MEMORY": "2g",
        # only the promotion events can move the served champion within the tests' waits
        "RISKOPS_SCORING_REGISTRY_POLL_SECONDS": "3600",
        "RISKOPS_WATCHER_POLL_SECONDS": "0.5",
    }


# The people of the end-to-end tests: A lands and onboards; C is another developer; B decides;
# the operator rolls back. Keys are made with the admin key `riskops up` left in secrets/.
DEVELOPER_A = "ann.developer@bank.example"
DEVELOPER_C = "carl.developer@bank.example"
OFFICER_B = "bea.officer@bank.example"
OPERATOR = "oscar.oncall@bank.example"
CHECKOUT = "checkout-api"  # a service principal: the bank's system that asks for decisions
KEYS: dict[str, str] = {}


def _add_principals(settings: Settings) -> None:
    from riskops.identity.principals import add_principal

    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        for name, role in ((DEVELOPER_A, "model-developer"), (DEVELOPER_C, "model-developer"),
                           (OFFICER_B, "risk-officer"), (OPERATOR, "operator"),
                           (CHECKOUT, "service")):  # fmt: skip
            _principal, KEYS[name] = add_principal(
                session=session, name=name, role=role, actor="admin"
            )
    engine.dispose()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("stack") / "home"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in _env(home).items():
            mp.setenv(key, value)
        mp.delenv("RISKOPS_DATABASE_URL", raising=False)
        settings = load_settings()
        try:
            summary = local.up(settings)
            (home / "up-summary.json").write_text(json.dumps(summary))
            _add_principals(settings)
            engine = make_engine(settings.database_url)
            with session_scope(engine) as session:
                for path in sorted(MODELS.glob("*.yaml")):
                    ledger.register_spec(session=session, spec=load_spec(path), actor=DEVELOPER_A)
            engine.dispose()
            yield settings
        finally:
            local.down(settings)


def _land_and_wait(settings: Settings, path: Path, model: str, timeout: float = 240):
    landed = land_file(settings, path, model, landed_by=DEVELOPER_A)
    return landed, wait_for_check(settings, model, landed.sha256, timeout=timeout)


def _events(settings: Settings, name: str, resource: str, since=None, expect: int = 1) -> list:
    """Events as the server has persisted them (persistence lags emission by a few seconds)."""
    found: list = []

    def enough() -> bool:
        found[:] = read_events(
            settings.prefect.resolved_api_url(), names=[name], resource_prefix=resource, since=since
        )
        return len(found) >= expect

    processes.wait_until(enough, timeout=30, interval=1.0)
    return found


def _runs_by_sha(settings: Settings) -> dict[str, object]:
    with local.prefect_api(settings):
        return {r.parameters.get("sha256"): r for r in deployment_runs("contract-check")}


def test_status_reports_every_component_healthy(stack):
    rows = {s.name: s for s in local.status(stack)}
    assert set(rows) == set(local.COMPONENTS)
    assert all(s.healthy for s in rows.values()), rows
    assert rows["prefect-server"].url == f"http://127.0.0.1:{stack.prefect.port}"
    assert rows["governance"].url == f"http://127.0.0.1:{stack.governance.port}"
    assert rows["scoring"].url == f"http://127.0.0.1:{stack.scoring.port}"


def test_the_pseudonym_key_is_a_secret_block_apart_from_the_platform_block(stack):
    """Finding 8: configuration can be read without exposing the identifier key."""
    from prefect.blocks.system import Secret

    from blocks.platform import PLATFORM_BLOCK, PSEUDONYM_SECRET_BLOCK, RiskopsPlatform
    from riskops.secrets import pseudonym_key

    with local.prefect_api(stack):
        config = RiskopsPlatform.load(PLATFORM_BLOCK)
        secret = Secret.load(PSEUDONYM_SECRET_BLOCK).get()
    assert secret == pseudonym_key(stack)
    assert secret not in config.model_dump_json()


ACCEPTED: dict[str, tuple[str, str]] = {}  # model -> (landed sha256, dataset version)


def test_good_files_are_accepted_through_the_trigger(stack, tmp_path):
    files = []
    for model, family, rows in [
        ("fraud-detection", "fraud_detection", 30_000),
        ("transaction-risk", "transaction_risk", 8_000),
        ("credit-scoring", "credit_scoring", 20_000),  # enough defaults for the fairness gates
    ]:
        path = tmp_path / f"{model}.{'csv' if model == 'credit-scoring' else 'parquet'}"
        generate(family, rows, seed=7, out_path=path, progress=False)
        files.append((model, path))
    verdicts = [_land_and_wait(stack, path, model) for model, path in files]
    runs: dict[str, object] = {}

    def finished() -> bool:  # the verdict is recorded before the run delivers its event and ends
        runs.update(_runs_by_sha(stack))
        return all(
            getattr(runs.get(landed.sha256), "state", None) == "Completed" for landed, _ in verdicts
        )

    processes.wait_until(finished, timeout=120, interval=1.0)
    for (model, _), (landed, row) in zip(files, verdicts, strict=True):
        assert row.status == "accepted", row.reasons
        assert runs[landed.sha256].state == "Completed"  # started by the trigger, not by us
        accepted = _events(
            stack, events.DATA_ACCEPTED, events.dataset_resource(model, landed.sha256)
        )
        assert len(accepted) == 1
        assert accepted[0]["payload"]["dataset_version"] == row.dataset_version_id
        ACCEPTED[model] = (landed.sha256, str(row.dataset_version_id))


def test_accepted_data_becomes_a_registered_version_through_events(stack):
    """accepted → features built → trained → registered, each stage started by its trigger."""
    from mlflow.tracking import MlflowClient

    assert ACCEPTED, "needs test_good_files_are_accepted_through_the_trigger"
    engine = make_engine(stack.database_url)
    found: dict[str, object] = {}

    def registered() -> bool:
        with session_scope(engine) as session:
            for model, (_sha, dataset_id) in ACCEPTED.items():
                for mv in catalog.list_model_versions(session=session, model=model):
                    if mv.dataset_version_id == dataset_id:
                        found[model] = mv
        return len(found) == len(ACCEPTED)

    assert processes.wait_until(registered, timeout=600, interval=2.0), found
    engine.dispose()
    client = MlflowClient(stack.mlflow.resolved_tracking_uri())
    builds: list = []
    trainings: list = []

    def runs_done() -> bool:  # a run records its stage, delivers the event, then completes
        with local.prefect_api(stack):
            builds[:], trainings[:] = deployment_runs("feature-build"), deployment_runs("train")
        wanted = {mv.feature_set_id for mv in found.values()}
        done = {r.parameters.get("featureset_id") for r in trainings if r.state == "Completed"}
        return wanted <= done

    processes.wait_until(runs_done, timeout=120, interval=2.0)
    for model, (sha, dataset_id) in ACCEPTED.items():
        mv = found[model]
        tags = client.get_model_version(model, mv.version).tags
        assert tags["riskops.dataset_sha256"] == sha  # the version leads back to the landed file
        assert tags["riskops.dataset_version"] == dataset_id
        assert any(
            r.parameters.get("dataset_version") == dataset_id and r.state == "Completed"
            for r in builds
        )
        assert any(
            r.parameters.get("featureset_id") == mv.feature_set_id and r.state == "Completed"
            for r in trainings
        )
        fs_version = str(mv.feature_set_id).removeprefix(f"{model}-")
        (built,) = _events(
            stack, events.FEATURES_BUILT, events.featureset_resource(model, fs_version)
        )
        (reg,) = _events(stack, events.MODEL_REGISTERED, events.model_resource(model, mv.version))
        related = {r["prefect.resource.id"] for r in reg["related"]}
        assert events.dataset_resource(model, sha) in related
        assert built["payload"]["dataset_sha256"] == sha
        assert mv.metrics["holdout_auc"] > 0.6, (model, mv.metrics)


def test_flow_runs_build_features_on_the_stacks_spark_connect_server(stack):
    """The worker's flow runs got RISKOPS_SPARK_REMOTE: no JVM of their own, the stack's one."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        LogFilter,
        LogFilterFlowRunId,
    )

    assert ACCEPTED, "needs test_good_files_are_accepted_through_the_trigger"
    row = {s.name: s for s in local.status(stack)}["spark-connect"]
    assert row.healthy and row.url == stack.spark.local_connect_url()
    with local.prefect_api(stack), get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["feature-build"]))
        )
        ids = [r.id for r in runs if r.state and r.state.name == "Completed"]
        assert ids, "no completed feature-build run"
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))
    text = "\n".join(log.message for log in logs)
    assert f"feature build on Spark Connect {stack.spark.local_connect_url()}" in text
    assert "session-local Spark" not in text


REGISTERED: dict[str, str] = {}  # model -> version registered from the accepted file


def _wait_version(stack: Settings, model: str, dataset_id: str, timeout: float = 600) -> str:
    engine = make_engine(stack.database_url)
    found: list[str] = []

    def registered() -> bool:
        with session_scope(engine) as session:
            found[:] = [
                mv.version
                for mv in catalog.list_model_versions(session=session, model=model)
                if mv.dataset_version_id == dataset_id
            ]
        return bool(found)

    assert processes.wait_until(registered, timeout=timeout, interval=2.0), (model, dataset_id)
    engine.dispose()
    return found[0]


def _wait_validation(stack: Settings, model: str, version: str, timeout: float = 400):
    engine = make_engine(stack.database_url)
    found: list[ValidationRecord] = []

    def done() -> bool:
        with session_scope(engine) as session:
            found[:] = session.exec(
                select(ValidationRecord).where(
                    ValidationRecord.model == model, ValidationRecord.version == version
                )
            ).all()
        return bool(found)

    assert processes.wait_until(done, timeout=timeout, interval=2.0), (model, version)
    engine.dispose()
    return found[0]


def _decide(stack: Settings, who: str, model: str, version: str, decision: str = "approve"):
    """A decision through the governance API with ``who``'s key: (HTTP status, body)."""
    import httpx

    response = httpx.post(
        f"{stack.governance.resolved_url()}/api/v1/models/{model}/versions/{version}/decision",
        json={"decision": decision, "justification": "end-to-end test: gates reviewed"},
        headers={"Authorization": f"Bearer {KEYS[who]}"},
        timeout=400,
    )
    return response.status_code, response.json()


def _typed_resume(stack: Settings, model: str, version: str, typed: str):
    """Press Resume in the Prefect UI's form with a typed name; the recorded refusal."""
    from riskops.governance.signoff import request_of
    from riskops.records import SignOffRecord

    engine = make_engine(stack.database_url)
    run_id: list[str] = []

    def paused() -> bool:
        with session_scope(engine) as session:
            request = request_of(session=session, model=model, version=version)
        with local.prefect_api(stack):
            if request is not None and remote.flow_run_state(request.flow_run_id) == "Paused":
                run_id[:] = [request.flow_run_id]
        return bool(run_id)

    assert processes.wait_until(paused, timeout=300, interval=2), f"{model} v{version} not paused"
    with local.prefect_api(stack):
        form = {"approver": typed, "decision": "approve", "justification": "typed in the form"}
        remote.resume_signoff(run_id[0], form)
    found: list[SignOffRecord] = []

    def recorded() -> bool:
        with session_scope(engine) as session:
            found[:] = session.exec(
                select(SignOffRecord).where(
                    SignOffRecord.model == model,
                    SignOffRecord.version == version,
                    SignOffRecord.channel == "prefect-ui",
                )
            ).all()
        return bool(found)

    assert processes.wait_until(recorded, timeout=120, interval=1)
    engine.dispose()
    return found[0]


def _champion(stack: Settings, model: str) -> str | None:
    from mlflow.tracking import MlflowClient

    return current_champion(MlflowClient(stack.mlflow.resolved_tracking_uri()), model)


def test_a_good_version_reaches_champion_only_after_sign_off(stack):
    _sha, dataset_id = ACCEPTED["credit-scoring"]
    version = _wait_version(stack, "credit-scoring", dataset_id)
    verdict = _wait_validation(stack, "credit-scoring", version)
    assert verdict.passed, verdict.failed_gates
    assert _champion(stack, "credit-scoring") is None  # validated, but nobody signed yet
    # A landed the data: A's own approval is refused, and recorded under A's name
    status, body = _decide(stack, DEVELOPER_A, "credit-scoring", version)
    assert status == 403 and body["record"]["approver"] == DEVELOPER_A, body
    # another model developer: refused too (only a risk officer decides)
    status, body = _decide(stack, DEVELOPER_C, "credit-scoring", version)
    assert status == 403 and "only a risk-officer" in body["error"], body
    # Resume in the Prefect UI with a typed name: refused, recorded, the run keeps waiting
    typed = _typed_resume(stack, "credit-scoring", version, typed=OFFICER_B)
    assert not typed.accepted and not typed.verified and "no signed decision" in typed.refusal
    assert _champion(stack, "credit-scoring") is None
    # B, an authenticated risk officer behind none of it, through the governance API
    status, body = _decide(stack, OFFICER_B, "credit-scoring", version)
    assert status == 200 and body["approver"] == OFFICER_B and body["verified"], body
    assert processes.wait_until(lambda: _champion(stack, "credit-scoring") == version, 180, 2)
    _assert_audit_names_and_anchor(stack, version)
    # the scoring service follows the promotion event and answers with the new champion
    assert processes.wait_until(lambda: _served(stack, "credit-scoring") == version, 60, 0.5)
    (promoted,) = _events(
        stack, events.MODEL_PROMOTED, events.model_resource("credit-scoring", version)
    )
    assert promoted["payload"]["previous_version"] is None
    REGISTERED["credit-scoring"] = version
    from mlflow.tracking import MlflowClient

    from riskops.stages.cards import write_card

    engine = make_engine(stack.database_url)
    files = write_card(
        engine=engine, client=MlflowClient(stack.mlflow.resolved_tracking_uri()),
        model="credit-scoring", version=version, out_dir=stack.home_dir / "cards-test",
    )  # fmt: skip
    engine.dispose()
    html = files.html.read_text()
    positions = [html.find(title) for title in ANNEX_IV_SECTIONS]
    assert -1 not in positions and positions == sorted(positions)
    assert html.count("data:image/png;base64,") >= 5
    assert OFFICER_B in html and DEVELOPER_A in html


def _served(stack: Settings, model: str) -> str | None:
    """The champion version the running scoring service answers with."""
    try:
        models = httpx.get(
            stack.scoring.resolved_url() + "/v1/models",
            headers={"Authorization": f"Bearer {KEYS[CHECKOUT]}"},
            timeout=5,
        ).json()["models"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None
    found = {m["name"]: (m["champion"] or {}).get("version") for m in models}
    return found.get(model)


def _assert_audit_names_and_anchor(stack: Settings, version: str) -> None:
    """The trail names A (landed, onboarded) and B (approved), verifies, and is anchored."""
    from mlflow.tracking import MlflowClient

    from riskops.audit import collect_anchors

    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        rows = audit.rows_for_subject(session=session, subject_prefix="credit-scoring/")
        actors = {(r.actor, r.action) for r in rows}
        assert (DEVELOPER_A, "data.submitted") in actors
        assert (DEVELOPER_A, "signoff.refused") in actors
        assert (OFFICER_B, "signoff.approve") in actors
        assert audit.verify(session=session).ok
        head = audit.head(session=session)
    engine.dispose()
    client = MlflowClient(stack.mlflow.resolved_tracking_uri())
    tags = client.get_model_version("credit-scoring", version).tags
    assert "riskops.audit.head" in tags
    anchors = collect_anchors(client)
    assert anchors and max(a.seq for a in anchors) <= head.seq


def test_a_shuffled_target_is_rejected_and_a_retrain_can_be_rolled_back(stack, tmp_path):
    shuffled = tmp_path / "credit-shuffled.parquet"
    generate("credit_scoring", 6_000, seed=21, out_path=shuffled, progress=False)
    frame = pd.read_parquet(shuffled)
    frame["default_12m"] = frame["default_12m"].sample(frac=1.0, random_state=0).to_numpy()
    frame.to_parquet(shuffled)
    fresh = tmp_path / "credit-fresh.parquet"
    generate("credit_scoring", 20_000, seed=22, out_path=fresh, progress=False)
    bad = land_file(stack, shuffled, "credit-scoring", landed_by=DEVELOPER_A)
    good = land_file(stack, fresh, "credit-scoring", landed_by=DEVELOPER_A)
    bad_ds = wait_for_check(stack, "credit-scoring", bad.sha256, timeout=240).dataset_version_id
    good_ds = wait_for_check(stack, "credit-scoring", good.sha256, timeout=240).dataset_version_id
    bad_version = _wait_version(stack, "credit-scoring", str(bad_ds))
    good_version = _wait_version(stack, "credit-scoring", str(good_ds))

    rejected = _wait_validation(stack, "credit-scoring", bad_version)
    assert not rejected.passed and "discrimination.auc" in rejected.failed_gates
    (event,) = _events(
        stack, events.MODEL_REJECTED, events.model_resource("credit-scoring", bad_version)
    )
    assert "discrimination.auc" in event["payload"]["failed_gates"]

    assert _wait_validation(stack, "credit-scoring", good_version).passed
    assert _decide(stack, OFFICER_B, "credit-scoring", good_version)[0] == 200
    assert processes.wait_until(lambda: _champion(stack, "credit-scoring") == good_version, 180, 2)

    first = REGISTERED["credit-scoring"]
    env = {**os.environ, "RISKOPS_HOME": str(stack.home_dir), "RISKOPS_PROJECT_DIR": str(ROOT),
           "RISKOPS_API_KEY": KEYS[OPERATOR]}  # fmt: skip
    cli = [sys.executable, "-m", "riskops", "rollback", "credit-scoring"]
    refused = subprocess.run([*cli, "--to", bad_version], env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and "never an approved champion" in refused.stderr
    done = subprocess.run([*cli, "--reason", "e2e"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert _champion(stack, "credit-scoring") == first
    assert processes.wait_until(lambda: _served(stack, "credit-scoring") == first, 60, 0.5)
    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        moves = [
            (r.action, r.subject)
            for r in audit.rows_for_subject(session=session, subject_prefix="credit-scoring/")
            if r.action.startswith("model.promoted") or r.action.startswith("model.rolled-back")
        ]
        assert audit.verify(session=session).ok
    engine.dispose()
    assert moves == [
        ("model.promoted", f"credit-scoring/{first}"),
        ("model.promoted", f"credit-scoring/{good_version}"),
        ("model.rolled-back", f"credit-scoring/{first}"),
    ]


def test_a_notebook_registration_enters_the_loop_through_the_webhook(stack, tmp_path):
    import httpx
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow.resolved_tracking_uri())
    experiment = client.create_experiment(f"notebook-{time.monotonic_ns()}")
    run = client.create_run(experiment)
    note = tmp_path / "model.txt"
    note.write_text("a model trained in a notebook")
    client.log_artifact(run.info.run_id, str(note), "model")
    client.set_terminated(run.info.run_id)
    with contextlib.suppress(MlflowException):  # already there from an earlier run
        client.create_registered_model("notebook-model")
    version = client.create_model_version(
        "notebook-model", f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    found = _events(
        stack, events.MODEL_REGISTERED, events.model_resource("notebook-model", version.version)
    )
    assert len(found) == 1 and found[0]["payload"]["source"] == "mlflow-webhook"
    # ...and it enters the same loop: validation runs, and refuses a model nobody onboarded
    (rejected,) = _events(
        stack, events.MODEL_REJECTED, events.model_resource("notebook-model", version.version)
    )
    assert rejected["payload"]["failed_gates"] == ["spec"]
    assert "riskops onboard" in rejected["payload"]["reason"]
    forged = httpx.post(
        f"http://127.0.0.1:{stack.webhook.port}/mlflow/webhook",
        content=b'{"entity": "model_version", "action": "created", "data": {}}',
        headers={
            "X-MLflow-Signature": "v1,forged",
            "X-MLflow-Delivery-Id": "x",
            "X-MLflow-Timestamp": str(int(time.time())),
        },
    )
    assert forged.status_code == 401


def test_a_model_the_code_has_never_seen(stack, tmp_path):
    spec_path = tmp_path / "sme-overdraft.yaml"
    spec_path.write_text(yaml.safe_dump(FOURTH_MODEL, allow_unicode=True))
    env = {"RISKOPS_HOME": str(stack.home_dir), "RISKOPS_PROJECT_DIR": str(ROOT),
           "RISKOPS_API_KEY": KEYS[DEVELOPER_A]}  # fmt: skip
    cli = [sys.executable, "-m", "riskops"]
    onboarded = subprocess.run(
        [*cli, "onboard", str(spec_path)], env=_merged(env), capture_output=True, text=True
    )
    assert onboarded.returncode == 0, onboarded.stderr
    data = tmp_path / "sme applications (Q3).csv"
    data.write_text(
        "business id,turnover (€),days overdrawn,sector / NACE,repayment status\n"
        "B-1,120000.50,3,C — manufacturing,good\n"
        "B-2,56000,41,G: retail & wholesale,bad\n"
        "B-3,99000,0,C — manufacturing,good\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [*cli, "land", str(data), "-m", "sme-overdraft", "--wait", "--json", "--timeout", "240"],
        env=_merged(env),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["status"] == "accepted"


def _merged(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**os.environ, **extra}


BAD_FILES = {
    "zero-bytes.csv": (b"", "empty_file"),
    "latin1.csv": ("income,région\n1,Zürich\n".encode("latin-1"), "encoding"),
    "corrupt.parquet": (b"PAR1\x00\x01garbage-not-a-footerPAR1", "unreadable"),
    "wrong-columns.csv": (b"applicant,salary\nA,100\n", "missing_column"),
}


def test_each_class_of_bad_file_is_rejected_and_quarantined(stack, tmp_path):
    lake = LocalLake(stack.lake_root)
    cases = [("credit-scoring", name, content, code) for name, (content, code) in BAD_FILES.items()]
    broken = credit_frame(300).astype(object)
    broken.loc[5, "debt_to_income"] = -1
    broken.loc[6, "loan_amount"] = "n/a lots"
    cases.append(
        ("credit-scoring", "ranges.csv", broken.to_csv(index=False).encode(), "out_of_range")
    )
    cases.append(("no-such-model", "orphan.csv", b"a,b\n1,2\n", "unknown_model"))
    landed = []
    for model, name, content, code in cases:
        path = tmp_path / name
        path.write_bytes(content)
        landed.append((land_file(stack, path, model), name, content, code))
    for item, name, content, code in landed:
        row = wait_for_check(stack, item.model, item.sha256, timeout=300)
        assert row.status == "rejected", name
        assert code in [r["code"] for r in row.reasons], (name, row.reasons)
        folder = f"quarantine/{item.model}/{item.sha256}"
        assert lake.get_bytes(f"{folder}/{name}") == content, f"{name} was lost"
        reasons = json.loads(lake.get_bytes(f"{folder}/reasons.json"))
        assert reasons["reasons"] == row.reasons
        rejected = _events(
            stack, events.DATA_REJECTED, events.dataset_resource(item.model, item.sha256)
        )
        assert len(rejected) == 1 and rejected[0]["payload"]["reasons"] == row.reasons
    assert local.status(stack)[3].healthy, "a bad file must never crash the watcher"


def test_same_file_landed_five_times_is_one_event_and_one_version(stack, tmp_path):
    path = tmp_path / "repeat.csv"
    credit_frame(250, seed=42).to_csv(path, index=False)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    shas = {land_file(stack, path, "credit-scoring").sha256 for _ in range(5)}
    (sha,) = shas
    first = wait_for_check(stack, "credit-scoring", sha, timeout=240)
    assert first.status == "accepted"
    for _ in range(5):  # landing it again after it was accepted: a duplicate, nothing done
        again = land_file(stack, path, "credit-scoring")
        assert again.duplicate_of is not None and again.duplicate_of.status == "accepted"
    processes.wait_until(
        lambda: not LocalLake(stack.lake_root).exists("landing/credit-scoring/repeat.csv"), 30
    )
    time.sleep(5)  # give a wrongly duplicated event time to be persisted before counting
    landed = _events(
        stack, events.DATA_LANDED, events.dataset_resource("credit-scoring", sha), since, expect=2
    )
    assert len(landed) == 1
    engine = make_engine(stack.database_url)
    with session_scope(engine) as session:
        versions = [v for v in ledger.list_dataset_versions(session=session) if v.sha256 == sha]
        row = ledger.get_landing(session=session, model="credit-scoring", sha256=sha)
    engine.dispose()
    # re-landings of one path between two polls coalesce
    assert len(versions) == 1 and row is not None and row.times_seen >= 1


def test_drifted_traffic_is_detected_announced_and_retrains_once(stack):
    """Acceptance of issue 9, on the real stack: traffic like the training data is quiet; a
    drifted batch through the scoring service -> the monitor deployment -> riskops.drift.detected
    -> the automation -> a Slack message at the local receiver -> exactly one retraining run."""
    from prefect.deployments import run_deployment

    from riskops.demo_scoring import send_all, traffic
    from riskops.stages.monitor import results_since

    model = "credit-scoring"
    champion = _champion(stack, model)
    assert champion is not None and _served(stack, model) == champion
    base = stack.scoring.resolved_url()
    headers = {"Authorization": f"Bearer {KEYS[CHECKOUT]}"}
    platform = Platform.from_settings(stack, with_secrets=False)

    def monitor() -> dict[str, object]:
        started = dt.datetime.now(dt.UTC)
        run = run_deployment(name="monitor/monitor", parameters={"model": model}, timeout=600)
        assert run.state is not None and run.state.is_completed(), run.state
        return {r.kind: r for r in results_since(platform, model, started)}

    with httpx.Client(headers=headers, timeout=30) as client, local.prefect_api(stack):
        schema = client.get(f"{base}/openapi.json").json()["components"]["schemas"]
        schema = schema[f"Record-{model}"]
        folder = stack.home_dir / "drift-test"
        send_all(
            client,
            f"{base}/v1/models/{model}/score",
            traffic(model, schema, folder, rows=700, seed=31),
        )
        quiet = monitor()
        assert quiet["skew"].worst_band != "alert" and quiet["skew"].event_id is None, quiet
        sent_at = time.time()
        drifted = traffic(model, schema, folder, rows=700, seed=32,
                          drift={"covariate": 1.5, "missing": 0.3})  # fmt: skip
        send_all(client, f"{base}/v1/models/{model}/score", drifted)
        loud = monitor()
    platform.close()
    assert loud["skew"].worst_band == "alert" and loud["skew"].event_id, loud
    drifted_features = {f["name"] for f in loud["skew"].features if f["band"] == "alert"}
    assert "income" in drifted_features

    def slack() -> list[dict]:
        path = local.slack_messages(stack)
        lines = path.read_text().splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines]
        alert = "[ALERT] skew drift on credit-scoring"
        return [
            m for m in found
            if dt.datetime.fromisoformat(m["received_at"]).timestamp() >= sent_at - 1
            and alert in json.dumps(m)
        ]  # fmt: skip

    assert processes.wait_until(lambda: bool(slack()), 120, 2), "no Slack message arrived"
    assert "income" in json.dumps(slack()[0]) or "loan_to_income" in json.dumps(slack()[0])

    def retrains() -> list:
        with local.prefect_api(stack):
            return [r for r in deployment_runs("retrain") if r.parameters.get("model") == model]

    assert processes.wait_until(lambda: len(retrains()) >= 1, 180, 3), "no retraining run"
    time.sleep(10)  # the other kinds' events go through the gate too: still one run
    assert len(retrains()) == 1, [(r.name, r.parameters) for r in retrains()]


def test_up_is_idempotent_and_a_taken_port_is_named(stack, tmp_path):
    again = local.up(stack)
    assert again["started"] == [] and set(again["already_running"]) == set(local.COMPONENTS)
    with socket.socket() as squatter, pytest.MonkeyPatch.context() as mp:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        for key, value in _env(tmp_path / "other").items():
            mp.setenv(key, value)
        mp.setenv("RISKOPS_PREFECT_PORT", str(port))
        with pytest.raises(PortInUseError, match=rf"port {port} .*RISKOPS_PREFECT_PORT"):
            local.up(load_settings())


def test_zz_down_stops_exactly_what_up_started(stack):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pids = [s.pid for s in local.status(stack)]
        stopped = local.down(stack)
        assert set(stopped) == set(local.COMPONENTS)
        assert all(not s.running for s in local.status(stack))
        import psutil

        assert not any(
            psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids if p
        )
        assert bystander.poll() is None, "down must not touch processes it did not start"
    finally:
        bystander.kill()
        bystander.wait()
