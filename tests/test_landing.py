"""The landing watcher and the contract check's outcome, on the local lake (no Prefect)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskops import events, ledger
from riskops.db import session_scope
from riskops.lake import LakeError, LocalLake, landing_key
from riskops.landing.watcher import DirectoryPoller, LandingWatcher
from riskops.settings import ContractSettings
from riskops.stages.contract import check_landed
from tests.helpers import CollectingSender
from tests.test_contracts import credit_frame


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")


@pytest.fixture
def onboarded(engine, credit_spec):
    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=credit_spec)
    return engine


def land(lake: LocalLake, path: Path, model: str = "credit-scoring") -> str:
    key = landing_key(model, path.name)
    lake.put_file(key, path)
    return key


def good_file(tmp_path: Path, name: str = "good.csv", seed: int = 0) -> Path:
    path = tmp_path / name
    credit_frame(seed=seed).to_csv(path, index=False)
    return path


def test_same_content_five_times_is_announced_once(lake, onboarded, tmp_path):
    sender = CollectingSender()
    watcher = LandingWatcher(lake=lake, engine=onboarded, send=sender)
    path = good_file(tmp_path)
    for i in range(5):
        copy = tmp_path / f"copy-{i}.csv"
        copy.write_bytes(path.read_bytes())
        watcher.handle(land(lake, copy))
    assert sender.names == [events.DATA_LANDED]
    event, _event_id = sender.sent[0]
    assert event.resource_id.startswith("riskops.dataset.credit-scoring.")
    assert event.payload["filename"] == "copy-0.csv"
    # duplicates under other names are removed; the first copy waits for its check
    assert [o.key for o in lake.list("landing")] == ["landing/credit-scoring/copy-0.csv"]
    # a restarted watcher (new instance, same ledger) announces nothing again
    again = LandingWatcher(lake=lake, engine=onboarded, send=sender)
    again.handle("landing/credit-scoring/copy-0.csv")
    assert len(sender.sent) == 1


def test_unsent_events_are_retried_until_confirmed(lake, onboarded, tmp_path):
    sender = CollectingSender()
    sender.fail = True
    watcher = LandingWatcher(lake=lake, engine=onboarded, send=sender)
    watcher.handle(land(lake, good_file(tmp_path)))
    assert sender.sent == []
    with session_scope(onboarded) as session:
        assert len(ledger.pending_emissions(session=session)) == 1
    sender.fail = False
    assert watcher.flush_pending() == 1
    assert watcher.flush_pending() == 0
    assert sender.names == [events.DATA_LANDED]


def test_poller_waits_for_a_file_to_settle(lake, tmp_path):
    poller = DirectoryPoller(lake, settle_seconds=1.0)
    target = lake.path("landing/credit-scoring/slow.csv")
    target.parent.mkdir(parents=True)
    target.write_text("a,b\n")
    assert poller.ready(now=0.0) == []
    target.write_text("a,b\n1,2\n")  # still growing
    assert poller.ready(now=0.5) == []
    assert poller.ready(now=1.0) == []
    assert poller.ready(now=2.0) == ["landing/credit-scoring/slow.csv"]
    poller.done("landing/credit-scoring/slow.csv")
    assert poller.ready(now=3.0) == []


def _check(lake, engine, key: str, sha: str, model: str = "credit-scoring"):
    return check_landed(
        lake=lake, engine=engine, model=model, uri=lake.uri(key), sha256=sha,
        filename=Path(key).name, contract=ContractSettings(), landed_event_id=None,
    )  # fmt: skip


def test_accepted_file_becomes_an_immutable_dataset_version(lake, onboarded, tmp_path):
    sender = CollectingSender()
    key = land(lake, good_file(tmp_path))
    sha = LandingWatcher(lake=lake, engine=onboarded, send=sender).handle(key).sha256
    outcome = _check(lake, onboarded, key, sha)
    assert outcome.accepted and outcome.event.name == events.DATA_ACCEPTED
    assert not lake.exists(key)
    folder = f"datasets/credit-scoring/{sha}"
    assert {o.key.rsplit("/", 1)[1] for o in lake.list(folder)} == {
        "data.parquet", "manifest.json", "source.csv",
    }  # fmt: skip
    manifest = json.loads(lake.get_bytes(f"{folder}/manifest.json"))
    assert manifest["row_count"] == 200 and manifest["sha256"] == sha
    with session_scope(onboarded) as session:
        (row,) = ledger.list_landings(session=session)
        assert row.status == "accepted" and row.dataset_version_id == f"credit-scoring-{sha[:16]}"
    # a re-run of the same check (e.g. a retried flow run) changes nothing
    again = _check(lake, onboarded, key, sha)
    assert again.accepted and again.summary == "already accepted"


@pytest.mark.parametrize(
    ("model", "content", "code"),
    [
        ("credit-scoring", b"", "empty_file"),
        ("credit-scoring", b"\x89PNG\r\n\x1a\n\x00\x00binary", "encoding"),
        ("credit-scoring", b"income\n12\n", "missing_column"),
        ("not-onboarded", b"a,b\n1,2\n", "unknown_model"),
    ],
)
def test_rejected_file_is_quarantined_with_reasons(lake, onboarded, tmp_path, model, content, code):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    key = land(lake, path, model)
    sha = LandingWatcher(lake=lake, engine=onboarded, send=CollectingSender()).handle(key).sha256
    outcome = _check(lake, onboarded, key, sha, model)
    assert not outcome.accepted and outcome.event.name == events.DATA_REJECTED
    assert code in [r["code"] for r in outcome.event.payload["reasons"]]
    folder = f"quarantine/{model}/{sha}"
    assert lake.get_bytes(f"{folder}/bad.csv") == content  # nothing is lost
    reasons = json.loads(lake.get_bytes(f"{folder}/reasons.json"))
    assert reasons["reasons"][0]["code"] == code and reasons["sha256"] == sha


def test_file_outside_a_model_folder_is_quarantined_as_unassigned(lake, onboarded, tmp_path):
    lake.put_file("landing/stray.csv", good_file(tmp_path))
    sighting = LandingWatcher(lake=lake, engine=onboarded, send=CollectingSender()).handle(
        "landing/stray.csv"
    )
    assert sighting.model == "unassigned" and sighting.action == "announced"
    outcome = _check(lake, onboarded, "landing/stray.csv", sighting.sha256, "unassigned")
    assert outcome.reasons[0]["code"] == "unknown_model"
    assert "landing/<model>/<file>" in outcome.reasons[0]["message"]


def test_local_uris_round_trip_odd_file_names(lake, tmp_path):
    source = tmp_path / "Q3 applications (final) – €.csv"  # noqa: RUF001 (an odd name on purpose)
    source.write_text("a\n1\n")
    key = landing_key("credit-scoring", source.name)
    uri = lake.put_file(key, source)
    assert "%20" in uri and lake.key_of(uri) == key
    with lake.local_copy(lake.key_of(uri)) as path:
        assert path.read_text() == "a\n1\n"
    with pytest.raises(LakeError, match="not inside the local lake"):
        lake.key_of("file:///etc/passwd")


def test_trees_are_written_whole_and_once(lake, tmp_path):
    tree = tmp_path / "fs"
    (tree / "data" / "event_date=2026-01-01").mkdir(parents=True)
    (tree / "data" / "event_date=2026-01-01" / "part-0.parquet").write_bytes(b"x")
    (tree / "manifest.json").write_text("{}")
    uri = lake.put_tree("featuresets/m/v1", tree, last="manifest.json")
    assert uri.endswith("featuresets/m/v1")
    with lake.local_tree("featuresets/m/v1") as local:
        assert (local / "data" / "event_date=2026-01-01" / "part-0.parquet").read_bytes() == b"x"
    with pytest.raises(LakeError, match="written once"):
        lake.put_tree("featuresets/m/v1", tree)
    with pytest.raises(LakeError, match="nothing stored"), lake.local_tree("featuresets/m/v2"):
        pass
