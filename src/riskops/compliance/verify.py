"""Check a regulator export on its own: signature, manifest, every audit row, proof and anchor.

Nothing here trusts a stored hash it can recompute: each row of ``audit/rows.json`` is made
canonical again and hashed, the result must be the row the chain proof discloses, the proof
must link to its head, and the head must reach the chain head anchored outside the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from riskops.audit import verify_proof
from riskops.audit.chain import canonical_content, content_hash, link_hash
from riskops.compliance.export import ANCHOR, MANIFEST, PUBLIC_KEY, SIGNATURE
from riskops.compliance.signing import PublicKeyLike, load_public_key, public_pem, signature_holds

ROWS, PROOF = "audit/rows.json", "audit/chain_proof.json"


def _signature_problems(
    archive: zipfile.ZipFile, names: set[str], trusted: PublicKeyLike | None
) -> list[str]:
    """Is MANIFEST.json signed, by the trusted key (or the one shipped, when none is given)?"""
    if SIGNATURE not in names:
        return [f"{SIGNATURE}: missing (the manifest is unsigned and proves nothing)"]
    problems = []
    try:
        shipped = load_public_key(archive.read(PUBLIC_KEY)) if PUBLIC_KEY in names else None
    except ValueError as error:
        shipped, problems = None, [f"{PUBLIC_KEY}: unreadable ({error})"]
    try:
        key = load_public_key(trusted) if trusted is not None else shipped
    except ValueError as error:
        return [*problems, f"the public key given to verify_export: {error}"]
    if key is None:
        return [*problems, f"{PUBLIC_KEY}: missing and no public key was given"]
    if trusted is not None and shipped is not None and public_pem(shipped) != public_pem(key):
        problems.append(f"{PUBLIC_KEY}: not the public key you trust (export re-signed)")
    if not signature_holds(key, archive.read(MANIFEST), archive.read(SIGNATURE)):
        problems.append(f"{MANIFEST}: signature does not verify (manifest edited or re-signed)")
    return problems


def _manifest_problems(archive: zipfile.ZipFile, names: set[str], listed: list[Any]) -> list[str]:
    problems = []
    for item in listed:
        name = item.get("path")
        if name not in names:
            problems.append(f"{name}: listed in the manifest but missing")
            continue
        data = archive.read(name)
        if hashlib.sha256(data).hexdigest() != item.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the manifest")
        elif len(data) != item.get("size"):
            problems.append(f"{name}: size differs from the manifest")
    known = {item.get("path") for item in listed} | {MANIFEST, SIGNATURE}
    return problems + [f"{name}: not listed in the manifest" for name in sorted(names - known)]


def _row_canonical(row: Mapping[str, Any]) -> str:
    """A row of rows.json made canonical again from its own fields (what its hash covers)."""
    occurred = dt.datetime.fromisoformat(str(row["occurred_at"]).replace("Z", "+00:00"))
    return canonical_content(
        seq=row["seq"], occurred_at=occurred, actor=row["actor"], action=row["action"],
        subject=row["subject"], payload=row["payload"],
    )  # fmt: skip


def _row_problems(rows: list[Any], proof: Mapping[str, Any]) -> list[str]:
    """Each exported row recomputed, linked to its neighbour and matched to the proof."""
    disclosed = {r.get("seq"): r for r in proof.get("rows") or [] if isinstance(r, Mapping)}
    problems, seen, previous = [], set(), None
    for index, row in enumerate(rows):
        try:
            seq, canonical = row["seq"], _row_canonical(row)
            digest = link_hash(str(row["prev_hash"]), content_hash(canonical))
        except (KeyError, TypeError, ValueError, AttributeError):
            problems.append(f"{ROWS}: entry {index} is not a complete audit row")
            continue
        seen.add(seq)
        if digest != row.get("row_hash"):
            problems.append(f"{ROWS}: row {seq} content does not match its hash (edited)")
        given = disclosed.get(seq)
        if given is None or given.get("canonical") != canonical or given.get("row_hash") != digest:
            problems.append(f"{ROWS}: row {seq} is not covered by the chain proof")
        if previous is not None and seq == previous[0] + 1 and row["prev_hash"] != previous[1]:
            problems.append(f"{ROWS}: row {seq} does not link to row {previous[0]}")
        previous = (seq, row.get("row_hash"))
    for seq in sorted(set(disclosed) - seen, key=str):
        problems.append(f"{ROWS}: row {seq} disclosed by the chain proof is missing")
    return problems


def _proof_hash_at(proof: Mapping[str, Any], seq: int) -> str | None:
    for entry in [*(proof.get("rows") or []), *(proof.get("links") or [])]:
        if isinstance(entry, Mapping) and entry.get("seq") == seq:
            return entry.get("row_hash")
    return None


def _anchor_problems(anchor: Any, proof: Mapping[str, Any]) -> list[str]:
    """The proof's head must reach the anchored head, with the same hash at the anchor's row."""
    if not isinstance(anchor, Mapping) or "seq" not in anchor:
        return []  # no anchor existed when the export was made (stated in audit/anchor.json)
    head = proof.get("head") or {}
    seq, at = anchor.get("seq"), anchor.get("at")
    if not isinstance(seq, int) or not isinstance(head.get("seq"), int):
        return [f"{ANCHOR}: seq {seq!r} or the proof's head is not a number"]
    if head["seq"] < seq:
        return [
            f"{PROOF}: head is row {head['seq']} but row {seq} was anchored at {at} "
            "(rows cut from the chain before export)"
        ]
    stored = _proof_hash_at(proof, seq)
    if stored is not None and stored != anchor.get("row_hash"):
        return [f"{PROOF}: row {seq} differs from the head anchored at {at} (chain rewritten)"]
    return []


def _load(archive: zipfile.ZipFile, names: set[str], name: str, default: Any) -> Any:
    return json.loads(archive.read(name)) if name in names else default


def _audit_problems(archive: zipfile.ZipFile, names: set[str]) -> list[str]:
    try:
        proof = _load(archive, names, PROOF, {})
        rows = _load(archive, names, ROWS, [])
        anchor = _load(archive, names, ANCHOR, None)
    except ValueError as error:
        return [f"audit: cannot parse JSON ({error})"]
    if not isinstance(rows, list):
        return [f"{ROWS}: not a list of rows"]
    if not isinstance(proof, dict) or "rows" not in proof:
        # No proof: acceptable only when there is no row to prove.
        return [f"{ROWS}: {len(rows)} rows but no chain proof"] if rows else []
    problems = [] if verify_proof(proof) else [f"{PROOF}: the proof does not verify"]
    return problems + _row_problems(rows, proof) + _anchor_problems(anchor, proof)


def verify_export(path: Path | str, public_key: PublicKeyLike | None = None) -> list[str]:
    """What was altered in an export (which file, which row); [] when everything holds.

    ``public_key`` is the platform's published key (key, PEM or PEM file); without it the key
    shipped in the export is used, so compare its fingerprint (MANIFEST.json) out of band.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        return [f"{path}: not a readable zip ({error})"]
    with archive:
        names = {info.filename for info in archive.infolist()}
        if MANIFEST not in names:
            return [f"{MANIFEST}: missing"]
        problems = _signature_problems(archive, names, public_key)
        try:
            listed = json.loads(archive.read(MANIFEST))["files"]
        except (ValueError, KeyError, TypeError) as error:
            return [*problems, f"{MANIFEST}: unreadable ({error})"]
        problems += _manifest_problems(archive, names, listed)
        problems += _audit_problems(archive, names)
    return problems
