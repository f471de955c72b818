"""Lineage both ways: model version ↔ feature set ↔ dataset version ↔ landed file."""

from __future__ import annotations

import pytest

from riskops import catalog, ledger
from riskops.db import session_scope
from riskops.records import DatasetVersion, FeatureSetRecord, ModelVersionRecord

SHA = "ab" * 32


@pytest.fixture
def chain(engine):
    with session_scope(engine) as session:
        ledger.record_landing(
            session=session,
            model="m",
            sha256=SHA,
            uri="file:///l/a.csv",
            filename="a.csv",
            size_bytes=9,
        )
        ledger.add_dataset_version(
            session=session,
            version=DatasetVersion(
                id=f"m-{SHA[:16]}", model="m", sha256=SHA, uri="file:///d", source_uri="file:///s",
                row_count=9, columns=["x"], spec_hash="c" * 64,
            ),
        )  # fmt: skip
        catalog.add_feature_set(
            session=session,
            record=FeatureSetRecord(
                id="m-fs1", model="m", version="fs1", dataset_version_id=f"m-{SHA[:16]}",
                uri="file:///f", row_count=9, definitions_hash="d" * 64, code_version="abc",
                manifest={},
            ),
        )  # fmt: skip
        for version in ("1", "2"):
            catalog.add_model_version(
                session=session,
                record=ModelVersionRecord(
                    model="m", version=version, run_id=f"r{version}", feature_set_id="m-fs1",
                    dataset_version_id=f"m-{SHA[:16]}", trainer="t", metrics={"holdout_auc": 0.8},
                ),
            )  # fmt: skip
    return engine


def test_walk_back_from_a_version_to_the_landed_hash(chain):
    with session_scope(chain) as session:
        found = catalog.lineage_of_version(session=session, model="m", version="2")
    assert found["feature_set"]["version"] == "fs1"
    assert found["dataset_version"]["id"] == f"m-{SHA[:16]}"
    assert found["landed"]["sha256"] == SHA and found["landed"]["filename"] == "a.csv"


def test_walk_forward_from_a_landed_hash_prefix(chain):
    with session_scope(chain) as session:
        found = catalog.versions_trained_on(session=session, model="m", sha256_prefix=SHA[:12])
    assert found == [
        {"dataset_version": f"m-{SHA[:16]}", "sha256": SHA, "model_versions": ["1", "2"]}
    ]


def test_versions_are_recorded_once(chain):
    with session_scope(chain) as session:
        again = catalog.add_model_version(
            session=session, record=ModelVersionRecord(model="m", version="1", run_id="other")
        )
        assert again.run_id == "r1"
        assert len(catalog.list_model_versions(session=session, model="m")) == 2


def test_unknown_version_is_a_clear_error(chain):
    with session_scope(chain) as session, pytest.raises(LookupError, match="m version 9"):
        catalog.lineage_of_version(session=session, model="m", version="9")
