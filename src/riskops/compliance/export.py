"""The regulator export: one deterministic zip of card, gates, lineage, audit proof and manifest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from riskops.audit import HASH_RULE, verify_proof
from riskops.compliance.card import Card
from riskops.compliance.facts import NA, gates_markdown
from riskops.compliance.templating import render

EXPORT_FORMAT = "riskops-regulator-export/1"
MANIFEST = "MANIFEST.json"
README = "README.txt"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no clock in the bytes
CORE_FILES = frozenset(
    {
        "card.md", "card.html", "card.json", "gate_report.json", "gate_report.md",
        "lineage.json", "audit/rows.json", "audit/chain_proof.json", "approvals.json",
        "data_profiles.json", MANIFEST, README,
    }
)  # fmt: skip


def _plain(value: Any) -> Any:
    """``value`` as strict JSON types: datetimes ISO, paths str, NaN/inf None, tuples lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump(mode="json"))
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _json(value: Any) -> bytes:
    text = json.dumps(_plain(value), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _missing(what: str) -> dict[str, Any]:
    return {"available": False, "status": NA, "what": what}


def _archive_name(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts or str(path) in CORE_FILES:
        raise ValueError(f"extra file name {name!r} is not a free relative path in the export")
    return str(path)


def _readme(archive: str, card: Card, proof: Mapping[str, Any]) -> bytes:
    head = proof.get("head") or {}
    text = render(
        "export_readme.txt.j2",
        model=card.model,
        version=card.version,
        generated_at=card.data.get("generated_at"),
        format=EXPORT_FORMAT,
        archive=archive,
        hash_rule=HASH_RULE,
        head_seq=head.get("seq", NA),
        head_hash=head.get("row_hash", NA),
    )
    return text.encode("utf-8")


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so the permission bits below mean the same everywhere
    info.external_attr = 0o644 << 16
    return info


def write_regulator_export(
    *,
    out_path: Path,
    card: Card,
    gate_report: dict[str, Any] | None,
    lineage: dict[str, Any],
    audit_rows: list[dict[str, Any]],
    chain_proof: dict[str, Any],
    approvals: list[dict[str, Any]],
    data_profiles: dict[str, Any] | None,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write the export zip (same inputs → same bytes) and return its path."""
    out_path = Path(out_path)
    files: dict[str, bytes] = {
        "card.md": card.to_markdown().encode("utf-8"),
        "card.html": card.to_html().encode("utf-8"),
        "card.json": _json(card.to_dict()),
        "gate_report.json": _json(gate_report if gate_report is not None else _missing("gates")),
        "gate_report.md": gates_markdown(gate_report).encode("utf-8"),
        "lineage.json": _json(lineage or _missing("lineage")),
        "audit/rows.json": _json(audit_rows),
        "audit/chain_proof.json": _json(chain_proof or _missing("chain proof")),
        "approvals.json": _json(approvals),
        "data_profiles.json": _json(
            data_profiles if data_profiles is not None else _missing("data profiles")
        ),
        **card.plot_files,
    }
    for name, path in sorted((extra_files or {}).items()):
        arcname = _archive_name(name)
        if arcname in files:
            raise ValueError(f"extra file {name!r} would overwrite {arcname}")
        files[arcname] = Path(path).read_bytes()
    files[README] = _readme(out_path.name, card, chain_proof or {})
    manifest = {
        "format": EXPORT_FORMAT,
        "model": card.model,
        "version": card.version,
        "generated_at": card.data.get("generated_at"),
        "audit_head": (chain_proof or {}).get("head"),
        "files": [
            {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        ],
    }
    files[MANIFEST] = _json(manifest)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for name in sorted(files):
                archive.writestr(_entry(name), files[name], compresslevel=9)
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def _audit_problems(archive: zipfile.ZipFile, names: set[str]) -> list[str]:
    if "audit/chain_proof.json" not in names:
        return []
    try:
        proof = json.loads(archive.read("audit/chain_proof.json"))
        rows = json.loads(archive.read("audit/rows.json")) if "audit/rows.json" in names else []
    except ValueError as error:
        return [f"audit: cannot parse JSON ({error})"]
    if not isinstance(proof, dict) or "rows" not in proof:
        return []  # no proof was available when the export was made
    problems = [] if verify_proof(proof) else ["audit/chain_proof.json: the proof does not verify"]
    proven = {r.get("seq"): r.get("row_hash") for r in proof.get("rows") or []}
    for row in rows if isinstance(rows, list) else []:
        seq = row.get("seq") if isinstance(row, dict) else None
        if seq is not None and proven.get(seq) != row.get("row_hash"):
            problems.append(f"audit/rows.json: row {seq} is not covered by the chain proof")
    return problems


def verify_export(path: Path | str) -> list[str]:
    """Problems with an export: files that differ from, miss or escape MANIFEST.json; bad proof."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        return [f"{path}: not a readable zip ({error})"]
    with archive:
        names = {info.filename for info in archive.infolist()}
        if MANIFEST not in names:
            return [f"{MANIFEST}: missing"]
        try:
            listed = json.loads(archive.read(MANIFEST))["files"]
        except (ValueError, KeyError, TypeError) as error:
            return [f"{MANIFEST}: unreadable ({error})"]
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
        known = {item.get("path") for item in listed} | {MANIFEST}
        problems += [f"{name}: not listed in the manifest" for name in sorted(names - known)]
        problems += _audit_problems(archive, names)
    return problems
