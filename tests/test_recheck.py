"""Finding 12: a quarantined file can be re-checked; the same bytes again are a duplicate."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlmodel import select

from riskops import audit, ledger
from riskops.db import make_engine, session_scope
from riskops.landing.client import land_file
from riskops.landing.recheck import RecheckRefused, request_recheck
from riskops.landing.watcher import LandingWatcher
from riskops.outbox import OutboxEvent
from riskops.platform import Platform
from riskops.specs import parse_spec
from riskops.stages.contract import check_landed
from tests.helpers import CollectingSender
from tests.test_contracts import credit_frame

MODEL = "credit-scoring"


@pytest.fixture
def platform(settings):
    platform = Platform.from_settings(settings, with_secrets=False)
    yield platform
    platform.close()


def _check(platform, row):
    return check_landed(
        lake=platform.lake, engine=platform.engine, model=MODEL, uri=row.uri, sha256=row.sha256,
        filename=row.filename, contract=platform.contract,
    )  # fmt: skip


def test_a_quarantined_file_is_rechecked_against_the_changed_spec(
    settings, platform, credit_spec, tmp_path
):
    frame = credit_frame(seed=3)
    frame = pd.concat([frame, frame.head(3)], ignore_index=True)  # three duplicated rows
    path = tmp_path / "dupes.csv"
    frame.to_csv(path, index=False)
    with session_scope(platform.engine) as session:
        ledger.register_spec(session=session, spec=credit_spec, actor="dev@bank")
    landed = land_file(settings, path, MODEL, landed_by="dev@bank")
    assert landed.duplicate_of is None
    watcher = LandingWatcher(lake=platform.lake, engine=platform.engine, send=CollectingSender())
    watcher.handle(platform.lake.key_of(landed.uri))
    with session_scope(platform.engine) as session:
        row = ledger.get_landing(session=session, model=MODEL, sha256=landed.sha256)
    first = _check(platform, row)
    assert not first.accepted and "duplicate_rows" in {r["code"] for r in first.reasons}

    # the same bytes again: a duplicate, said so, and nothing else happens
    again = land_file(settings, path, MODEL, landed_by="dev@bank")
    assert again.duplicate_of is not None and again.duplicate_of.status == "rejected"
    assert list(platform.lake.list("landing")) == []

    # the runbook's advice: allow duplicates in the spec, then re-check the quarantined file
    data = credit_spec.model_dump(mode="json")
    data["data"] = {**data["data"], "allow_duplicate_rows": True, "id_column": None}
    with session_scope(platform.engine) as session:
        ledger.register_spec(session=session, spec=parse_spec(data), actor="dev@bank")
    done = request_recheck(platform=platform, model=MODEL, sha256=landed.sha256[:12],
                           actor="dev@bank")  # fmt: skip
    assert done.attempt == 1 and done.spec_hash == parse_spec(data).spec_hash()
    with session_scope(platform.engine) as session:
        queued = session.get(OutboxEvent, done.outbox_id)
        row = ledger.get_landing(session=session, model=MODEL, sha256=landed.sha256)
        assert queued.name == "riskops.data.landed" and queued.payload["uri"] == row.uri
    second = _check(platform, row)
    assert second.accepted and second.dataset_version_id
    with session_scope(platform.engine) as session:
        actions = [r.action for r in audit.rows_for_subject(
            session=session, subject_prefix=f"{MODEL}/data/{landed.sha256}")]  # fmt: skip
    assert actions == ["data.submitted", "data.rejected", "data.recheck-requested", "data.accepted"]
    with pytest.raises(RecheckRefused, match="accepted, not in quarantine"):
        request_recheck(platform=platform, model=MODEL, sha256=landed.sha256, actor="dev@bank")


def test_the_cli_says_a_landing_is_a_duplicate_with_when_and_which_verdict(
    settings, platform, credit_spec, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from riskops.cli.main import app
    from tests.governance_helpers import principal

    monkeypatch.setenv("RISKOPS_API_KEY", principal(platform.engine, "dev@bank", "model-developer"))
    with session_scope(platform.engine) as session:
        ledger.register_spec(session=session, spec=credit_spec, actor="dev@bank")
    path = tmp_path / "good.csv"
    credit_frame(seed=4).to_csv(path, index=False)
    first = CliRunner().invoke(app, ["land", str(path), "--model", MODEL])
    assert first.exit_code == 0 and "landed" in first.output
    LandingWatcher(lake=platform.lake, engine=platform.engine, send=CollectingSender()).handle(
        f"landing/{MODEL}/good.csv"
    )
    second = CliRunner().invoke(app, ["land", str(path), "--model", MODEL])
    assert second.exit_code == 0 and "duplicate" in second.output
    assert "Nothing was landed" in second.output and "good.csv" in second.output
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        rows = session.exec(select(OutboxEvent)).all()
    assert rows == []  # nothing queued for a duplicate
    engine.dispose()
