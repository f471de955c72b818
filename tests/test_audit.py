"""The hash-chained audit trail on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import math
import threading
from collections.abc import Callable

import pytest
import typer
from sqlalchemy import Engine, create_engine, text
from sqlmodel import Session, select
from typer.testing import CliRunner

# Importing the audit package registers audit_log on SQLModel.metadata before make_engine runs.
from riskops import audit, ledger
from riskops.audit import AuditRecord, append, chain, chain_proof, trail, verify, verify_proof
from riskops.cli import audit as audit_cli
from riskops.db import make_engine, session_scope
from riskops.records import LandedObject


def _payload(i: int) -> dict:
    return {
        "i": i,
        "auc": 0.5 + i / 1000,
        "tiny": 1e-300 * (i + 1),
        "big": 2**63 + i,
        "who": "Zoë ✓",
        "tags": ["a", i, None, True],
        "nested": {"z": 1, "a": [1.0, -0.0]},
    }


def _fill(engine: Engine, n: int) -> None:
    for i in range(1, n + 1):
        with session_scope(engine) as session:
            append(
                session=session, actor=f"user-{i % 3}", action="model.approved",
                subject=f"credit-scoring/{i}", payload=_payload(i),
            )  # fmt: skip


def _verify(engine: Engine, **kwargs: object) -> trail.VerifyResult:
    with session_scope(engine) as session:
        return verify(session=session, **kwargs)


def _head(engine: Engine) -> trail.ChainHead:
    with session_scope(engine) as session:
        return audit.head(session=session)


def _sql(engine: Engine, *statements: str, **params: object) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


@pytest.fixture
def chain50(engine: Engine) -> Engine:
    _fill(engine, 50)
    return engine


def test_fifty_appends_verify_and_survive_the_round_trip(chain50):
    result = _verify(chain50)
    assert result == trail.VerifyResult(ok=True, rows_checked=50)
    with session_scope(chain50) as session:
        rows = session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()
        assert [r.seq for r in rows] == list(range(1, 51))
        assert rows[0].prev_hash == audit.GENESIS_HASH
        assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
        assert rows[16].payload == _payload(17)
        assert audit.head(session=session)[:2] == (50, rows[-1].row_hash)  # [:2]: no anchor time


def test_empty_chain_is_ok_and_its_head_is_genesis(engine):
    assert _verify(engine) == trail.VerifyResult(ok=True, rows_checked=0)
    assert _head(engine)[:2] == (0, audit.GENESIS_HASH)
    assert _verify(engine, expected_head=(0, audit.GENESIS_HASH)).ok


def test_hash_ignores_the_postgres_session_timezone(engine):
    """The stored instant and so the hash must not depend on the reader's or writer's TimeZone."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no session time zone")
    url = engine.url.render_as_string(hide_password=False)
    kolkata = create_engine(url, connect_args={"options": "-c TimeZone=Asia/Kolkata"})
    try:
        with session_scope(kolkata) as session:
            written = append(session=session, actor="a", action="x", subject="s", payload={})
        _fill(engine, 2)
        assert _verify(engine).ok
        with Session(kolkata) as session:
            assert verify(session=session).ok
            stored = session.exec(select(AuditRecord).where(AuditRecord.seq == 1)).one()
            assert stored.occurred_at == written.occurred_at
    finally:
        kolkata.dispose()


def test_payload_is_normalised_or_refused(engine):
    with session_scope(engine) as session:
        row = append(session=session, actor="a", action="x", subject="s", payload={"t": (1, 2)})
        assert row.payload == {"t": [1, 2]}
        with pytest.raises(ValueError):
            append(session=session, actor="a", action="x", subject="s", payload={"x": math.nan})
        with pytest.raises(TypeError):
            append(
                session=session, actor="a", action="x", subject="s", payload={"d": dt.date.today()}
            )
    assert _verify(engine) == trail.VerifyResult(ok=True, rows_checked=1)


def test_canonical_content_is_fixed():
    when = dt.datetime(2025, 3, 1, 12, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    canonical = chain.canonical_content(
        seq=3, occurred_at=when, actor="ä", action="a", subject="s", payload={"b": 1.0, "a": [2]}
    )
    assert canonical == (
        '{"action":"a","actor":"\\u00e4","occurred_at":"2025-03-01T10:00:00.000005Z",'
        '"payload":{"a":[2],"b":1.0},"seq":3,"subject":"s"}'
    )
    naive = chain.canonical_content(
        seq=3, occurred_at=dt.datetime(2025, 3, 1, 10, 0, 0, 5), actor="ä", action="a",
        subject="s", payload={"a": [2], "b": 1.0},
    )  # fmt: skip
    assert naive == canonical


# Each tamper: SQL run behind the library's back, the first bad seq and what verify must say.
TAMPERS = [
    pytest.param(
        ["UPDATE audit_log SET payload = :p WHERE seq = 17"], {"p": json.dumps({"i": 999})},
        17, "row 17: content does not match its hash (edited)", id="edit-payload",
    ),
    pytest.param(
        ["UPDATE audit_log SET actor = 'mallory' WHERE seq = 5"], {},
        5, "row 5: content does not match its hash (edited)", id="edit-actor",
    ),
    pytest.param(
        ["UPDATE audit_log SET subject = 'credit-scoring/x' WHERE seq = 8"], {},
        8, "row 8: content does not match its hash (edited)", id="edit-subject",
    ),
    pytest.param(
        ["UPDATE audit_log SET occurred_at = :t WHERE seq = 12"],
        {"t": "2025-01-01 00:00:00.000000"},
        12, "row 12: content does not match its hash (edited)", id="edit-time",
    ),
    pytest.param(
        ["DELETE FROM audit_log WHERE seq = 30"], {},
        30, "row 30 missing: chain jumps from 29 to 31 (deleted)", id="delete-middle",
    ),
    pytest.param(
        ["DELETE FROM audit_log WHERE seq = 1"], {},
        1, "row 1 missing: chain starts at 2 (deleted)", id="delete-first",
    ),
    pytest.param(
        # Swap two rows' positions (via a negative seq: PostgreSQL checks uniqueness per row).
        ["UPDATE audit_log SET seq = -10 WHERE seq = 10",
         "UPDATE audit_log SET seq = 10 WHERE seq = 11",
         "UPDATE audit_log SET seq = 11 WHERE seq = -10"], {},
        10, "row 10: prev_hash does not match row 9 (inserted or reordered)", id="reorder",
    ),
    pytest.param(
        ["UPDATE audit_log SET row_hash = :h WHERE seq = 50"], {"h": "f" * 64},
        50, "row 50: content does not match its hash (edited)", id="edit-hash",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("statements", "params", "first_bad", "problem"), TAMPERS)
def test_tampering_is_detected_and_the_first_bad_row_named(
    chain50, statements, params, first_bad, problem
):
    _sql(chain50, *statements, **params)
    result = _verify(chain50)
    assert not result.ok
    assert (result.first_bad_seq, result.problem) == (first_bad, problem)
    assert result.rows_checked == first_bad - 1


def _forge(session: Session, *, seq: int, prev_hash: str) -> tuple[dict, str]:
    """A plausible row: its hash is computed exactly as the library does."""
    when = dt.datetime.now(dt.UTC)
    fields = dict(seq=seq, occurred_at=when, actor="mallory", action="model.approved",
                  subject="credit-scoring/9", payload={"forged": True})  # fmt: skip
    row_hash = chain.row_hash(prev_hash, chain.canonical_content(**fields))
    return {**fields, "payload": json.dumps(fields["payload"]), "prev": prev_hash}, row_hash


INSERT = (
    "INSERT INTO audit_log (seq, occurred_at, actor, action, subject, payload, prev_hash, "
    "row_hash) VALUES (:seq, :occurred_at, :actor, :action, :subject, :payload, :prev, :hash)"
)


def test_forged_row_inserted_in_the_middle_is_detected(chain50):
    with session_scope(chain50) as session:
        prev = session.exec(select(AuditRecord).where(AuditRecord.seq == 19)).one().row_hash
        params, row_hash = _forge(session, seq=20, prev_hash=prev)
    # Make room at seq 20 (two steps: PostgreSQL checks uniqueness row by row).
    _sql(
        chain50,
        "UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= 20",
        "UPDATE audit_log SET seq = -seq WHERE seq < 0",
    )
    _sql(chain50, INSERT, **params, hash=row_hash)
    result = _verify(chain50)
    assert not result.ok and result.first_bad_seq == 21
    assert result.problem == "row 21: prev_hash does not match row 20 (inserted or reordered)"


def test_forged_row_appended_with_a_made_up_hash_is_detected(chain50):
    with session_scope(chain50) as session:
        params, _ = _forge(session, seq=51, prev_hash=audit.head(session=session).row_hash)
    _sql(chain50, INSERT, **params, hash="a" * 64)
    result = _verify(chain50)
    assert (result.ok, result.first_bad_seq) == (False, 51)


def test_deleting_the_tail_needs_an_anchored_head(chain50):
    anchor = _head(chain50)
    _sql(chain50, "DELETE FROM audit_log WHERE seq >= 49")
    # What is left is a valid chain: the chain alone cannot tell (documented in trail.py).
    assert _verify(chain50) == trail.VerifyResult(ok=True, rows_checked=48)
    result = _verify(chain50, expected_head=anchor)
    assert (result.ok, result.first_bad_seq, result.rows_checked) == (False, 49, 48)
    assert "row 49 missing: chain ends at 48 but the anchored head is row 50" in result.problem
    # Later appends are fine: the anchor only has to stay in the chain.
    fresh = chain50
    _sql(fresh, "DELETE FROM audit_log")
    _fill(fresh, 3)
    anchor = _head(fresh)
    _fill(fresh, 2)
    assert _verify(fresh, expected_head=anchor).ok


def test_a_chain_rewritten_with_fresh_hashes_is_caught_by_the_anchor(chain50):
    anchor = _head(chain50)
    with session_scope(chain50) as session:
        rows = session.exec(select(AuditRecord).where(AuditRecord.seq >= 40)).all()
        prev = session.exec(select(AuditRecord).where(AuditRecord.seq == 39)).one().row_hash
        for row in sorted(rows, key=lambda r: r.seq):
            row.actor = "mallory" if row.seq == 40 else row.actor
            row.prev_hash = prev
            row.row_hash = prev = chain.row_hash(prev, trail.record_canonical(row))
            session.add(row)
    assert _verify(chain50).ok
    result = _verify(chain50, expected_head=anchor)
    assert (result.ok, result.first_bad_seq) == (False, 50)
    assert result.problem.startswith("row 50: hash differs from the anchored head")


def _landing(sha: str) -> LandedObject:
    return LandedObject(model="m", sha256=sha * 64, uri="file:///z", filename="z", size_bytes=1)


def test_a_failed_action_leaves_neither_its_record_nor_its_audit_row(engine):
    _fill(engine, 2)
    with pytest.raises(RuntimeError, match="boom"), session_scope(engine) as session:
        session.add(_landing("e"))  # the action's own write, before the audit row
        append(session=session, actor="a", action="data.landed", subject="m/e", payload={})
        # ...and one after it, through a function that uses a SAVEPOINT of its own.
        ledger.record_landing(
            session=session, model="m", sha256="f" * 64, uri="file:///f", filename="f",
            size_bytes=1,
        )  # fmt: skip
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"), session_scope(engine) as session:
        append(session=session, actor="a", action="data.landed", subject="m/e", payload={})
        raise RuntimeError("boom")  # the audit row as the transaction's only write
    with session_scope(engine) as session:
        assert session.exec(select(LandedObject)).all() == []
        assert audit.head(session=session).seq == 2
    assert _verify(engine).ok
    with session_scope(engine) as session:
        session.add(_landing("e"))
        append(session=session, actor="a", action="data.landed", subject="m/e", payload={})
    with session_scope(engine) as session:
        assert len(session.exec(select(LandedObject)).all()) == 1
    assert _verify(engine) == trail.VerifyResult(ok=True, rows_checked=3)


def test_concurrent_appenders_do_not_fork_the_chain(engine, monkeypatch):
    _fill(engine, 1)  # the first connection creates the WAL file before the race
    barrier = threading.Barrier(4)
    tail_reads: list[int] = []
    real = trail._read_tail

    def counted(session: Session) -> trail.ChainHead:
        tail_reads.append(1)
        return real(session)

    monkeypatch.setattr(trail, "_read_tail", counted)
    failures: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            barrier.wait()
            for i in range(25):
                with session_scope(engine) as session:
                    append(session=session, actor=name, action="t", subject="s", payload={"i": i})
        except BaseException as error:  # surfaced below, a thread cannot fail the test
            failures.append(error)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(tail_reads) == 100  # the lock, not the unique-seq retry, kept them in line
    with session_scope(engine) as session:
        rows = session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()
        assert [r.seq for r in rows] == list(range(1, 102))
        for name in ("w0", "w1", "w2", "w3"):
            assert [r.payload["i"] for r in rows if r.actor == name] == list(range(25))
    assert _verify(engine) == trail.VerifyResult(ok=True, rows_checked=101)


def test_a_stale_tail_is_retried_on_the_unique_seq(engine, monkeypatch):
    """The last line of defence: a writer that read a stale tail retries instead of forking."""
    _fill(engine, 3)
    real = trail._read_tail
    calls: list[int] = []

    def stale_once(session: Session) -> trail.ChainHead:
        calls.append(1)
        return trail.ChainHead(2, "b" * 64) if len(calls) == 1 else real(session)

    monkeypatch.setattr(trail, "_read_tail", stale_once)
    with session_scope(engine) as session:
        row = append(session=session, actor="a", action="t", subject="s", payload={})
    assert (row.seq, len(calls)) == (4, 2)
    assert _verify(engine) == trail.VerifyResult(ok=True, rows_checked=4)


def test_rows_for_subject_matches_a_literal_case_sensitive_prefix(engine):
    for subject in ["credit-scoring/1", "fraud/1", "credit-scoring/2", "credit_scoring/1",
                    "Credit-Scoring/3", "credit-scoring-v2/1"]:  # fmt: skip
        with session_scope(engine) as session:
            append(session=session, actor="a", action="t", subject=subject, payload={})
    with session_scope(engine) as session:

        def subjects(prefix: str) -> list[str]:
            rows = audit.rows_for_subject(session=session, subject_prefix=prefix)
            return [r.subject for r in rows]

        assert subjects("credit-scoring/") == ["credit-scoring/1", "credit-scoring/2"]
        assert subjects("credit_") == ["credit_scoring/1"]
        assert subjects("%") == []
        assert len(subjects("")) == 6


def _proof(engine: Engine, seqs: list[int]) -> dict:
    with session_scope(engine) as session:
        return chain_proof(session=session, seqs=seqs)


def test_proof_round_trip(chain50):
    proof = json.loads(json.dumps(_proof(chain50, [42, 3, 17, 17])))
    assert verify_proof(proof)
    assert [r["seq"] for r in proof["rows"]] == [3, 17, 42]
    assert [link["seq"] for link in proof["links"]] == [
        s for s in range(4, 51) if s not in (17, 42)
    ]
    assert proof["head"] == {"seq": 50, "row_hash": _head(chain50).row_hash}
    assert json.loads(proof["rows"][1]["canonical"])["payload"] == _payload(17)
    assert verify_proof(_proof(chain50, [1]))
    assert verify_proof(_proof(chain50, [50]))


def _edit_canonical(proof: dict) -> None:
    content = json.loads(proof["rows"][0]["canonical"])
    content["payload"]["auc"] = 0.99
    proof["rows"][0]["canonical"] = chain.canonical_json(content)


def _set(path: Callable[[dict], dict], key: str, value: object) -> Callable[[dict], None]:
    return lambda proof: path(proof).__setitem__(key, value)


PROOF_TAMPERS = {
    "edited-row": _edit_canonical,
    "non-canonical-row": lambda p: p["rows"][0].__setitem__(
        "canonical", p["rows"][0]["canonical"].replace(":", ": ", 1)
    ),
    "relabelled-row": _set(lambda p: p["rows"][0], "seq", 4),
    "edited-link": _set(lambda p: p["links"][5], "content_hash", "c" * 64),
    "dropped-link": lambda p: p["links"].pop(5),
    "wrong-head": _set(lambda p: p["head"], "row_hash", "d" * 64),
    "longer-head": _set(lambda p: p["head"], "seq", 51),
    "wrong-prev": _set(lambda p: p["rows"][1], "prev_hash", "e" * 64),
    "no-rows": lambda p: p["rows"].clear(),
    "garbage": lambda p: p.pop("links"),
}  # fmt: skip


@pytest.mark.parametrize("tamper", PROOF_TAMPERS.values(), ids=PROOF_TAMPERS.keys())
def test_a_tampered_proof_fails(chain50, tamper):
    proof = _proof(chain50, [3, 17])
    forged = copy.deepcopy(proof)
    tamper(forged)
    assert verify_proof(proof) and not verify_proof(forged)


def test_a_proof_over_a_tampered_chain_fails_and_unknown_rows_are_refused(chain50):
    _sql(chain50, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 30")
    assert not verify_proof(_proof(chain50, [3]))
    assert verify_proof(_proof(chain50, [31]))  # rows after the edit are still a valid chain
    with pytest.raises(LookupError):
        _proof(chain50, [3, 51])
    with pytest.raises(ValueError):
        _proof(chain50, [])


def _cli(*args: str) -> typer.testing.Result:
    root = typer.Typer()
    root.add_typer(audit_cli.app, name="audit")
    return CliRunner().invoke(root, ["audit", *args])


# MLflow's SQL store (opened in-process here) still uses SQLAlchemy's deprecated ``noload``.
@pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)
def test_cli_verify_and_head(settings, tmp_path, monkeypatch):
    # verify reads the anchored heads from MLflow: a private SQLite registry, never a server.
    monkeypatch.setenv("RISKOPS_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    engine = make_engine(settings.database_url)
    _fill(engine, 5)
    tip = _head(engine)
    ok = _cli("verify", "--json")
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["ok"] and data["rows_checked"] == 5 and data["head"] == tip._asdict()
    assert "intact" in _cli("verify").stdout
    assert _cli("head").stdout.strip() == f"{tip.seq}:{tip.row_hash}"
    _sql(engine, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    broken = _cli("verify")
    assert broken.exit_code == 1
    assert "row 4: content does not match its hash (edited)" in broken.stderr
    as_json = _cli("verify", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["first_bad_seq"] == 4
    _sql(engine, "UPDATE audit_log SET actor = 'user-1' WHERE seq = 4")
    _sql(engine, "DELETE FROM audit_log WHERE seq = 5")
    assert _cli("verify").exit_code == 0
    cut = _cli("verify", "--expect-head", f"{tip.seq}:{tip.row_hash}")
    assert cut.exit_code == 1 and "row 5 missing" in cut.stderr
    assert _cli("verify", "--expect-head", "nonsense").exit_code == 2
    engine.dispose()
