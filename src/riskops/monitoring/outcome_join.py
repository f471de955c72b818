"""Joining late outcomes (defaults, chargebacks) to the decisions they are the outcome of.

The join keys, in order (a label row takes the first path its keys allow, never both):

1. **By decision id.** A label row whose ``decision_id`` is filled is matched to the decision with
   that id, and only to it. An id that is not among the decisions is *unmatched*
   (``decision_id_not_found``: usually the decisions were read for too short a window, or from
   the other role).
2. **By pseudonymised entity + time.** A label row without a decision id, with ``entity`` (the
   HMAC pseudonym, as the decision log stores it; see
   :func:`riskops.features.pandas_build.pseudonymise`) and the time of the decision or application
   it refers to (``decided_at`` in the label file), is matched to the decision of the same entity
   whose ``decided_at`` lies within ``tolerance`` of that time. None within it:
   ``no_decision_within_tolerance``; two or more: ``ambiguous_entity_time`` (not guessed: a
   customer who applied twice that day has two candidate outcomes).
3. A label row with neither key is ``no_key``; one whose label value is null is
   ``label_missing`` (the outcome is not known yet).

Several labels for one decision: equal values count once (``duplicate_labels``); different
values exclude that decision (``conflicting_decisions``). Decisions without a label are counted
(``unlabelled_decisions``): in the newest vintages most outcomes have not matured yet. Nothing is
dropped without being counted in :class:`JoinReport`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskops.validation.results import jsonable

DECISION_COLUMNS = ("decision_id", "decided_at", "score")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")
_ROW = "_label_row"


@dataclass(frozen=True)
class LabelJoin:
    """How the label file's columns map to the decisions (see the module docstring)."""

    label_column: str = "label"
    positive_label: Any = 1  # the label value that means the bad outcome (spec.positive_label)
    decision_id_column: str = "decision_id"
    entity_column: str = "entity"
    time_column: str = "decided_at"  # in the label file: when the decision it refers to was made
    tolerance: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=24))


@dataclass(frozen=True)
class JoinReport:
    """Counts of every label and decision, matched or not, and why not."""

    labels_total: int
    matched_by_decision_id: int
    matched_by_entity_time: int
    unmatched_labels: dict[str, int]
    duplicate_labels: int
    conflicting_decisions: int
    decisions_total: int
    labelled_decisions: int
    unlabelled_decisions: int

    @property
    def unmatched_total(self) -> int:
        """Label rows that reached no decision, whatever the reason."""
        return sum(self.unmatched_labels.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return jsonable({**asdict(self), "unmatched_total": self.unmatched_total})


def _utc(series: pd.Series, where: str) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype):  # the decision log's: no parsing needed
        return series.dt.tz_convert("UTC")
    try:
        return pd.to_datetime(series, utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: cannot read the times as UTC timestamps: {error}") from error


def _checked_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise ValueError(
            f"decisions frame lacks columns {missing}: pass the frame of "
            "riskops.serving.decision_files.read_decisions"
        )
    ids = decisions["decision_id"]
    if ids.isna().any() or ids.duplicated().any():
        dupes = ids[ids.duplicated()].head(3).tolist()
        raise ValueError(
            f"decisions: decision_id must be filled and unique (repeated e.g. {dupes}); "
            "read one role (role='champion') so a shadow decision is not counted twice"
        )
    out = decisions.copy()
    out["decided_at"] = _utc(out["decided_at"], "decisions.decided_at")
    return out


def _binary_labels(labels: pd.DataFrame, join: LabelJoin) -> pd.Series:
    """1 for the bad outcome, 0 for the other value, NA for null; refuses a third value."""
    if join.label_column not in labels.columns:
        raise ValueError(
            f"label file lacks the label column {join.label_column!r} "
            f"(has {sorted(map(str, labels.columns))}); set LabelJoin.label_column"
        )
    raw = labels[join.label_column]
    present = raw.dropna().unique()
    others = [v for v in present if v != join.positive_label]
    if len(others) > 1:
        raise ValueError(
            f"label column {join.label_column!r} holds more than two values "
            f"({sorted(map(str, present))[:6]}); positive_label is {join.positive_label!r}"
        )
    bad = (raw == join.positive_label).astype("Int8")
    return bad.where(raw.notna(), pd.NA)


def _refuse_raw_entities(labels: pd.Series, decisions: pd.Series) -> None:
    decided = decisions.dropna().astype(str)
    labelled = labels.dropna().astype(str)
    if decided.empty or labelled.empty:
        return
    if decided.str.match(_PSEUDONYM).all() and not labelled.str.match(_PSEUDONYM).any():
        raise ValueError(
            "label file entities are not HMAC pseudonyms but the decision log's are: "
            "pseudonymise them with the platform key first "
            "(riskops.features.pandas_build.pseudonymise)"
        )


def _entity_time_matches(
    rows: pd.DataFrame, decisions: pd.DataFrame, join: LabelJoin
) -> tuple[pd.DataFrame, pd.Series]:
    """(label row -> decision_id for unique matches, reason per unmatched label row)."""
    when = _utc(rows[join.time_column], f"label file column {join.time_column!r}")
    left = pd.DataFrame(
        {_ROW: rows[_ROW].to_numpy(), "entity": rows[join.entity_column].to_numpy()}
    )
    left["_at"] = when.to_numpy()
    right = decisions[["decision_id", "entity", "decided_at"]].dropna(subset=["entity"])
    pairs = left.merge(right, on="entity", how="inner")
    close = pairs[(pairs["decided_at"] - pairs["_at"]).abs() <= join.tolerance]
    candidates = close.groupby(_ROW)["decision_id"].agg(["count", "first"])
    unique = candidates[candidates["count"] == 1]
    matched = pd.DataFrame(
        {_ROW: unique.index.to_numpy(), "decision_id": unique["first"].to_numpy()}
    )
    reason = pd.Series("no_decision_within_tolerance", index=rows[_ROW].to_numpy(), dtype=object)
    reason[candidates.index[candidates["count"] > 1]] = "ambiguous_entity_time"
    return matched, reason.drop(matched[_ROW].to_numpy())


def join_labels(
    decisions: pd.DataFrame, labels: pd.DataFrame, join: LabelJoin | None = None
) -> tuple[pd.DataFrame, JoinReport]:
    """Decisions with their outcome ``bad`` (1/0; NA when no label matched), and the counts.

    Args:
        decisions: the decision-log frame (``decision_id``, ``decided_at``, ``score``, ``band``,
            ``entity`` ...), one role only.
        labels: the landed label file; see the module docstring for the keys it may carry.

    Returns:
        (every decision row with a ``bad`` column, :class:`JoinReport`).
    """
    join = join or LabelJoin()
    frame = _checked_decisions(decisions)
    rows = labels.reset_index(drop=True).copy()
    rows[_ROW] = np.arange(len(rows))
    rows["_bad"] = _binary_labels(rows, join)
    reasons: dict[str, int] = {}
    missing = rows["_bad"].isna()
    if int(missing.sum()):
        reasons["label_missing"] = int(missing.sum())
    rows = rows[~missing].copy()
    has_ids = join.decision_id_column in rows.columns
    rows["_id"] = rows[join.decision_id_column] if has_ids else None
    by_id = rows[rows["_id"].notna()]
    known = by_id["_id"].isin(set(frame["decision_id"]))
    if int((~known).sum()):
        reasons["decision_id_not_found"] = int((~known).sum())
    matched = [
        by_id.loc[known, [_ROW, "_id", "_bad"]].set_axis([_ROW, "decision_id", "_bad"], axis=1)
    ]
    rest = rows[rows["_id"].isna()]
    keyed = pd.Series(False, index=rest.index)
    if join.entity_column in rest.columns and join.time_column in rest.columns:
        keyed = rest[join.entity_column].notna() & rest[join.time_column].notna()
    if int((~keyed).sum()):
        reasons["no_key"] = int((~keyed).sum())
    by_entity = rest[keyed]
    entity_matched = 0
    if len(by_entity):
        if "entity" not in frame.columns:
            raise ValueError("label rows need the entity join but the decisions have no entity")
        _refuse_raw_entities(by_entity[join.entity_column], frame["entity"])
        found, unmatched = _entity_time_matches(by_entity, frame, join)
        for why, count in unmatched.value_counts().items():
            reasons[str(why)] = reasons.get(str(why), 0) + int(count)
        found = found.merge(by_entity[[_ROW, "_bad"]], on=_ROW)
        entity_matched = len(found)
        matched.append(found)
    pairs = pd.concat(matched, ignore_index=True)
    per_decision = pairs.groupby("decision_id")["_bad"].agg(["nunique", "size", "first"])
    conflicting = per_decision["nunique"] > 1
    consistent = per_decision[~conflicting]
    outcome = consistent["first"].astype("Int8")
    frame["bad"] = frame["decision_id"].map(outcome).astype("Int8")
    labelled = int(frame["bad"].notna().sum())
    report = JoinReport(
        labels_total=len(labels),
        matched_by_decision_id=int(known.sum()),
        matched_by_entity_time=entity_matched,
        unmatched_labels=dict(sorted(reasons.items())),
        duplicate_labels=int((consistent["size"] - 1).sum()),
        conflicting_decisions=int(conflicting.sum()),
        decisions_total=len(frame),
        labelled_decisions=labelled,
        unlabelled_decisions=len(frame) - labelled,
    )
    return frame, report
