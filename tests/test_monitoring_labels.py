"""Late outcomes: landed pseudonymised, indexed, audited and announced; bad files refused whole."""

from __future__ import annotations

import hashlib
import hmac
import re

import pandas as pd
import pytest
from sqlmodel import Session, select

from riskops.audit.table import AuditRecord
from riskops.audit.trail import verify
from riskops.events import LABELS_LANDED
from riskops.lake.local import LocalLake
from riskops.monitoring.labels import LabelsRefused, land_labels, read_labels
from riskops.outbox import OutboxEvent
from riskops.platform import Platform
from riskops.records import LabelsFile

KEY = "labels-test-pseudonym-key"
IDS = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]


@pytest.fixture
def platform(engine, tmp_path) -> Platform:
    return Platform(engine=engine, lake=LocalLake(tmp_path / "lake"), mlflow_tracking_uri=None,
                    pseudonym_key=KEY)  # fmt: skip


def write(tmp_path, name: str, frame: pd.DataFrame):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def test_outcomes_land_pseudonymised_indexed_audited_and_announced(platform, credit_spec, tmp_path):
    target, entity = credit_spec.target, credit_spec.entity_column
    frame = pd.DataFrame(
        {
            "decision_id": [IDS[0], IDS[1], None],
            entity: ["C-1", "C-2", "C-3"],
            "decided_at": ["2026-06-01T10:00:00Z", "2026-06-02T11:00:00Z", "2026-06-03T12:00:00Z"],
            target: [1, 0, 0],
        }
    )
    path = write(tmp_path, "outcomes.csv", frame)
    done = land_labels(platform=platform, spec=credit_spec, path=path, actor="alice")
    assert (done.rows, done.with_decision_id, done.bads, done.duplicate) == (3, 2, 1, False)
    stored = read_labels(platform, credit_spec.name)
    assert list(stored["decision_id"].iloc[:2]) == IDS and pd.isna(stored["decision_id"].iloc[2])
    pseudonym = hmac.new(KEY.encode(), b"C-3", hashlib.sha256).hexdigest()
    assert stored["entity"].iloc[2] == pseudonym
    assert list(stored["label"]) == [1, 0, 0]
    assert stored["decided_at"].iloc[0] == pd.Timestamp("2026-06-01T10:00:00Z")
    raw = b"".join(platform.lake.get_bytes(i.key) for i in platform.lake.list("labels"))
    assert b"C-1" not in raw and b"C-3" not in raw  # no raw id in the lake
    with Session(platform.engine) as session:
        (record,) = session.exec(select(LabelsFile)).all()
        (event,) = session.exec(select(OutboxEvent).where(OutboxEvent.name == LABELS_LANDED))
        audit = session.exec(select(AuditRecord).where(AuditRecord.action == "labels.landed"))
        assert [a.actor for a in audit] == ["alice"]
    assert record.event_id == event.id and event.payload["rows"] == 3
    assert event.resource_id == f"riskops.labels.{credit_spec.name}.{done.sha256[:16]}"
    with Session(platform.engine) as session:
        assert verify(session=session).ok
    again = land_labels(platform=platform, spec=credit_spec, path=path, actor="bob")
    assert again.duplicate and again.outbox_id is None
    assert len(read_labels(platform, credit_spec.name)) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, t: f.drop(columns=[t]), "target column"),
        (lambda f, t: f.assign(**{t: [1, 7]}), "values outside [0, 1] on line(s) 3"),
        (
            lambda f, t: f.assign(decision_id=["x", IDS[1]]),
            "not a 32-hex-digit decision id on line(s) 2",
        ),
        (lambda f, t: f.assign(decided_at=["soon", "2026-06-01"]), "not a time on line(s) 2"),
        (lambda f, t: f.drop(columns=["decision_id", "decided_at"]), "which decision"),
    ],
)
def test_a_bad_label_file_is_refused_whole_and_quarantined(
    platform, credit_spec, tmp_path, change, message
):
    frame = pd.DataFrame(
        {"decision_id": IDS, "decided_at": ["2026-06-01", "2026-06-02"], credit_spec.target: [1, 0]}
    )
    path = write(tmp_path, "bad.csv", change(frame, credit_spec.target))
    with pytest.raises(LabelsRefused, match=re.escape(message)) as refused:
        land_labels(platform=platform, spec=credit_spec, path=path, actor="alice")
    assert "Nothing was landed" in str(refused.value) and refused.value.quarantine_uri
    assert read_labels(platform, credit_spec.name).empty
    kept = [i.key for i in platform.lake.list("quarantine/labels")]
    assert any(k.endswith("bad.csv") for k in kept) and any(
        k.endswith("reasons.json") for k in kept
    )
