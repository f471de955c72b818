"""The retraining gate (severity, cooldown, one start, audit) and the retraining stage on
already-built data (a NEW version that goes through validation, never straight to champion).

Real platform DB, real lake, real MLflow store (SQLite, in-process); the start of the Prefect
run is a plain function here (tests/test_automations.py starts real ones).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sqlmodel import select

from riskops import audit, catalog, ledger
from riskops.db import make_engine, session_scope
from riskops.features.manifest import FeatureSetManifest, featureset_version
from riskops.features.pandas_build import build_features_pandas, learn_vocabulary_pandas
from riskops.features.plan import feature_plan
from riskops.governance.promotion import current_champion
from riskops.lake.local import LocalLake
from riskops.outbox import OutboxEvent
from riskops.records import DatasetVersion, FeatureSetRecord, RetrainClaim
from riskops.settings import SparkSettings
from riskops.specs import load_spec, parse_spec
from riskops.stages.retraining import RETRAINER, retrain_gate, retrain_stage
from riskops.stages.training import train_stage
from riskops.stages.validation import validate_stage
from riskops.synthetic import generate
from riskops.training.lineage import TAG_PREFIX
from tests.conftest import MODELS

MODEL = "credit-scoring"
pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")]


class Starts:
    """Records each start of a retraining run, as Prefect's run_deployment would be asked."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, key: str, parameters: dict) -> str:
        with self._lock:
            self.calls.append((key, parameters))
        if self.fail:
            raise ConnectionError("Prefect API unreachable")
        return str(uuid.uuid4())


@pytest.fixture
def onboarded(engine):
    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=load_spec(MODELS / f"{MODEL}.yaml"))
    return engine


def _gate(engine, starts, severity="alert", event_id=None, now=None):
    return retrain_gate(
        engine=engine, model=MODEL, severity=severity, event_id=event_id or str(uuid.uuid4()),
        reason="data drift: income psi 0.31", start_run=starts, now=now,
    )  # fmt: skip


def _trail(engine) -> list[str]:
    with session_scope(engine) as session:
        rows = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/retraining")
        return [row.action for row in rows]


def test_warn_severity_never_claims_nor_starts(onboarded):
    starts = Starts()
    outcome = _gate(onboarded, starts, severity="warn")
    assert outcome.decision == "skipped" and "only alert" in outcome.message
    assert starts.calls == [] and _trail(onboarded) == []


def test_one_start_per_cooldown_then_refusals_with_the_cooldown_message(onboarded):
    starts = Starts()
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    first = _gate(onboarded, starts, now=now)
    assert first.started and first.flow_run_id
    ((key, parameters),) = starts.calls
    assert key == f"riskops-retrain-{MODEL}-{first.claim_id}"
    assert parameters == {"model": MODEL, "claim_id": first.claim_id,
                          "reason": "data drift: income psi 0.31"}  # fmt: skip
    later = _gate(onboarded, starts, now=now + dt.timedelta(hours=23))
    assert later.decision == "refused" and len(starts.calls) == 1
    assert "24 h cooldown" in later.message and "2026-12-02 09:00Z" in later.message
    after = _gate(onboarded, starts, now=now + dt.timedelta(hours=24, minutes=1))
    assert after.started and len(starts.calls) == 2
    assert _trail(onboarded) == [
        "retraining.claimed", "retraining.started", "retraining.refused",
        "retraining.claimed", "retraining.started",
    ]  # fmt: skip


def test_a_redelivered_event_does_not_start_a_second_run(onboarded):
    starts = Starts()
    event_id = str(uuid.uuid4())
    assert _gate(onboarded, starts, event_id=event_id).started
    again = _gate(onboarded, starts, event_id=event_id)
    assert again.decision == "duplicate" and len(starts.calls) == 1


def test_a_failed_start_gives_the_window_back(onboarded):
    with pytest.raises(ConnectionError):
        _gate(onboarded, Starts(fail=True))
    with session_scope(onboarded) as session:
        (claim,) = session.exec(select(RetrainClaim)).all()
        assert claim.status == "failed" and not claim.holds_window
        assert "Prefect API unreachable" in (claim.error or "")
    assert _gate(onboarded, Starts()).started  # the next event may retrain at once
    assert _trail(onboarded)[:2] == ["retraining.claimed", "retraining.start-failed"]


def test_racing_gates_start_exactly_one_run(onboarded):
    starts = Starts()
    outcomes: list = []
    barrier = threading.Barrier(8)

    def one() -> None:
        barrier.wait()
        outcomes.append(_gate(onboarded, starts).decision)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["started"]
    assert len(starts.calls) == 1


def test_an_unknown_model_is_refused_by_name(engine):
    with pytest.raises(ledger.UnknownModelError, match="credit-scoring"):
        _gate(engine, Starts())


def test_retrain_schedule_is_validated_as_cron():
    raw = load_spec(MODELS / f"{MODEL}.yaml").model_dump(mode="json")
    raw["monitoring"]["retrain_schedule"] = "0 3 1 * *"
    assert parse_spec(raw, "test").monitoring.retrain_schedule == "0 3 1 * *"
    raw["monitoring"]["retrain_schedule"] = "every month"
    with pytest.raises(ValueError, match=r"monitoring\.retrain_schedule"):
        parse_spec(raw, "test")


# --- the retraining stage on data that was already built and trained --------------------------


class Built:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.engine = make_engine(f"sqlite:///{root / 'riskops.db'}")
        self.lake = LocalLake(root / "lake")
        (root / "mlflow").mkdir()
        self.client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
        self.featureset_id = ""
        self.first_version = ""


def _accept_and_build(built: Built, raw_path: Path) -> FeatureSetRecord:
    """What contract check + feature build leave behind: a dataset version and its feature set
    (under the version the feature build would give it, so that it is found, not rebuilt)."""
    spec = load_spec(MODELS / f"{MODEL}.yaml")
    sha = hashlib.sha256(raw_path.read_bytes()).hexdigest()
    uri = built.lake.put_file(f"datasets/{MODEL}/{sha[:16]}.parquet", raw_path)
    raw = pd.read_parquet(raw_path)
    plan = feature_plan(spec, raw.columns)
    vocabulary = learn_vocabulary_pandas(raw, plan)
    features = build_features_pandas(raw, plan, vocabulary, pseudonym_key="test-key")
    version = featureset_version(sha, plan.definitions_hash(), "test")
    prefix = f"featuresets/{MODEL}/{version}"
    part = built.root / "part-0.parquet"
    features.to_parquet(part, index=False)
    built.lake.put_file(f"{prefix}/data/part-0.parquet", part)
    dataset = DatasetVersion(
        id=ledger.dataset_version_id(MODEL, sha), model=MODEL, sha256=sha, uri=uri,
        source_uri=uri, row_count=len(raw), columns=list(raw.columns),
        spec_hash=spec.spec_hash(),
    )  # fmt: skip
    manifest = FeatureSetManifest(
        model=MODEL, version=version, row_count=len(features), schema={},
        dataset_version=dataset.id, dataset_sha256=sha,
        definitions_hash=plan.definitions_hash(), code_version="test", vocabulary=vocabulary,
        numeric_features=list(plan.numeric), categorical_features=list(plan.categorical),
        passthrough_columns=list(plan.passthrough), pseudonymised_columns=["customer_id"],
        partition_by="bucket", skipped_features=[], plan=plan.to_dict(),
        created_at=dt.datetime.now(dt.UTC).isoformat(),
    )  # fmt: skip
    record = FeatureSetRecord(
        id=catalog.feature_set_id(MODEL, version), model=MODEL, version=version,
        dataset_version_id=dataset.id, uri=built.lake.uri(prefix), row_count=len(features),
        definitions_hash=plan.definitions_hash(), code_version="test",
        manifest=manifest.to_dict(),
    )  # fmt: skip
    with session_scope(built.engine) as session:
        ledger.register_spec(session=session, spec=spec, source="test", actor="test")
        session.add(dataset)
        catalog.add_feature_set(session=session, record=record)
    return record


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    root = tmp_path_factory.mktemp("retrain")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # MLflow's default artifact root is ./mlruns
        generate("credit_scoring", 12_000, 5, root / "raw.parquet", progress=False)
        built = Built(root)
        record = _accept_and_build(built, root / "raw.parquet")
        built.featureset_id = record.id
        first = train_stage(
            lake=built.lake, engine=built.engine, client=built.client,
            feature_set_id=record.id, trainer="riskops-pipeline", code_version="test",
        )  # fmt: skip
        built.first_version = first.record.version
        yield built
    built.engine.dispose()


def test_retraining_built_and_trained_data_registers_a_new_version_for_the_gates(built):
    result = retrain_stage(
        lake=built.lake, engine=built.engine, client=built.client,
        spark=SparkSettings(master="local[1]"), pseudonym_key="test-key", model=MODEL,
        code_version="test", reason="drift", claim_id=7,
    )  # fmt: skip
    assert result.path == "trained" and result.featureset_id == built.featureset_id
    assert result.version is not None and result.version != built.first_version
    with session_scope(built.engine) as session:
        record = catalog.get_model_version(session=session, model=MODEL, version=result.version)
        assert record is not None and record.trainer == RETRAINER
        assert record.feature_set_id == built.featureset_id
        (registered,) = [session.get(OutboxEvent, i) for i in result.outbox_ids]
        assert registered.name == "riskops.model.registered"
        assert registered.payload["version"] == result.version
        trail = audit.rows_for_subject(session=session, subject_prefix=f"{MODEL}/retraining")
        assert [(r.action, r.payload["claim"], r.payload["seed"]) for r in trail] == [
            ("retraining.trained", 7, 43)  # a fresh seed: not a copy of the first version
        ]
    run = built.client.get_run(built.client.get_model_version(MODEL, result.version).run_id)
    assert run.data.tags[f"{TAG_PREFIX}trainer"] == RETRAINER

    # the next link of the chain (the validate deployment on model.registered): gates, then
    # challenger at best; the champion is only ever moved by an approved sign-off
    stage = validate_stage(
        lake=built.lake, engine=built.engine, client=built.client, model=MODEL,
        version=result.version,
    )  # fmt: skip
    aliases = built.client.get_registered_model(MODEL).aliases
    assert stage.passed, stage.failed  # the same data and code as the first version: it passes
    assert str(aliases["challenger"]) == result.version
    assert "champion" not in aliases and current_champion(built.client, MODEL) is None


def test_retraining_a_model_without_accepted_data_says_what_to_do(built):
    with pytest.raises(LookupError, match="riskops land FILE --model fraud-detection"):
        retrain_stage(
            lake=built.lake, engine=built.engine, client=built.client,
            spark=SparkSettings(master="local[1]"), pseudonym_key="k", model="fraud-detection",
            code_version="test",
        )  # fmt: skip
