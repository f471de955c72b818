"""Outcomes landed months after the decisions: ``riskops land FILE --model NAME --labels``.

A label file (CSV or parquet) holds the target column of the model's spec and, per row, the key
of the decision it is the outcome of: ``decision_id`` (what the scoring service answered), or
the spec's entity column and the time of the decision or application (``decided_at``, or the
spec's timestamp column). The entity is pseudonymised at landing with the platform key, as in
the decision log, and the raw id is never stored. A file whose target values are not the spec's,
or which has no key at all, is refused whole and kept in quarantine with its reasons. The clean
copy goes to ``labels/model=<model>/<sha256[:16]>.parquet``, is indexed in ``labels_file``,
audited, and ``riskops.labels.landed`` is queued in the outbox (the performance monitor's
trigger). Landing the same bytes again changes nothing.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from riskops import outbox
from riskops.audit import trail
from riskops.events import LABELS_LANDED, RiskopsEvent, labels_resource
from riskops.features.pandas_build import pseudonymise
from riskops.hashing import sha256_bytes
from riskops.platform import Platform
from riskops.records import LabelsFile
from riskops.specs import ModelSpec

LABELS = "labels"
COLUMNS = ["decision_id", "entity", "decided_at", "label"]  # the stored copy
_MAX_LISTED = 10


class LabelsRefused(ValueError):
    """A label file that cannot be used; ``quarantine_uri`` holds it with its reasons."""

    def __init__(self, message: str, quarantine_uri: str | None = None) -> None:
        super().__init__(message)
        self.quarantine_uri = quarantine_uri


@dataclass(frozen=True)
class LabelsLanded:
    """What ``land_labels`` did."""

    model: str
    sha256: str
    rows: int
    with_decision_id: int
    bads: int
    uri: str
    duplicate: bool
    outbox_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return dict(self.__dict__)


def read_label_file(data: bytes, filename: str) -> pd.DataFrame:
    """The file's rows (CSV or parquet by extension); values as text where CSV gives text."""
    suffix = Path(filename).suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(io.BytesIO(data))
        if suffix == ".csv":
            return pd.read_csv(io.BytesIO(data), dtype={"decision_id": "string"})
    except Exception as error:
        raise LabelsRefused(f"{filename} cannot be read as {suffix[1:]}: {error}") from None
    raise LabelsRefused(f"{filename}: label files are .csv or .parquet, not {suffix or 'none'}")


def _rows(mask: pd.Series) -> str:
    rows = [int(i) + 2 for i in mask[mask].index[:_MAX_LISTED]]  # CSV line numbers
    more = int(mask.sum()) - len(rows)
    return ", ".join(map(str, rows)) + (f" and {more} more" if more > 0 else "")


def clean_labels(frame: pd.DataFrame, spec: ModelSpec, key: str) -> tuple[pd.DataFrame, list[str]]:
    """The stored copy of a label file (:data:`COLUMNS`) and the problems found in it."""
    problems: list[str] = []
    target = spec.target
    if target not in frame.columns:
        return frame.iloc[0:0], [
            f"the target column {target!r} of spec {spec.name} is missing (columns: "
            f"{sorted(map(str, frame.columns))})"
        ]
    if frame.empty:
        return frame.iloc[0:0], ["the file holds no rows"]
    allowed = list(spec.target_values or [0, 1])
    labels = frame[target]
    as_text = {str(v) for v in allowed}
    bad = labels.notna() & ~labels.astype(str).isin(as_text)
    if bad.any():
        problems.append(
            f"{target} holds values outside {allowed} on line(s) {_rows(bad)} "
            f"(e.g. {str(labels[bad].iloc[0])!r})"
        )
    by_text = {str(v): v for v in allowed}
    label = labels.map(lambda v: None if pd.isna(v) else by_text.get(str(v)))
    ids = frame["decision_id"] if "decision_id" in frame.columns else pd.Series(None, frame.index)
    ids = ids.astype(object).where(ids.notna(), None)
    malformed = ids.map(lambda v: v is not None and not _is_decision_id(v))
    if malformed.any():
        problems.append(
            f"decision_id is not a 32-hex-digit decision id on line(s) {_rows(malformed)}"
        )
    entity = pd.Series(None, index=frame.index, dtype=object)
    if spec.entity_column and spec.entity_column in frame.columns:
        entity = pseudonymise(frame[spec.entity_column], key)
    time_column = next(
        (c for c in ("decided_at", spec.timestamp_column) if c and c in frame.columns), None
    )
    when = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    if time_column is not None:
        parsed = pd.to_datetime(frame[time_column], utc=True, errors="coerce", format="ISO8601")
        unreadable = parsed.isna() & frame[time_column].notna()
        if unreadable.any():
            problems.append(f"{time_column} is not a time on line(s) {_rows(unreadable)}")
        when = parsed
    keyless = ids.isna() & (entity.isna() | when.isna())
    if keyless.all():
        problems.append(
            "no row says which decision it is the outcome of: give decision_id (as the scoring "
            f"service answered it), or {spec.entity_column or 'the entity column'} with "
            "decided_at"
        )
    clean = pd.DataFrame({"decision_id": ids, "entity": entity, "decided_at": when, "label": label})
    return clean[COLUMNS], problems


def _is_decision_id(value: Any) -> bool:
    text = str(value)
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def land_labels(*, platform: Platform, spec: ModelSpec, path: Path, actor: str) -> LabelsLanded:
    """Land the outcome file at ``path`` for ``spec``'s model (see the module docstring).

    Raises:
        LabelsRefused: the file cannot be used; it is in quarantine with its reasons.
    """
    data = path.read_bytes()
    sha = sha256_bytes(data)
    model = spec.name
    with Session(platform.engine) as session:
        found = session.exec(
            select(LabelsFile).where(LabelsFile.model == model, LabelsFile.sha256 == sha)
        ).first()
    if found is not None:
        return LabelsLanded(
            model, sha, found.rows, found.with_decision_id, found.bads, found.uri, True, None
        )
    try:
        frame = read_label_file(data, path.name)
        clean, problems = clean_labels(frame, spec, platform.require_pseudonym_key())
    except LabelsRefused as error:
        clean, problems = None, [str(error)]
    if problems:
        where = f"quarantine/{LABELS}/model={model}/{sha[:16]}"
        uri = platform.lake.put_bytes(f"{where}/{path.name}", data)
        platform.lake.put_bytes(
            f"{where}/reasons.json", json.dumps({"file": path.name, "problems": problems}).encode()
        )
        raise LabelsRefused(
            f"label file {path.name} for {model} refused: " + "; ".join(problems)
            + f". Nothing was landed; the file is in quarantine at {uri}: fix it, land it again.",
            uri,
        )  # fmt: skip
    assert clean is not None
    buffer = io.BytesIO()
    clean.to_parquet(buffer, index=False)
    key = f"{LABELS}/model={model}/{sha[:16]}.parquet"
    uri = platform.lake.put_bytes(key, buffer.getvalue())
    with_id = int(clean["decision_id"].notna().sum())
    bads = int((clean["label"] == spec.positive_label).sum())
    payload = {
        "model": model, "sha256": sha, "filename": path.name, "rows": len(clean),
        "with_decision_id": with_id, "bads": bads, "uri": uri,
    }  # fmt: skip
    with Session(platform.engine) as session:
        event_id = outbox.enqueue(
            session=session,
            event=RiskopsEvent(LABELS_LANDED, labels_resource(model, sha), payload),
        )
        session.add(
            LabelsFile(
                model=model, sha256=sha, filename=path.name, key=key, uri=uri, rows=len(clean),
                with_decision_id=with_id, bads=bads, landed_by=actor, event_id=event_id,
            )
        )  # fmt: skip
        trail.append(
            session=session, actor=actor, action="labels.landed",
            subject=f"labels/{model}/{sha[:16]}", payload=payload,
        )  # fmt: skip
        session.commit()
    return LabelsLanded(model, sha, len(clean), with_id, bads, uri, False, event_id)


def read_labels(platform: Platform, model: str) -> pd.DataFrame:
    """Every landed outcome of ``model`` (:data:`COLUMNS` plus ``label_file``), oldest first."""
    with Session(platform.engine) as session:
        files = list(
            session.exec(
                select(LabelsFile).where(LabelsFile.model == model).order_by(LabelsFile.id)
            )
        )
    frames = []
    for record in files:
        frame = pd.read_parquet(io.BytesIO(platform.lake.get_bytes(record.key)))
        frame["label_file"] = record.sha256[:16]
        frames.append(frame)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in [*COLUMNS, "label_file"]})
    return pd.concat(frames, ignore_index=True)
