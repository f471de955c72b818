"""Records a governance test starts from: principals, a spec, a landed dataset, versions."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from riskops import ledger
from riskops.db import session_scope
from riskops.identity.principals import add_principal
from riskops.records import (
    DatasetVersion,
    LandingClaim,
    ModelVersionRecord,
    SignOffRecord,
    ValidationRecord,
)
from riskops.specs import ModelSpec

SHA = "ab" * 32


def principal(engine: Engine, name: str, role: str) -> str:
    """Create a principal; returns its key."""
    with session_scope(engine) as session:
        _principal, key = add_principal(session=session, name=name, role=role, actor="admin")
    return key


def pipeline_version(
    engine: Engine, spec: ModelSpec, version: str, *, landed_by: str | None, onboarded_by: str,
    passed: bool | None = True,
) -> None:  # fmt: skip
    """A pipeline version of ``spec`` trained on data landed by ``landed_by``, validated or not."""
    sha = f"{int(version):02d}" + SHA[2:]
    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=spec, source="test", actor=onboarded_by)
        dataset = DatasetVersion(
            id=f"{spec.name}-{sha[:16]}",
            model=spec.name,
            sha256=sha,
            uri="file:///x",
            source_uri="file:///x",
            row_count=1,
            columns=[],
            spec_hash=spec.spec_hash(),
        )
        session.add(dataset)
        if landed_by:
            session.add(LandingClaim(model=spec.name, sha256=sha, principal=landed_by))
        session.add(
            ModelVersionRecord(
                model=spec.name,
                version=version,
                run_id=None,
                feature_set_id=None,
                dataset_version_id=dataset.id,
                source="pipeline",
                trainer="riskops-pipeline",
            )
        )
        if passed is not None:
            session.add(
                ValidationRecord(
                    model=spec.name,
                    version=version,
                    passed=passed,
                    failed_gates=[] if passed else ["discrimination.auc"],
                    report={},
                )
            )


def legacy_approval(engine: Engine, model: str, version: str, approver: str) -> None:
    """An approval row as the old code wrote it: a typed name, never authenticated."""
    with session_scope(engine) as session:
        session.add(
            SignOffRecord(
                model=model,
                version=version,
                approver=approver,
                decision="approve",
                justification="typed into the form",
                accepted=True,
                verified=False,
            )
        )


def verified_approval(engine: Engine, model: str, version: str, approver: str) -> None:
    """An accepted, authenticated approval (what the sign-off flow records)."""
    with session_scope(engine) as session:
        session.add(
            SignOffRecord(
                model=model,
                version=version,
                approver=approver,
                approver_role="risk-officer",
                decision="approve",
                justification="gates passed, benchmark comparable",
                accepted=True,
                verified=True,
                channel="governance-api",
            )
        )


def ed25519_keypair() -> tuple[str, str]:
    """A fresh (private PEM, public PEM) pair for signing sign-off decisions."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


def gate_report(engine: Engine, model: str, version: str, results: list[dict]) -> None:
    """Give the validation record of a version the gate results a validation run reports."""
    from sqlmodel import select

    with session_scope(engine) as session:
        record = session.exec(
            select(ValidationRecord).where(
                ValidationRecord.model == model, ValidationRecord.version == version
            )
        ).one()
        failed = [r["name"] for r in results if not r["passed"]]
        record.report = {"passed": not failed, "failed": failed, "context": {}, "results": results}
        session.add(record)
