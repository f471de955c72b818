"""The regulator export: one deterministic zip of card, gates, lineage, audit proof, signature."""

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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from riskops.audit import HASH_RULE, ChainHead
from riskops.compliance.card import Card
from riskops.compliance.facts import NA, gates_markdown
from riskops.compliance.signing import ALGORITHM, fingerprint, public_pem, sign
from riskops.compliance.templating import render

EXPORT_FORMAT = "riskops-regulator-export/1"
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"  # base64 Ed25519 signature of the exact bytes of MANIFEST.json
PUBLIC_KEY = "public_key.pem"
ANCHOR = "audit/anchor.json"
README = "README.txt"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no clock in the bytes
CORE_FILES = frozenset(
    {
        "card.md", "card.html", "card.json", "gate_report.json", "gate_report.md",
        "lineage.json", "audit/rows.json", "audit/chain_proof.json", "approvals.json",
        "data_profiles.json", MANIFEST, SIGNATURE, PUBLIC_KEY, ANCHOR, README,
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


def _readme(
    archive: str, card: Card, proof: Mapping[str, Any], anchor: Mapping[str, Any], key_id: str
) -> bytes:
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
        anchor_seq=anchor.get("seq", NA),
        anchor_hash=anchor.get("row_hash", NA),
        anchor_at=anchor.get("at", NA),
        fingerprint=key_id,
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
    signing_key: Ed25519PrivateKey,
    anchor: Mapping[str, Any] | ChainHead | None = None,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write the export zip, its manifest signed by ``signing_key`` (same inputs → same bytes).

    ``anchor`` is the newest chain head anchored outside the database ({seq, row_hash, at});
    the chain proof must reach it, which a regulator checks with ``verify_export``.
    """
    out_path = Path(out_path)
    if isinstance(anchor, ChainHead):
        anchor = anchor._asdict()
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
        ANCHOR: _json(dict(anchor) if anchor else _missing("anchored chain head")),
        PUBLIC_KEY: public_pem(signing_key),
        **card.plot_files,
    }
    for name, path in sorted((extra_files or {}).items()):
        arcname = _archive_name(name)
        if arcname in files:
            raise ValueError(f"extra file {name!r} would overwrite {arcname}")
        files[arcname] = Path(path).read_bytes()
    key_id = fingerprint(signing_key)
    files[README] = _readme(out_path.name, card, chain_proof or {}, anchor or {}, key_id)
    manifest = {
        "format": EXPORT_FORMAT,
        "model": card.model,
        "version": card.version,
        "generated_at": card.data.get("generated_at"),
        "audit_head": (chain_proof or {}).get("head"),
        "audit_anchor": dict(anchor) if anchor else None,
        "signature": {
            "algorithm": ALGORITHM,
            "file": SIGNATURE,
            "public_key": PUBLIC_KEY,
            "public_key_sha256": key_id,
        },
        "files": [
            {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        ],
    }
    files[MANIFEST] = _json(manifest)
    files[SIGNATURE] = sign(signing_key, files[MANIFEST])
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
