"""Finding 5: validation scores a holdout the platform recorded, rebuilt and checked, never one
the version supplies; time splits leave the outcome window out; registry errors are not
"no champion".

One module-scoped platform: a SQLite platform DB, a local lake holding a credit feature set
(built with the pandas compiler of the same plan as Spark's), and an MLflow store on SQLite.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from riskops import catalog, ledger
from riskops.db import make_engine, session_scope
from riskops.features.manifest import FeatureSetManifest
from riskops.features.pandas_build import build_features_pandas, learn_vocabulary_pandas
from riskops.features.plan import feature_plan
from riskops.governance.promotion import RegistryUnavailable
from riskops.governance.promotion import current_champion as champion_version
from riskops.lake.local import LocalLake
from riskops.records import DatasetVersion, FeatureSetRecord, HoldoutRecord, ModelVersionRecord
from riskops.specs import ModelSpec, load_spec, parse_spec
from riskops.stages import holdout as holdout_stage
from riskops.stages.holdout import HoldoutError, platform_holdout
from riskops.stages.training import train_stage
from riskops.stages.validation import validate_stage
from riskops.synthetic import generate
from riskops.training.lineage import Lineage
from riskops.training.split import SplitRule, apply_split, holdout_split, rows_digest
from riskops.training.track import train_and_register

ROOT = Path(__file__).resolve().parents[1]
MODEL = "credit-scoring"

pytestmark = [
    # MLflow's SQL store (opened in-process, no server) uses SQLAlchemy 2.1-deprecated options.
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
]


class Platform:
    """The pieces a stage takes, plus what the tests need to reach behind them."""

    def __init__(self, root: Path, spec: ModelSpec) -> None:
        self.root = root
        self.spec = spec
        self.engine: Engine = make_engine(f"sqlite:///{root / 'riskops.db'}")
        self.lake = LocalLake(root / "lake")
        (root / "mlflow").mkdir()
        self.client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
        self.featureset_id = ""
        self.pipeline_version = ""
        self.training: dict = {}


def _feature_set(platform: Platform, raw: pd.DataFrame) -> FeatureSetRecord:
    """Store a credit feature set in the lake (two parquet parts) and the platform DB."""
    spec = platform.spec
    plan = feature_plan(spec, raw.columns)
    vocabulary = learn_vocabulary_pandas(raw, plan)
    features = build_features_pandas(raw, plan, vocabulary, pseudonym_key="test-key")
    version = "fs0123456789abcd"
    prefix = f"featuresets/{MODEL}/{version}"
    half = len(features) // 2
    for i, part in enumerate((features.iloc[:half], features.iloc[half:])):
        path = platform.root / f"part-{i}.parquet"
        part.to_parquet(path, index=False)
        platform.lake.put_file(f"{prefix}/data/part-{i}.parquet", path)
    dataset = DatasetVersion(
        id=f"{MODEL}-{'c' * 16}", model=MODEL, sha256="c" * 64, uri="file:///nowhere",
        source_uri="file:///nowhere", row_count=len(raw), columns=list(raw.columns),
        spec_hash=spec.spec_hash(),
    )  # fmt: skip
    manifest = FeatureSetManifest(
        model=MODEL, version=version, row_count=len(features), schema={},
        dataset_version=dataset.id, dataset_sha256=dataset.sha256,
        definitions_hash=plan.definitions_hash(), code_version="test", vocabulary=vocabulary,
        numeric_features=list(plan.numeric), categorical_features=list(plan.categorical),
        passthrough_columns=list(plan.passthrough), pseudonymised_columns=["customer_id"],
        partition_by="bucket", skipped_features=[], plan=plan.to_dict(),
        created_at=dt.datetime.now(dt.UTC).isoformat(),
    )  # fmt: skip
    record = FeatureSetRecord(
        id=catalog.feature_set_id(MODEL, version), model=MODEL, version=version,
        dataset_version_id=dataset.id, uri=platform.lake.uri(prefix), row_count=len(features),
        definitions_hash=plan.definitions_hash(), code_version="test",
        manifest=manifest.to_dict(),
    )  # fmt: skip
    with session_scope(platform.engine) as session:
        ledger.register_spec(session=session, spec=spec, source="test", actor="test")
        session.add(dataset)
        catalog.add_feature_set(session=session, record=record)
    return record


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("platform")
    spec = load_spec(ROOT / "models" / f"{MODEL}.yaml")  # outcome_window_days: 365
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)  # MLflow's default artifact root is ./mlruns
        generate("credit_scoring", 20_000, 11, root / "raw.parquet", progress=False)
        platform = Platform(root, spec)
        record = _feature_set(platform, pd.read_parquet(root / "raw.parquet"))
        platform.featureset_id = record.id
        stage = train_stage(
            lake=platform.lake, engine=platform.engine, client=platform.client,
            feature_set_id=record.id, trainer="riskops-pipeline", code_version="test",
        )  # fmt: skip
        platform.pipeline_version = stage.record.version
        platform.training = stage.result
        yield platform
    platform.engine.dispose()


def _notebook_version(platform: Platform, seed: int, extra: str | None = None) -> str:
    """A version registered straight in MLflow (no platform record), with its own holdout."""
    with session_scope(platform.engine) as session:
        fs = session.get(FeatureSetRecord, platform.featureset_id)
    frame = holdout_stage.read_feature_rows(platform.lake, fs)
    numeric = list(fs.manifest["numeric_features"])
    if extra:  # a column only the notebook had
        frame = frame.assign(**{extra: np.random.default_rng(seed).normal(size=len(frame))})
        numeric.append(extra)
    # The notebook author uses no embargo and logs whatever holdout they like.
    spec = parse_spec({**platform.spec.model_dump(mode="json"), "outcome_window_days": None})
    lineage = Lineage("nb", "d" * 64, "nb", "file:///nb", spec.spec_hash(), "e" * 64, "nb", "nb")
    result = train_and_register(
        client=platform.client, spec=spec, features=frame.head(9_000), numeric=numeric,
        categorical=list(fs.manifest["categorical_features"]), lineage=lineage, seed=seed,
    )  # fmt: skip
    return result.version


def _record(platform: Platform, version: str) -> HoldoutRecord:
    with session_scope(platform.engine) as session:
        return session.exec(
            select(HoldoutRecord).where(
                HoldoutRecord.model == MODEL, HoldoutRecord.version == version
            )
        ).one()


# --- split ------------------------------------------------------------------------------------


def test_time_split_embargoes_the_outcome_window_and_reports_counts(platform):
    """finding 5: no training row within 365 days before the first holdout row."""
    with session_scope(platform.engine) as session:
        fs = session.get(FeatureSetRecord, platform.featureset_id)
    frame = holdout_stage.read_feature_rows(platform.lake, fs)
    split = holdout_split(frame, platform.spec)
    start = pd.to_datetime(split.holdout["applied_at"], utc=True).min()
    last_train = pd.to_datetime(split.train["applied_at"], utc=True).max()
    assert start - last_train >= pd.Timedelta(days=365)
    assert split.embargoed > 0
    assert split.description["embargo_rows"] == split.embargoed
    assert len(split.train) + split.embargoed + len(split.holdout) == len(frame)
    times = pd.to_datetime(frame["applied_at"], utc=True)
    short = frame[times < times.min() + pd.Timedelta(days=300)]  # shorter than the embargo
    with pytest.raises(ValueError, match="outcome_window_days=365 leaves no training row"):
        holdout_split(short, platform.spec)


# --- training records the holdout -------------------------------------------------------------


def test_training_records_the_split_and_its_digest_in_the_platform_db(platform):
    record = _record(platform, platform.pipeline_version)
    assert record.feature_set_id == platform.featureset_id and record.method == "time"
    assert record.rule["embargo_days"] == 365.0 and record.embargo_rows > 0
    assert record.holdout_rows == platform.training["holdout_rows"]
    assert len(record.holdout_digest) == 64
    # finding 6: the constraints reached the derived copies of income and debt
    monotone = platform.training["split"]["monotone_constraints"]
    assert monotone["income"] == monotone["log_income"] == monotone["income_bucket"] == -1
    assert monotone["loan_to_income"] == 1 and monotone["dti_bucket"] == 1


# --- validation uses it -----------------------------------------------------------------------


def test_pipeline_version_is_validated_on_the_recorded_holdout_not_the_run_tag(platform):
    """The mutable holdout tag points at an easy holdout: validation does not follow it."""
    version = platform.pipeline_version
    record = _record(platform, version)
    mv = platform.client.get_model_version(MODEL, version)
    tiny = platform.root / "tiny"
    tiny.mkdir()
    logged = platform.client.download_artifacts(mv.run_id, "holdout/holdout.parquet", str(tiny))
    rows = pd.read_parquet(logged)
    rows.head(300).to_parquet(tiny / "easy.parquet", index=False)
    platform.client.log_artifact(mv.run_id, str(tiny / "easy.parquet"), "elsewhere")
    platform.client.set_model_version_tag(
        MODEL, version, "riskops.holdout_uri", f"runs:/{mv.run_id}/elsewhere/easy.parquet"
    )
    stage = validate_stage(
        lake=platform.lake, engine=platform.engine, client=platform.client, model=MODEL,
        version=version,
    )  # fmt: skip
    context = stage.report["context"]
    assert context["holdout_rows"] == record.holdout_rows != 300
    assert context["holdout_of_version"] == version
    assert context["holdout_digest"] == record.holdout_digest
    assert context["holdout_embargo_rows"] == record.embargo_rows > 0
    # finding 6: the monotonic gate moved raw inputs and recomputed their derived features
    gates = {gate["name"]: gate for gate in stage.report["results"]}
    assert gates["robustness.monotonic"]["evidence"]["level"] == "raw applicant input"
    # the demo credit model still passes on 20,000 synthetic rows with the 365-day embargo
    assert stage.passed, stage.markdown


def test_notebook_version_is_scored_on_the_platform_holdout(platform):
    version = _notebook_version(platform, seed=3)
    run_id = platform.client.get_model_version(MODEL, version).run_id
    own = platform.client.download_artifacts(run_id, "holdout/holdout.parquet", str(platform.root))
    assert len(pd.read_parquet(own)) == 1_800  # what the notebook logged
    record = _record(platform, platform.pipeline_version)
    stage = validate_stage(
        lake=platform.lake, engine=platform.engine, client=platform.client, model=MODEL,
        version=version,
    )  # fmt: skip
    context = stage.report["context"]
    assert context["holdout_rows"] == record.holdout_rows
    assert context["holdout_of_version"] == platform.pipeline_version
    assert "outside the pipeline" in context["holdout_chosen_because"]


def test_notebook_version_reading_columns_the_platform_lacks_is_rejected(platform):
    version = _notebook_version(platform, seed=6, extra="bureau_score")
    stage = validate_stage(
        lake=platform.lake, engine=platform.engine, client=platform.client, model=MODEL,
        version=version,
    )  # fmt: skip
    assert not stage.passed and stage.failed == ["holdout"]
    assert "['bureau_score']" in stage.markdown and f"v{version}" in stage.markdown


def test_notebook_holdout_prefers_the_champion_then_the_newest_pipeline_version(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    rows = {"feature_set_id": "fs", "method": "time", "rule": {}, "holdout_digest": "h",
            "train_digest": "t", "holdout_rows": 1, "train_rows": 1}  # fmt: skip
    with session_scope(engine) as session:
        for version in ("1", "3"):
            session.add(ModelVersionRecord(model=MODEL, version=version, source="pipeline"))
            session.add(HoldoutRecord(model=MODEL, version=version, **rows))
        session.add(ModelVersionRecord(model=MODEL, version="4", source="mlflow-webhook"))
    with session_scope(engine) as session:
        choose = holdout_stage._choose
        assert choose(session, MODEL, "4", "1")[0].version == "1"  # the champion's
        assert choose(session, MODEL, "5", "1")[0].version == "1"  # no record at all
        assert choose(session, MODEL, "4", None)[0].version == "3"  # newest pipeline version
        assert choose(session, MODEL, "4", "2")[0].version == "3"  # champion without holdout
        assert choose(session, MODEL, "3", "1")[0].version == "3"  # a pipeline version: its own
        session.add(ModelVersionRecord(model=MODEL, version="6", source="pipeline"))
        session.flush()
        with pytest.raises(HoldoutError, match="no holdout for it"):
            choose(session, MODEL, "6", "1")
    with session_scope(engine) as session, pytest.raises(HoldoutError, match="Train a version"):
        choose(session, "other-model", "1", None)
    engine.dispose()


def test_a_changed_feature_set_fails_validation_naming_both_digests(platform):
    version = _notebook_version(platform, seed=4)
    record = _record(platform, platform.pipeline_version)
    key = f"featuresets/{MODEL}/fs0123456789abcd/data/part-1.parquet"
    with platform.lake.local_copy(key) as path:
        original = pd.read_parquet(path)
    changed = original.copy()
    changed.loc[changed.index[-1], "income"] = changed["income"].iloc[-1] * 3  # a holdout row
    path = platform.root / "changed.parquet"
    changed.to_parquet(path, index=False)
    platform.lake.put_file(key, path)
    try:
        with pytest.raises(HoldoutError) as caught:
            platform_holdout(
                lake=platform.lake, engine=platform.engine, spec=platform.spec, model=MODEL,
                version=version, champion=None,
            )  # fmt: skip
        message = str(caught.value)
        assert f"v{version}" in message and record.holdout_digest in message
        assert "found" in message and "validation refused" in message
        stage = validate_stage(
            lake=platform.lake, engine=platform.engine, client=platform.client, model=MODEL,
            version=version,
        )  # fmt: skip
        assert not stage.passed and stage.failed == ["holdout"]
        assert record.holdout_digest in stage.markdown
    finally:
        original.to_parquet(path, index=False)
        platform.lake.put_file(key, path)


# --- champion lookup --------------------------------------------------------------------------


class _Unreachable(MlflowClient):
    """A registry that fails alias lookups with a server-side error (not "alias not found")."""

    def get_model_version_by_alias(self, name: str, alias: str):  # type: ignore[override]
        raise MlflowException("registry unavailable", error_code=TEMPORARILY_UNAVAILABLE)


def test_a_registry_error_is_not_no_champion(platform, tmp_path):
    assert champion_version(platform.client, MODEL) is None  # MLflow's real "alias not found"
    assert champion_version(platform.client, "never-registered") is None
    broken = _Unreachable(tracking_uri=platform.client.tracking_uri)
    with pytest.raises(RegistryUnavailable, match="TEMPORARILY_UNAVAILABLE"):
        champion_version(broken, MODEL)
    version = _notebook_version(platform, seed=5)
    with pytest.raises(RegistryUnavailable, match="champion gates cannot be skipped"):
        validate_stage(
            lake=platform.lake, engine=platform.engine, client=broken, model=MODEL,
            version=version,
        )  # fmt: skip
    platform.client.set_registered_model_alias(MODEL, "champion", platform.pipeline_version)
    try:
        assert champion_version(platform.client, MODEL) == platform.pipeline_version
    finally:
        platform.client.delete_registered_model_alias(MODEL, "champion")


def test_scores_do_not_depend_on_rows_being_reordered(platform):
    """The digest is of the rows, not of the order a backend lists parquet parts in."""
    record = _record(platform, platform.pipeline_version)
    with session_scope(platform.engine) as session:
        fs = session.get(FeatureSetRecord, platform.featureset_id)
    frame = holdout_stage.read_feature_rows(platform.lake, fs)
    rule = SplitRule.from_dict(record.rule)
    shuffled = frame.sample(frac=1.0, random_state=np.random.default_rng(0).integers(1 << 30))
    assert rows_digest(apply_split(shuffled, platform.spec, rule).holdout) == record.holdout_digest
