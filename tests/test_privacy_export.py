"""Finding 8: raw customer and application ids never reach data profiles, exports or cards."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mlflow.tracking import MlflowClient

from riskops import audit, catalog, ledger
from riskops.audit.anchor import anchor_head
from riskops.compliance import verify_export
from riskops.compliance.profiles import identifier_columns, profile_frame
from riskops.db import session_scope
from riskops.lake.local import LocalLake
from riskops.records import DatasetVersion, ModelVersionRecord
from riskops.stages.cards import make_card, write_export

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)
ROWS = 60
SHA = "cd" * 32


def _applications() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "application_id": [f"APP-{i:06d}" for i in range(ROWS)],
            # Each customer applied twice: repeated ids would top a value count.
            "customer_id": [f"CUST-{i // 2:05d}" for i in range(ROWS)],
            "branch_ref": [f"BR-{i:04d}-{i * 7919 % 1000:03d}" for i in range(ROWS)],
            "applied_at": pd.date_range("2025-01-01", periods=ROWS, freq="D", tz="UTC"),
            "income": rng.uniform(20_000, 90_000, ROWS),
            "employment_type": rng.choice(["salaried", "self_employed"], ROWS),
            "gender": rng.choice(["female", "male"], ROWS),
            "age": rng.integers(18, 80, ROWS),
            "default_12m": rng.integers(0, 2, ROWS),
        }
    )


def _raw_ids(frame: pd.DataFrame) -> list[str]:
    return [*frame["application_id"], *frame["customer_id"], *frame["branch_ref"]]


def test_identifier_columns_are_withheld_from_profiles(credit_spec):
    """finding 8: entity, id and unique-per-row text columns are named, never profiled."""
    frame = _applications()
    withheld = identifier_columns(frame, credit_spec)
    assert withheld == {
        "customer_id": "spec.entity_column",
        "application_id": "spec.data.id_column",
        "branch_ref": "unique-per-row text (looks like an identifier)",
    }
    profile = profile_frame(frame, credit_spec)
    assert set(profile["columns"]).isdisjoint(withheld)
    assert set(profile["columns"]["gender"]["top"]) == {"female", "male"}
    assert set(profile["columns"]["applied_at"]) == {"dtype", "nulls", "min", "max"}
    text = repr(profile)
    assert not [value for value in _raw_ids(frame) if value in text]


def test_export_zip_and_card_hold_no_raw_id(engine, credit_spec, tmp_path, monkeypatch):
    """finding 8: search every file of the export (and the card) for the data's raw ids.

    Also finding 10: the export made by the stage carries the head anchored in MLflow.
    """
    monkeypatch.chdir(tmp_path)
    frame = _applications()
    lake = LocalLake(tmp_path / "lake")
    frame.to_parquet(tmp_path / "d.parquet")
    uri = lake.put_file("datasets/credit-scoring/d.parquet", tmp_path / "d.parquet")
    dataset_id = f"credit-scoring-{SHA[:16]}"
    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=credit_spec)
        ledger.add_dataset_version(
            session=session,
            version=DatasetVersion(
                id=dataset_id, model="credit-scoring", sha256=SHA, uri=uri, source_uri=uri,
                row_count=ROWS, columns=list(frame.columns), spec_hash=credit_spec.spec_hash(),
            ),
        )  # fmt: skip
        catalog.add_model_version(
            session=session,
            record=ModelVersionRecord(
                model="credit-scoring", version="1", dataset_version_id=dataset_id
            ),
        )
        audit.append(session=session, actor="t", action="model.registered",
                     subject="credit-scoring/1", payload={"rows": ROWS})  # fmt: skip
    uri_ml = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri_ml, registry_uri=uri_ml)
    client.create_registered_model("credit-scoring")
    client.create_model_version("credit-scoring", source=str(tmp_path))
    with session_scope(engine) as session:
        anchored = anchor_head(session=session, client=client, model="credit-scoring", version="1")
    key = Ed25519PrivateKey.generate()
    path = write_export(
        engine=engine, client=client, lake=lake, model="credit-scoring", version="1",
        out_path=tmp_path / "export.zip", signing_key=key,
    )  # fmt: skip
    assert verify_export(path, public_key=key.public_key()) == []
    with zipfile.ZipFile(path) as archive:
        contents = {
            name: archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
        }
    assert json.loads(contents["audit/anchor.json"]) == anchored._asdict()
    assert "income" in contents["data_profiles.json"]  # the profile is there ...
    leaks = [(n, v) for n, text in contents.items() for v in _raw_ids(frame) if v in text]
    assert leaks == []  # ... but no raw id anywhere in the zip
    card = make_card(engine=engine, client=client, model="credit-scoring", version="1",
                     workdir=tmp_path / "w")  # fmt: skip
    rendered = card.to_markdown() + card.to_html() + repr(card.to_dict())
    assert not [v for v in _raw_ids(frame) if v in rendered]
    (anchor_control,) = [c for c in card.to_dict()["controls"] if "anchored" in c["control"]]
    assert anchor_control["status"] == "ran"
    assert "customer_id" in contents["data_profiles.json"]  # withheld by name, with the reason
