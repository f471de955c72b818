"""A platform with served models, and a real scoring service on a loopback port.

In-process parts, real where it matters: a SQLite platform DB, a local lake holding a feature set
built with the pandas compiler of the same plan as Spark's, an MLflow store on SQLite with
versions trained and registered by the training stage, and the service under uvicorn over HTTP.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import uvicorn
from mlflow.tracking import MlflowClient
from sqlmodel import select

from riskops import catalog, ledger
from riskops.db import make_engine, session_scope
from riskops.features.manifest import FeatureSetManifest
from riskops.features.pandas_build import build_features_pandas, learn_vocabulary_pandas
from riskops.features.plan import feature_plan
from riskops.identity.principals import add_principal
from riskops.lake.local import LocalLake
from riskops.platform import Platform
from riskops.records import DatasetVersion, FeatureSetRecord, PromotionRecord, ValidationRecord
from riskops.serving.requests import request_records
from riskops.specs import load_spec
from riskops.stack.ports import free_port
from riskops.stages.training import train_stage
from riskops.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]
PSEUDONYM_KEY = "serving-test-key"


class ServingPlatform:
    """One model onboarded, with a feature set and trained versions."""

    def __init__(self, root: Path, model: str, family: str, rows: int, seed: int = 7) -> None:
        self.root = root
        self.model = model
        self.spec = load_spec(ROOT / "models" / f"{model}.yaml")
        self.engine = make_engine(f"sqlite:///{root / 'riskops.db'}")
        self.lake = LocalLake(root / "lake")
        (root / "mlflow").mkdir(exist_ok=True)
        self.tracking_uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.platform = Platform(
            engine=self.engine,
            lake=self.lake,
            mlflow_tracking_uri=self.tracking_uri,
            pseudonym_key=PSEUDONYM_KEY,
        )
        generate(family, rows, seed, root / "raw.parquet", progress=False)
        self.raw = pd.read_parquet(root / "raw.parquet")
        self.dataset_id = f"{model}-{'c' * 16}"
        self.featureset_id = self._feature_set()

    def _feature_set(self) -> str:
        spec, raw = self.spec, self.raw
        plan = feature_plan(spec, raw.columns)
        vocabulary = learn_vocabulary_pandas(raw, plan)
        features = build_features_pandas(raw, plan, vocabulary, pseudonym_key=PSEUDONYM_KEY)
        version = "fs" + "0123456789abcd"
        prefix = f"featuresets/{self.model}/{version}"
        path = self.root / "part-0.parquet"
        features.to_parquet(path, index=False)
        self.lake.put_file(f"{prefix}/data/part-0.parquet", path)
        sha = "c" * 64
        data_uri = self.lake.put_file(f"datasets/{self.model}/{sha}/data.parquet",
                                      self.root / "raw.parquet")  # fmt: skip
        dataset = DatasetVersion(
            id=f"{self.model}-{sha[:16]}", model=self.model, sha256=sha, uri=data_uri,
            source_uri="file:///nowhere", row_count=len(raw), columns=list(raw.columns),
            spec_hash=spec.spec_hash(),
        )  # fmt: skip
        manifest = FeatureSetManifest(
            model=self.model, version=version, row_count=len(features), schema={},
            dataset_version=dataset.id, dataset_sha256=sha,
            definitions_hash=plan.definitions_hash(), code_version="test", vocabulary=vocabulary,
            numeric_features=list(plan.numeric), categorical_features=list(plan.categorical),
            passthrough_columns=list(plan.passthrough),
            pseudonymised_columns=[spec.entity_column] if spec.entity_column else [],
            partition_by="bucket", skipped_features=[], plan=plan.to_dict(),
            created_at=dt.datetime.now(dt.UTC).isoformat(),
        )  # fmt: skip
        record = FeatureSetRecord(
            id=catalog.feature_set_id(self.model, version), model=self.model, version=version,
            dataset_version_id=dataset.id, uri=self.lake.uri(prefix), row_count=len(features),
            definitions_hash=plan.definitions_hash(), code_version="test",
            manifest=manifest.to_dict(),
        )  # fmt: skip
        with session_scope(self.engine) as session:
            ledger.register_spec(session=session, spec=spec, source="test", actor="test")
            session.add(dataset)
            catalog.add_feature_set(session=session, record=record)
        return record.id

    def train(self, seed: int = 42) -> str:
        """Train and register a version on the feature set; returns its number."""
        stage = train_stage(
            lake=self.lake, engine=self.engine, client=self.client,
            feature_set_id=self.featureset_id, trainer="riskops-pipeline", code_version="test",
            seed=seed,
        )  # fmt: skip
        version = stage.record.version
        with session_scope(self.engine) as session:
            session.add(
                ValidationRecord(
                    model=self.model, version=version, passed=True, failed_gates=[], report={}
                )
            )
        return version

    def promote(self, version: str) -> None:
        """Record a promotion and move the alias, as the promotion stage does."""
        with session_scope(self.engine) as session:
            previous = session.exec(
                select(PromotionRecord).where(PromotionRecord.model == self.model)
            ).all()
            session.add(
                PromotionRecord(
                    model=self.model,
                    version=version,
                    previous_version=previous[-1].version if previous else None,
                    kind="promote",
                    actor="test",
                    reason="test",
                )
            )
        self.client.set_registered_model_alias(self.model, "champion", version)

    def key(self, name: str, role: str) -> str:
        """A principal's new key."""
        with session_scope(self.engine) as session:
            _principal, key = add_principal(session=session, name=name, role=role, actor="admin")
        return key

    def raw_records(self, n: int, start: int = 0) -> list[dict]:
        """Request records from the raw rows: the spec's request fields, times as ISO text."""
        frame = self.raw.iloc[start : start + n]
        drop = [self.spec.target, *(self.spec.protected_attributes)]
        return request_records(frame.drop(columns=[c for c in drop if c in frame.columns]))


@contextmanager
def running(app: object) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="asyncio", http="httptools", log_level="warning",
        access_log=False, lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        server.should_exit = True
        raise RuntimeError(f"the scoring service on {base} did not become ready")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)


def log_decisions(
    sp: ServingPlatform, served, frame: pd.DataFrame, at: dt.datetime, *, raw: bool = True
) -> list[str]:
    """``frame``'s rows as decisions of ``served`` at ``at``, logged as the service logs them
    (50 per request), with their raw request fields unless ``raw`` is False (as batch scoring
    logs them); returns their decision ids."""
    from riskops.serving.decision import DecisionBatch, new_decision_id
    from riskops.serving.decision_log import DecisionLog

    inputs = frame[served.engine.inputs]
    rows = inputs.astype(object).where(inputs.notna()).to_dict("records")
    # The raw request fields the service would keep: taken from the frame's columns of the
    # same names (a feature set holds categories normalised; close enough for the monitor).
    fields = frame.reindex(columns=list(served.input_fields))
    raw_rows = (
        fields.astype(object).where(fields.notna()).to_dict("records")
        if raw and len(fields.columns)
        else None
    )
    scores = served.engine.probabilities(served.engine.frame_matrix(frame))
    ids = [new_decision_id() for _ in rows]
    log = DecisionLog(sp.lake, sp.engine)
    for i in range(0, len(rows), 50):
        part = range(i, min(i + 50, len(rows)))
        log.submit(
            DecisionBatch(
                model=served.name, version=served.version, role="champion", decided_at=at,
                decision_ids=[ids[j] for j in part], entities=[None for _ in part],
                input_sha256=["0" * 64 for _ in part], features=[rows[j] for j in part],
                scores=[float(scores[j]) for j in part],
                bands=[served.bands.band(float(scores[j])) for j in part],
                reason_codes=[[] for _ in part], endpoint="score",
                inputs=None if raw_rows is None else [raw_rows[j] for j in part],
                input_fields=served.input_fields,
            )
        )  # fmt: skip
    assert log.close(30), "decisions were lost"
    return ids
