"""Finding 10 (b, c): a regulator export is signed, and its rows are recomputed, not trusted."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from typer.testing import CliRunner

from riskops import audit
from riskops.cli import audit as audit_cli
from riskops.compliance import build_card, verify_export, write_regulator_export
from riskops.compliance.signing import public_pem, sign
from riskops.db import session_scope
from riskops.secrets import signing_key
from tests.test_compliance import LINEAGE, REPORT, SIGN_OFFS, _inputs

PLATFORM_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
SUBJECT = "credit-scoring/3"


def _chain(engine, extra: int = 1) -> None:
    with session_scope(engine) as session:
        for action in ("model.registered", "signoff.approve", "model.promoted"):
            audit.append(session=session, actor="t", action=action, subject=SUBJECT,
                         payload={"n": 1})  # fmt: skip
        for i in range(extra):
            audit.append(session=session, actor="t", action="x", subject="other/1",
                         payload={"i": i})  # fmt: skip


def _export(engine, out: Path, anchor=None, key=PLATFORM_KEY) -> Path:
    with session_scope(engine) as session:
        found = audit.rows_for_subject(session=session, subject_prefix=SUBJECT)
        rows = [r.model_dump(mode="json") for r in found]
        proof = audit.chain_proof(session=session, seqs=[r["seq"] for r in rows])
        tip = audit.head(session=session)
    return write_regulator_export(
        out_path=out, card=build_card(_inputs_for_card()), gate_report=REPORT, lineage=LINEAGE,
        audit_rows=rows, chain_proof=proof, approvals=SIGN_OFFS, data_profiles=None,
        signing_key=key, anchor=anchor if anchor is not None else tip,
    )  # fmt: skip


def _inputs_for_card():
    from riskops.specs import load_spec
    from tests.conftest import MODELS

    return _inputs(load_spec(MODELS / "credit-scoring.yaml"), {})


def _files(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _write(path: Path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def _remanifest(files: dict[str, bytes], key: Ed25519PrivateKey | None) -> None:
    """What a forger does: recompute every hash of the manifest (and re-sign when able)."""
    manifest = json.loads(files["MANIFEST.json"])
    for item in manifest["files"]:
        item["sha256"] = hashlib.sha256(files[item["path"]]).hexdigest()
        item["size"] = len(files[item["path"]])
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    if key is not None:
        files["MANIFEST.sig"] = sign(key, files["MANIFEST.json"])


def _edit_row(files: dict[str, bytes], seq: int, **changes: object) -> None:
    rows = json.loads(files["audit/rows.json"])
    for row in rows:
        if row["seq"] == seq:
            row.update(changes)
    files["audit/rows.json"] = json.dumps(rows).encode()


@pytest.fixture
def export(engine, tmp_path) -> Path:
    _chain(engine)
    path = _export(engine, tmp_path / "export.zip")
    assert verify_export(path, public_key=PLATFORM_KEY.public_key()) == []
    return path


def test_an_export_is_signed_and_ships_its_public_key_and_anchor(export):
    """finding 10 (c): MANIFEST.sig and public_key.pem are in the zip; the anchor too."""
    files = _files(export)
    assert files["public_key.pem"] == public_pem(PLATFORM_KEY)
    assert set(json.loads(files["audit/anchor.json"])) == {"seq", "row_hash", "at"}
    manifest = json.loads(files["MANIFEST.json"])
    assert manifest["signature"]["algorithm"] == "Ed25519"
    assert manifest["audit_anchor"]["seq"] == 4
    assert verify_export(export) == []


def test_an_edited_row_with_a_recomputed_manifest_is_named(export, tmp_path):
    """finding 10 (b): even re-signed by the platform key, an edited row's hash is recomputed."""
    files = _files(export)
    _edit_row(files, 2, actor="mallory")
    _remanifest(files, PLATFORM_KEY)
    forged = tmp_path / "forged.zip"
    _write(forged, files)
    problems = verify_export(forged, public_key=PLATFORM_KEY.public_key())
    assert "audit/rows.json: row 2 content does not match its hash (edited)" in problems
    assert all("row 2" in p for p in problems), problems


def test_an_edited_row_with_its_hash_recomputed_too_is_caught_by_the_proof(export, tmp_path):
    """finding 10 (b): a consistent forged row is not the row the chain proof links to."""
    from riskops.audit.chain import row_hash
    from riskops.compliance.verify import _row_canonical

    files = _files(export)
    row = next(r for r in json.loads(files["audit/rows.json"]) if r["seq"] == 1)
    row["actor"] = "mallory"
    new_hash = row_hash(row["prev_hash"], _row_canonical(row))
    _edit_row(files, 1, actor="mallory", row_hash=new_hash)
    _remanifest(files, PLATFORM_KEY)
    _write(tmp_path / "forged.zip", files)
    problems = verify_export(tmp_path / "forged.zip", public_key=PLATFORM_KEY.public_key())
    assert "audit/rows.json: row 1 is not covered by the chain proof" in problems
    assert "audit/rows.json: row 2 does not link to row 1" in problems


def test_a_dropped_row_is_named(export, tmp_path):
    """finding 10 (b): a row the proof discloses cannot be left out of rows.json."""
    files = _files(export)
    rows = [r for r in json.loads(files["audit/rows.json"]) if r["seq"] != 3]
    files["audit/rows.json"] = json.dumps(rows).encode()
    _remanifest(files, PLATFORM_KEY)
    _write(tmp_path / "forged.zip", files)
    assert verify_export(tmp_path / "forged.zip") == [
        "audit/rows.json: row 3 disclosed by the chain proof is missing"
    ]


def test_an_edited_manifest_fails_the_signature(export, tmp_path):
    """finding 10 (c): a recomputed but unsigned manifest is refused, naming MANIFEST.json."""
    files = _files(export)
    files["card.md"] = b"# a friendlier card\n"
    _remanifest(files, key=None)
    _write(tmp_path / "forged.zip", files)
    assert verify_export(tmp_path / "forged.zip") == [
        "MANIFEST.json: signature does not verify (manifest edited or re-signed)"
    ]


def test_a_re_signed_export_fails_against_the_published_key(export, tmp_path):
    """finding 10 (c): swapping in the forger's own key only works if the reader trusts it."""
    mallory = Ed25519PrivateKey.generate()
    files = _files(export)
    files["card.md"] = b"# a friendlier card\n"
    files["public_key.pem"] = public_pem(mallory)
    _remanifest(files, mallory)
    _write(tmp_path / "forged.zip", files)
    problems = verify_export(tmp_path / "forged.zip", public_key=public_pem(PLATFORM_KEY))
    assert "public_key.pem: not the public key you trust (export re-signed)" in problems
    assert "MANIFEST.json: signature does not verify (manifest edited or re-signed)" in problems
    unsigned = dict(files)
    del unsigned["MANIFEST.sig"]
    _write(tmp_path / "unsigned.zip", unsigned)
    assert "MANIFEST.sig: missing" in verify_export(tmp_path / "unsigned.zip")[0]


def test_a_chain_cut_before_export_is_caught_by_the_anchor(engine, tmp_path):
    """finding 10 (a): rows deleted from the tail before the export contradict the anchor."""
    _chain(engine, extra=3)
    with session_scope(engine) as session:
        anchored = audit.head(session=session)._replace(at="2026-11-30T12:00:00.000000Z")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 5"))
    path = _export(engine, tmp_path / "cut.zip", anchor=anchored)
    assert verify_export(path) == [
        "audit/chain_proof.json: head is row 4 but row 6 was anchored at "
        "2026-11-30T12:00:00.000000Z (rows cut from the chain before export)"
    ]


def test_cli_verify_export(export, tmp_path, settings):
    """finding 10: `riskops audit verify-export ZIP` exits 1 naming the altered file."""
    root = typer.Typer()
    root.add_typer(audit_cli.app, name="audit")
    key_file = tmp_path / "platform.pem"
    key_file.write_bytes(public_pem(PLATFORM_KEY))
    runner = CliRunner()
    ok = runner.invoke(root, ["audit", "verify-export", str(export), "--public-key", str(key_file)])
    assert ok.exit_code == 0 and "export intact" in ok.stdout
    files = _files(export)
    _edit_row(files, 2, actor="mallory")
    _remanifest(files, PLATFORM_KEY)
    _write(export, files)
    bad = runner.invoke(root, ["audit", "verify-export", str(export), "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["problems"] == [
        "audit/rows.json: row 2 content does not match its hash (edited)",
        "audit/rows.json: row 2 is not covered by the chain proof",
    ]
    first, again = signing_key(settings), signing_key(settings)
    assert public_pem(first) == public_pem(again)  # kept under RISKOPS_HOME, made once
    assert (settings.home_dir / "secrets" / "export-signing.key").stat().st_mode & 0o077 == 0
