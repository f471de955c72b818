"""Contract-check stage: a landed file becomes a dataset version, or goes to quarantine."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from riskops import audit, events, ledger, outbox
from riskops.contracts import ContractResult, Violation, check_file
from riskops.contracts import violations as v
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.hashing import sha256_file
from riskops.lake.base import DATASETS, QUARANTINE, UNASSIGNED, Lake
from riskops.monitoring.baselines import profile_dataset, safely
from riskops.records import DatasetVersion, utcnow
from riskops.settings import ContractSettings
from riskops.specs import ModelSpec

log = logging.getLogger("riskops.contract")
CHECKER = "riskops-contract-check"


@dataclass
class CheckOutcome:
    """The result of checking one landed object, and the event that announces it."""

    model: str
    sha256: str
    filename: str
    accepted: bool
    summary: str
    row_count: int = 0
    reasons: list[dict[str, Any]] = field(default_factory=list)
    dataset_version_id: str | None = None
    dataset_uri: str | None = None
    quarantine_uri: str | None = None
    event: RiskopsEvent | None = None
    outbox_id: str | None = None  # None: nothing new to announce (already checked)


def _write_json(lake: Lake, key: str, data: dict[str, Any]) -> str:
    body = json.dumps(data, indent=2, sort_keys=True, default=str).encode()
    return lake.put_bytes(key, body)


def quarantine(
    *, lake: Lake, key: str, model: str, sha256: str, filename: str, reasons: list[dict[str, Any]]
) -> str:
    """Move a refused object to quarantine with a machine-readable reasons.json beside it."""
    folder = f"{QUARANTINE}/{model}/{sha256}"
    destination = f"{folder}/{filename}"
    _write_json(
        lake,
        f"{folder}/reasons.json",
        {
            "model": model,
            "sha256": sha256,
            "filename": filename,
            "landed_uri": lake.uri(key),
            "quarantined_at": utcnow().isoformat(),
            "reasons": reasons,
        },
    )
    if key == destination:  # a re-check of a file already in quarantine: it stays there
        return lake.uri(key)
    return lake.move(key, destination)


def store_dataset(
    *, lake: Lake, key: str, spec: ModelSpec, result: ContractResult, sha256: str, filename: str
) -> tuple[str, str]:
    """Write the typed data and the original bytes under datasets/<model>/<sha256>/.

    Returns (data URI, source URI). Content-addressed: an existing version is never rewritten.
    """
    folder = f"{DATASETS}/{spec.name}/{sha256}"
    data_key, manifest_key = f"{folder}/data.parquet", f"{folder}/manifest.json"
    source_key = f"{folder}/source{Path(filename).suffix.lower() or '.bin'}"
    if lake.exists(manifest_key):
        return lake.uri(data_key), lake.uri(source_key)
    assert result.frame is not None
    with tempfile.TemporaryDirectory(prefix="riskops-dataset-") as tmp:
        local = Path(tmp) / "data.parquet"
        result.frame.to_parquet(local, index=False)
        data_uri = lake.put_file(data_key, local)
    source_uri = lake.move(key, source_key)
    _write_json(
        lake,
        manifest_key,
        {
            "model": spec.name,
            "sha256": sha256,
            "filename": filename,
            "row_count": result.row_count,
            "columns": result.columns,
            "spec_hash": spec.spec_hash(),
            "data": data_uri,
            "source": source_uri,
            "created_at": utcnow().isoformat(),
        },
    )
    return data_uri, source_uri


def _event(
    outcome: CheckOutcome, landed_event_id: str | None, spec_hash: str | None
) -> RiskopsEvent:
    related: list[tuple[str, str]] = []
    if spec_hash:
        related.append((f"riskops.spec.{outcome.model}.{spec_hash[:16]}", "spec"))
    if landed_event_id:
        related.append((f"riskops.event.{landed_event_id}", "landed-event"))
    payload: dict[str, Any] = {
        "model": outcome.model,
        "sha256": outcome.sha256,
        "filename": outcome.filename,
        "summary": outcome.summary,
    }
    if outcome.accepted:
        payload |= {
            "dataset_version": outcome.dataset_version_id,
            "uri": outcome.dataset_uri,
            "row_count": outcome.row_count,
            "spec_hash": spec_hash,
        }
    else:
        payload |= {"reasons": outcome.reasons, "quarantine_uri": outcome.quarantine_uri}
    return RiskopsEvent(
        name=events.DATA_ACCEPTED if outcome.accepted else events.DATA_REJECTED,
        resource_id=events.dataset_resource(outcome.model, outcome.sha256),
        resource_name=outcome.filename,
        payload=payload,
        related=tuple(related),
    )


def record_check_failure(*, engine: Engine, model: str, sha256: str, error: BaseException) -> None:
    """Note on the ledger that the check crashed, so `riskops land --wait` can say so."""
    message = f"{type(error).__name__}: {error}"[:2000]
    with session_scope(engine) as session:
        ledger.mark_check_failed(session=session, model=model, sha256=sha256, error=message)


def check_landed(
    *,
    lake: Lake,
    engine: Engine,
    model: str,
    uri: str,
    sha256: str,
    filename: str,
    contract: ContractSettings,
    landed_event_id: str | None = None,
) -> CheckOutcome:
    """Check one landed object against its spec, then store it or quarantine it.

    The object is written to its destination before it leaves landing, so a failure at any
    step leaves the file somewhere (and a re-run finishes the job).
    """
    key = lake.key_of(uri)
    spec: ModelSpec | None = None
    with session_scope(engine) as session:
        previous = ledger.get_landing(session=session, model=model, sha256=sha256)
        try:
            spec = ledger.current_spec(session=session, name=model) if model != UNASSIGNED else None
        except ledger.UnknownModelError:
            spec = None
    if (
        not lake.exists(key)
        and previous is not None
        and previous.status in {"accepted", "rejected"}
    ):
        log.info("%s was already checked (%s); re-announcing the outcome", uri, previous.status)
        outcome = CheckOutcome(
            model,
            sha256,
            filename,
            previous.status == "accepted",
            f"already {previous.status}",
            reasons=previous.reasons or [],
            dataset_version_id=previous.dataset_version_id,
            quarantine_uri=previous.quarantine_uri,
        )
        outcome.event = _event(outcome, landed_event_id, spec.spec_hash() if spec else None)
        return outcome

    with lake.local_copy(key) as path:
        actual = sha256_file(path)
        if spec is None:
            where = (
                "has no model folder (land it as landing/<model>/<file>)"
                if model == UNASSIGNED
                else "is not onboarded"
            )
            result = ContractResult(
                model,
                [
                    Violation(
                        v.UNKNOWN_MODEL,
                        f"model {model!r} {where}; run `riskops onboard SPEC` first",
                    )
                ],
            )
        else:
            result = check_file(
                spec,
                path,
                filename,
                default_null_rate=contract.max_null_rate,
                max_rows_listed=contract.max_reported_rows,
            )
    if actual != sha256:
        raise RuntimeError(
            f"{uri} changed after it landed (sha256 {actual[:16]} != {sha256[:16]}); "
            "the watcher will announce the new content as a new landing"
        )

    outcome = CheckOutcome(
        model,
        sha256,
        filename,
        result.accepted,
        result.summary(),
        result.row_count,
        result.reasons(),
    )
    if result.accepted and spec is not None:
        outcome.dataset_uri, source_uri = store_dataset(
            lake=lake, key=key, spec=spec, result=result, sha256=sha256, filename=filename
        )
        outcome.dataset_version_id = ledger.dataset_version_id(model, sha256)
        with session_scope(engine) as session:
            ledger.add_dataset_version(
                session=session,
                version=DatasetVersion(
                    id=outcome.dataset_version_id,
                    model=model,
                    sha256=sha256,
                    uri=outcome.dataset_uri,
                    source_uri=source_uri,
                    row_count=result.row_count,
                    columns=result.columns,
                    spec_hash=spec.spec_hash(),
                    landed_event_id=landed_event_id,
                ),
            )
            ledger.mark_checked(
                session=session,
                model=model,
                sha256=sha256,
                accepted=True,
                dataset_version_id=outcome.dataset_version_id,
            )
            _record_verdict(session, outcome, landed_event_id, spec.spec_hash())
        with session_scope(engine) as session:  # for the monitor; never fails the verdict
            safely(f"dataset version {outcome.dataset_version_id}", profile_dataset, session,
                   lake, spec, result.frame, outcome.dataset_version_id)  # fmt: skip
    else:
        outcome.quarantine_uri = quarantine(
            lake=lake,
            key=key,
            model=model,
            sha256=sha256,
            filename=filename,
            reasons=outcome.reasons,
        )
        with session_scope(engine) as session:
            ledger.mark_checked(
                session=session,
                model=model,
                sha256=sha256,
                accepted=False,
                reasons=outcome.reasons,
                quarantine_uri=outcome.quarantine_uri,
            )
            _record_verdict(session, outcome, landed_event_id, spec.spec_hash() if spec else None)
    return outcome


def _record_verdict(
    session: Session, outcome: CheckOutcome, landed_event_id: str | None, spec_hash: str | None
) -> None:
    """The verdict's audit row and its event, in the transaction that records the verdict."""
    outcome.event = _event(outcome, landed_event_id, spec_hash)
    audit.append(
        session=session, actor=CHECKER,
        action="data.accepted" if outcome.accepted else "data.rejected",
        subject=f"{outcome.model}/data/{outcome.sha256}",
        payload={"filename": outcome.filename, "spec_hash": spec_hash,
                 "dataset_version": outcome.dataset_version_id, "row_count": outcome.row_count,
                 "reasons": [r.get("code") for r in outcome.reasons],
                 "quarantine_uri": outcome.quarantine_uri},
    )  # fmt: skip
    outcome.outbox_id = outbox.enqueue(session=session, event=outcome.event)
