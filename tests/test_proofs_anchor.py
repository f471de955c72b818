"""Finding 10 (a): the chain head is anchored on MLflow model versions; verify reads it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from mlflow.tracking import MlflowClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from riskops import audit
from riskops.audit import anchor
from riskops.cli import audit as audit_cli
from riskops.db import make_engine, session_scope

# MLflow's SQL store opened in-process still uses SQLAlchemy's deprecated ``noload`` option.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)


def _registry(tmp_path: Path) -> tuple[MlflowClient, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri), uri


def _version(client: MlflowClient, model: str, tmp_path: Path) -> str:
    try:
        client.get_registered_model(model)
    except Exception:  # MlflowException: not registered yet
        client.create_registered_model(model)
    return str(client.create_model_version(model, source=str(tmp_path / "art")).version)


def _append(engine: Engine, n: int, subject: str = "credit-scoring/1") -> None:
    for i in range(n):
        with session_scope(engine) as session:
            audit.append(
                session=session, actor="t", action="model.promoted", subject=subject,
                payload={"i": i},
            )  # fmt: skip


def _anchor(engine: Engine, client: MlflowClient, model: str, version: str) -> audit.ChainHead:
    with session_scope(engine) as session:
        return anchor.anchor_head(session=session, client=client, model=model, version=version)


def _cli(*args: str) -> typer.testing.Result:
    root = typer.Typer()
    root.add_typer(audit_cli.app, name="audit")
    return CliRunner().invoke(root, ["audit", *args])


def test_anchor_head_tags_the_version_and_appends_nothing(engine, tmp_path, monkeypatch):
    """finding 10: the head (seq, hash, time) is written as a version tag; no audit row added."""
    monkeypatch.chdir(tmp_path)
    client, _ = _registry(tmp_path)
    _append(engine, 3)
    version = _version(client, "credit-scoring", tmp_path)
    written = _anchor(engine, client, "credit-scoring", version)
    with session_scope(engine) as session:
        tip = audit.head(session=session)
    assert tip.seq == 3 and written[:2] == tip[:2] and written.at.endswith("Z")
    tag = json.loads(client.get_model_version("credit-scoring", version).tags[anchor.HEAD_TAG])
    assert tag == {"seq": 3, "row_hash": tip.row_hash, "at": written.at}
    assert audit.collect_anchors(client) == [written]


def test_truncation_is_caught_by_verify_with_no_hand_kept_head(settings, tmp_path, monkeypatch):
    """finding 10: deleting the newest rows is caught by `riskops audit verify` via anchors."""
    monkeypatch.chdir(tmp_path)
    client, uri = _registry(tmp_path)
    monkeypatch.setenv("RISKOPS_MLFLOW_TRACKING_URI", uri)
    engine = make_engine(settings.database_url)
    _append(engine, 4)
    _anchor(engine, client, "credit-scoring", _version(client, "credit-scoring", tmp_path))
    _append(engine, 2, subject="fraud-detection/1")
    fraud = _version(client, "fraud-detection", tmp_path)
    newest = _anchor(engine, client, "fraud-detection", fraud)
    ok = _cli("verify", "--json")
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["anchors_checked"] == 2 and report["newest_anchor"]["seq"] == newest.seq == 6
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 5"))
    cut = _cli("verify")
    assert cut.exit_code == 1
    assert "row 5 missing" in cut.stderr and "anchored head is row 6" in cut.stderr
    engine.dispose()


def test_a_rewritten_chain_or_a_forged_older_anchor_is_caught(engine, tmp_path, monkeypatch):
    """finding 10: every anchor must match the chain, not only the newest."""
    monkeypatch.chdir(tmp_path)
    client, _ = _registry(tmp_path)
    _append(engine, 3)
    first = _version(client, "credit-scoring", tmp_path)
    _anchor(engine, client, "credit-scoring", first)
    _append(engine, 2)
    _anchor(engine, client, "credit-scoring", _version(client, "credit-scoring", tmp_path))
    with session_scope(engine) as session:
        assert audit.verify_anchored(session=session, anchors=audit.collect_anchors(client)).ok
    forged = json.dumps({"seq": 3, "row_hash": "f" * 64, "at": "2026-01-01T00:00:00.000000Z"})
    client.set_model_version_tag("credit-scoring", first, anchor.HEAD_TAG, forged)
    with session_scope(engine) as session:
        result = audit.verify_anchored(session=session, anchors=audit.collect_anchors(client))
    assert not result.ok and result.first_bad_seq == 3
    assert "anchored at 2026-01-01" in result.problem


def test_an_unreadable_anchor_fails_verify_naming_the_version(settings, tmp_path, monkeypatch):
    """finding 10: a defaced anchor tag is evidence, never silently skipped."""
    monkeypatch.chdir(tmp_path)
    client, uri = _registry(tmp_path)
    monkeypatch.setenv("RISKOPS_MLFLOW_TRACKING_URI", uri)
    version = _version(client, "credit-scoring", tmp_path)
    client.set_model_version_tag("credit-scoring", version, anchor.HEAD_TAG, "deleted")
    result = _cli("verify")
    assert result.exit_code == 1
    assert f"model credit-scoring version {version}" in result.stderr
    assert _cli("verify", "--no-anchors").exit_code == 0


def test_deleted_anchors_are_not_a_warning_when_champions_moved(settings, tmp_path, monkeypatch):
    """Removing every anchor tag from MLflow must not turn verify into 'intact, no anchor'."""
    from riskops.db import session_scope
    from riskops.records import PromotionRecord

    monkeypatch.chdir(tmp_path)
    _client, uri = _registry(tmp_path)
    monkeypatch.setenv("RISKOPS_MLFLOW_TRACKING_URI", uri)
    engine = make_engine(settings.database_url)
    _append(engine, 3)
    with session_scope(engine) as session:
        session.add(PromotionRecord(model="credit-scoring", version="1", kind="promote",
                                    actor="riskops-promotion"))  # fmt: skip
    engine.dispose()
    result = _cli("verify")
    assert result.exit_code == 1 and "anchors were deleted" in result.stderr
