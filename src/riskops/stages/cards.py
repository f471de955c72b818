"""Model cards and regulator exports, written from the records (never by hand)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from riskops import audit, catalog
from riskops.audit.anchor import newest_anchor
from riskops.compliance import build_card, gather_card_inputs, write_regulator_export
from riskops.compliance.card import Card
from riskops.compliance.profiles import profile_frame
from riskops.db import session_scope
from riskops.lake.base import Lake
from riskops.records import DatasetVersion, SignOffRecord, ValidationRecord
from riskops.specs import ModelSpec
from riskops.stages.validation import spec_of_version


@dataclass(frozen=True)
class CardFiles:
    card: Card
    markdown: Path
    html: Path
    json: Path


def make_card(
    *, engine: Engine, client: MlflowClient, model: str, version: str, workdir: Path
) -> Card:
    """Build the card of a version; its plots are downloaded into ``workdir`` (keep it)."""
    spec = spec_of_version(engine, model, str(version))
    with session_scope(engine) as session:
        inputs = gather_card_inputs(
            session=session, client=client, spec=spec, model=model, version=str(version),
            workdir=workdir,
        )  # fmt: skip
    return build_card(inputs)


def write_card(
    *, engine: Engine, client: MlflowClient, model: str, version: str, out_dir: Path,
    log_to_mlflow: bool = True,
) -> CardFiles:  # fmt: skip
    """Write card.md / card.html / card.json under ``out_dir`` and log them to the run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="riskops-card-") as tmp:
        card = make_card(
            engine=engine, client=client, model=model, version=version, workdir=Path(tmp)
        )
        files = CardFiles(card, out_dir / "card.md", out_dir / "card.html", out_dir / "card.json")
        files.markdown.write_text(card.to_markdown())
        files.html.write_text(card.to_html())
        files.json.write_text(json.dumps(card.to_dict(), indent=2, default=str))
    run_id = client.get_model_version(model, str(version)).run_id
    if log_to_mlflow and run_id:
        for path in (files.markdown, files.html, files.json):
            client.log_artifact(run_id, str(path), "card")
    return files


def _data_profile(lake: Lake, dataset: DatasetVersion, spec: ModelSpec) -> dict[str, Any]:
    """A per-column summary of the training data; identifier columns are withheld."""
    with lake.local_copy(lake.key_of(dataset.uri)) as path:
        frame = pd.read_parquet(path)
    return {"dataset_version": dataset.id, **profile_frame(frame, spec)}


def write_export(
    *, engine: Engine, client: MlflowClient, lake: Lake, model: str, version: str,
    out_path: Path, signing_key: Ed25519PrivateKey,
) -> Path:  # fmt: skip
    """The regulator's zip: card, gates, lineage, audit rows + proof + anchor, approvals, data.

    Its manifest is signed with ``signing_key`` (``riskops.secrets.signing_key``).
    """
    version = str(version)
    with tempfile.TemporaryDirectory(prefix="riskops-export-") as tmp:
        card = make_card(
            engine=engine, client=client, model=model, version=version, workdir=Path(tmp)
        )
        anchor = newest_anchor(audit.collect_anchors(client))
        parts = _export_parts(engine, lake, model, version)
        return write_regulator_export(
            out_path=out_path, card=card, signing_key=signing_key, anchor=anchor, **parts
        )


def _export_parts(engine: Engine, lake: Lake, model: str, version: str) -> dict[str, Any]:
    """The records of the export, read in one session so they agree with each other."""
    subject = f"{model}/{version}"
    spec = spec_of_version(engine, model, version)
    with session_scope(engine) as session:
        rows = [
            r for r in audit.rows_for_subject(session=session, subject_prefix=subject)
            if r.subject == subject
        ]  # fmt: skip
        proof = audit.chain_proof(session=session, seqs=[r.seq for r in rows]) if rows else {}
        audit_rows = [r.model_dump(mode="json") for r in rows]
        validation = session.exec(
            select(ValidationRecord).where(
                ValidationRecord.model == model, ValidationRecord.version == version
            )
        ).first()
        approvals = [
            r.model_dump(mode="json")
            for r in session.exec(
                select(SignOffRecord).where(
                    SignOffRecord.model == model, SignOffRecord.version == version
                )
            ).all()
        ]
        try:
            lineage = catalog.lineage_of_version(session=session, model=model, version=version)
        except LookupError:
            lineage = {"note": f"{subject} was registered outside the riskops pipeline"}
        dataset_id = (lineage.get("dataset_version") or {}).get("id")
        dataset = session.get(DatasetVersion, dataset_id) if dataset_id else None
    profiles = {"training_data": _data_profile(lake, dataset, spec)} if dataset else None
    return {
        "gate_report": validation.report if validation else None, "lineage": lineage,
        "audit_rows": audit_rows, "chain_proof": proof, "approvals": approvals,
        "data_profiles": profiles,
    }  # fmt: skip
