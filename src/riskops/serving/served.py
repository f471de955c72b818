"""A model version ready to answer requests: schema, online features, engine, bands, reasons."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from riskops.features.online import OnlineFeatureBuilder, OnlineRow
from riskops.features.plan import FeaturePlan
from riskops.serving.decision import input_digest
from riskops.serving.engines import Engine
from riskops.serving.reasons import Explainer, Reason
from riskops.serving.schema import RequestSchema
from riskops.specs import ModelSpec

APPROVE, REFER, DECLINE = "approve", "refer", "decline"
logger = logging.getLogger(__name__)


class LoadRefused(RuntimeError):
    """A version cannot be served: the artifact, its signature or its spec does not fit.

    ``retry``: the refusal may lift by itself (the promotion record is committed just after the
    alias moves), so the next poll tries the version again; otherwise it is tried again only on
    a promotion event or an operator's reload.
    """

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True, slots=True)
class Bands:
    """Decision bands on the probability of the bad outcome (the spec's ``decision``)."""

    approve_below: float
    decline_at_or_above: float

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> Bands:
        """The spec's cut-offs; a spec without them cannot decide, so it is refused."""
        low, high = spec.decision.approve_below, spec.decision.decline_at_or_above
        if low is None and high is None:
            raise LoadRefused(
                f"spec {spec.name!r} has no decision bands: add decision.approve_below and "
                "decision.decline_at_or_above (the refer band lies between) and onboard it again"
            )
        return cls(low if low is not None else 0.0, high if high is not None else math.inf)

    def band(self, score: float) -> str:
        """approve below the first cut-off, decline at or above the second, else refer."""
        if score < self.approve_below:
            return APPROVE
        return DECLINE if score >= self.decline_at_or_above else REFER


@dataclass(slots=True)
class Outcome:
    """The decision on one record."""

    decision_id: str
    score: float
    band: str
    reasons: list[Reason] | None
    row: OnlineRow
    input_sha256: str


@dataclass
class ServedModel:
    """One loaded version of one model, in one role (champion or challenger)."""

    name: str
    version: str
    role: str
    spec: ModelSpec
    schema: RequestSchema
    builder: OnlineFeatureBuilder  # or loader.PassthroughBuilder (same compute())
    engine: Engine
    bands: Bands
    groups: dict[str, str]  # model input -> the raw input its reasons are given under
    reference: dict[str, Any]  # median / most frequent value per input ("income low")
    reason_count: int = 4
    load_seconds: float = 0.0
    loaded_at: float = field(default_factory=time.time)
    artifact_sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)  # the scorer's artifact files
    plan: FeaturePlan | None = None  # None: the version takes its inputs as they come
    vocabulary: dict[str, list[str]] | None = None
    input_key: bytes = field(default=b"", repr=False)  # HMAC key of the input digests
    # Raw request fields the decision log keeps beside the model inputs (numbers and
    # categories, never ids or times): only for a version with a feature plan, whose model
    # inputs differ from the request (derived features, normalised categories).
    input_fields: tuple[str, ...] = ()
    explainer: Explainer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.explainer = Explainer(
            self.engine.inputs, groups=self.groups, reference=self.reference,
            categorical=self.engine.categorical, k=self.reason_count,
        )  # fmt: skip

    def decide(
        self,
        records: Sequence[Mapping[str, Any]],
        raw: Sequence[Mapping[str, Any]],
        *,
        explain: bool = False,
        record_events: bool = True,
    ) -> list[Outcome]:
        """Score validated ``records`` (``raw``: as the client sent them, for the input hash);
        reasons for every refer and decline, and for approvals when ``explain``."""
        outcomes, _ = self._decide(records, raw, explain=explain, record_events=record_events)
        return outcomes

    def decide_deferred(
        self, records: Sequence[Mapping[str, Any]], raw: Sequence[Mapping[str, Any]]
    ) -> tuple[list[Outcome], DeferredReasons | None]:
        """As :meth:`decide`, for answers that carry no reasons (MLflow and V2 protocols): the
        reasons of the refer and decline decisions are left to the decision-log writer, which
        computes them off the request path before the decisions are written."""
        return self._decide(records, raw, explain=False, record_events=True, defer=True)

    def _decide(
        self,
        records: Sequence[Mapping[str, Any]],
        raw: Sequence[Mapping[str, Any]],
        *,
        explain: bool,
        record_events: bool,
        defer: bool = False,
    ) -> tuple[list[Outcome], DeferredReasons | None]:
        rows = [self.builder.compute(r, record_event=record_events) for r in records]
        matrix = self.engine.matrix([r.features for r in rows])
        scores = self.engine.probabilities(matrix)
        bands = [self.bands.band(float(s)) for s in scores]
        need = [i for i, b in enumerate(bands) if explain or b != APPROVE]
        reasons: dict[int, list[Reason]] = {}
        deferred = None
        if need and defer:
            deferred = DeferredReasons(self, need, matrix[need], [rows[i].features for i in need])
        elif need:
            contributions = self.engine.contributions(matrix[need])
            for j, i in enumerate(need):
                reasons[i] = self.reasons(contributions[j], rows[i].features)
        outcomes = [
            Outcome(
                decision_id=os.urandom(16).hex(),  # 128 random bits, as uuid4().hex
                score=float(scores[i]),
                band=bands[i],
                reasons=reasons.get(i),
                row=rows[i],
                input_sha256=input_digest(raw[i], self.input_key),
            )
            for i in range(len(rows))
        ]
        return outcomes, deferred

    def reasons(self, contributions: np.ndarray, features: Mapping[str, Any]) -> list[Reason]:
        """The inputs pushing this score up most, grouped by raw input, in words."""
        return self.explainer(contributions, features)

    def describe(self) -> dict[str, Any]:
        """What is served, for /v1/models and the V2 metadata."""
        return {
            "name": self.name,
            "version": self.version,
            "role": self.role,
            "family": self.spec.family,
            "risk_class": self.spec.risk_class,
            "bands": {
                "approve_below": self.bands.approve_below,
                "decline_at_or_above": (
                    None
                    if math.isinf(self.bands.decline_at_or_above)
                    else self.bands.decline_at_or_above
                ),
            },
            "inputs": list(self.schema.fields),
            "model_inputs": list(self.engine.inputs),
            "explanation_method": self.engine.method,
            "load_seconds": round(self.load_seconds, 3),
            "artifact_sha256": self.artifact_sha256,
        }


_DEFERRED_ROWS_PER_CALL = 8
_DEFERRED_PAUSE_SECONDS = 0.001  # after each call, about as long as one call


@dataclass(slots=True)
class DeferredReasons:
    """The reasons one request still owes the decision log: rows ``rows`` of the request,
    their model-input matrix and features, for the version that decided them."""

    served: ServedModel
    rows: list[int]
    matrix: np.ndarray
    features: list[Mapping[str, Any]]
    done: bool = False


def resolve_deferred(parts: Sequence[Any], pause: float = _DEFERRED_PAUSE_SECONDS) -> None:
    """Fill in the reason codes the parts (decision batches) owe, version by version, a few rows
    per TreeSHAP call with ``pause`` seconds after each (the writer thread's courtesy to the
    event loop; 0 in the writer process); each part's ``reason_codes`` list is filled in place."""
    groups: dict[int, list[tuple[Any, DeferredReasons]]] = {}
    for part in parts:
        owed = part.deferred
        if owed is not None and not owed.done:
            groups.setdefault(id(owed.served), []).append((part, owed))
    for items in groups.values():
        served = items[0][1].served
        try:
            _resolve_group(served, items, pause)
        except Exception as error:  # never hold the log up: the record says what is missing
            rows = sum(len(owed.rows) for _, owed in items)
            logger.error(
                "decision log: reason codes of %d %s v%s decision(s) could not be computed "
                "(%s: %s); they are written with a reason code saying so",
                rows, served.name, served.version, type(error).__name__, error,
            )  # fmt: skip
            missing = [
                {
                    "feature": UNAVAILABLE,
                    "contribution": 0.0,
                    "text": f"reason codes could not be computed: {type(error).__name__}",
                }
            ]
            for part, owed in items:
                for i in owed.rows:
                    part.reason_codes[i] = [dict(code) for code in missing]
                owed.done = True


UNAVAILABLE = "(unavailable)"  # the feature of the reason code of a failed explanation


def _resolve_group(
    served: ServedModel, items: list[tuple[Any, DeferredReasons]], pause: float
) -> None:
    rows = [(part, i, owed.matrix[j], owed.features[j])
            for part, owed in items for j, i in enumerate(owed.rows)]  # fmt: skip
    filled = []
    # A few rows at a time (TreeSHAP, then their reasons), giving the GIL back in between: the
    # writer shares it with the event loop, whose requests would otherwise wait behind it.
    for start in range(0, len(rows), _DEFERRED_ROWS_PER_CALL):
        chunk = rows[start : start + _DEFERRED_ROWS_PER_CALL]
        contributions = served.engine.contributions(np.vstack([r[2] for r in chunk]))
        for (part, i, _, features), row in zip(chunk, contributions, strict=True):
            filled.append((part, i, [r.to_dict() for r in served.reasons(row, features)]))
        # Not sleep(0): the event loop would get the GIL back only until the switch interval
        # hands it to this thread again. A pause about as long as the work lets it run freely.
        if pause:
            time.sleep(pause)
    for part, i, codes in filled:  # all or nothing
        part.reason_codes[i] = codes
    for _, owed in items:
        owed.done = True
