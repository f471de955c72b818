"""Every riskops event name and resource-id builder (DESIGN.md section 2, a contract).

`prefect.yaml` triggers use these strings; `tests/test_prefect_yaml.py` checks they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DATA_LANDED = "riskops.data.landed"
DATA_REJECTED = "riskops.data.rejected"
DATA_ACCEPTED = "riskops.data.accepted"
FEATURES_BUILT = "riskops.features.built"
MODEL_REGISTERED = "riskops.model.registered"
MODEL_VALIDATED = "riskops.model.validated"
MODEL_REJECTED = "riskops.model.rejected"
MODEL_APPROVED = "riskops.model.approved"
MODEL_DECLINED = "riskops.model.declined"
MODEL_PROMOTED = "riskops.model.promoted"
MODEL_ROLLED_BACK = "riskops.model.rolled-back"
DRIFT_DETECTED = "riskops.drift.detected"
LABELS_LANDED = "riskops.labels.landed"
SLA_BREACHED = "riskops.sla.breached"
MODEL_LOAD_FAILED = "riskops.model.load-failed"
CHAMPION_MISMATCH = "riskops.champion.mismatch"
PERFORMANCE_DEGRADED = "riskops.performance.degraded"
DECISIONS_LOGGED = "riskops.decisions.logged"  # a scored batch is in the decision log

ALL_EVENTS: frozenset[str] = frozenset(
    {
        DATA_LANDED,
        DATA_REJECTED,
        DATA_ACCEPTED,
        FEATURES_BUILT,
        MODEL_REGISTERED,
        MODEL_VALIDATED,
        MODEL_REJECTED,
        MODEL_APPROVED,
        MODEL_DECLINED,
        MODEL_PROMOTED,
        MODEL_ROLLED_BACK,
        DRIFT_DETECTED,
        LABELS_LANDED,
        SLA_BREACHED,
        MODEL_LOAD_FAILED,
        CHAMPION_MISMATCH,
        PERFORMANCE_DEGRADED,
        DECISIONS_LOGGED,
    }
)

MONITOR_KINDS = frozenset({"data", "prediction", "skew", "quality"})

# Resource-id prefixes, for trigger `match` patterns such as "riskops.dataset.*".
DATASET = "riskops.dataset"
FEATURESET = "riskops.featureset"
MODEL = "riskops.model"
MONITOR = "riskops.monitor"
LABELS = "riskops.labels"
SERVICE = "riskops.service"
RESOURCE_PREFIXES = frozenset({DATASET, FEATURESET, MODEL, MONITOR, LABELS, SERVICE})

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def _segment(value: str, what: str) -> str:
    if not _SEGMENT.match(value):
        raise ValueError(f"{what} {value!r} cannot be part of a resource id: use [A-Za-z0-9_-]")
    return value


def _short(sha256: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{16,64}", sha256):
        raise ValueError(f"expected a hex sha256, got {sha256!r}")
    return sha256[:16]


def dataset_resource(model: str, sha256: str) -> str:
    """`riskops.dataset.<model>.<sha256[:16]>`"""
    return f"{DATASET}.{_segment(model, 'model')}.{_short(sha256)}"


def featureset_resource(model: str, version: str) -> str:
    """`riskops.featureset.<model>.<version>`"""
    return f"{FEATURESET}.{_segment(model, 'model')}.{_segment(version, 'version')}"


def model_resource(model: str, version: str | int) -> str:
    """`riskops.model.<model>.<version>`"""
    return f"{MODEL}.{_segment(model, 'model')}.{_segment(str(version), 'version')}"


def monitor_resource(model: str, kind: str) -> str:
    """`riskops.monitor.<model>.<kind>`, kind in data, prediction, skew, quality."""
    if kind not in MONITOR_KINDS:
        raise ValueError(f"monitor kind {kind!r} is not one of {sorted(MONITOR_KINDS)}")
    return f"{MONITOR}.{_segment(model, 'model')}.{kind}"


def outcome_resource(model: str) -> str:
    """`riskops.monitor.<model>.outcome`: realised (or estimated) performance on outcomes."""
    return f"{MONITOR}.{_segment(model, 'model')}.outcome"


def labels_resource(model: str, sha256: str) -> str:
    """`riskops.labels.<model>.<sha256[:16]>`"""
    return f"{LABELS}.{_segment(model, 'model')}.{_short(sha256)}"


def service_resource(model: str) -> str:
    """`riskops.service.<model>`"""
    return f"{SERVICE}.{_segment(model, 'model')}"


@dataclass(frozen=True)
class RiskopsEvent:
    """An event as the library describes it; `riskops.emit` turns it into a Prefect event."""

    name: str
    resource_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    related: tuple[tuple[str, str], ...] = ()  # (resource id, role)
    resource_name: str | None = None

    def __post_init__(self) -> None:
        if self.name not in ALL_EVENTS:
            raise ValueError(f"{self.name!r} is not a riskops event (see riskops.events)")
