"""The manifest of a feature set: its version, lineage, schema, vocabulary and plan."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from riskops.features.plan import FeaturePlan

MANIFEST = "manifest.json"
DATA = "data"


@dataclass(frozen=True)
class FeatureSetManifest:
    """What a feature set holds and where it came from (``out_dir/manifest.json``)."""

    model: str
    version: str
    row_count: int
    schema: dict[str, str]
    dataset_version: str
    dataset_sha256: str
    definitions_hash: str
    code_version: str
    vocabulary: dict[str, list[str]]
    numeric_features: list[str]
    categorical_features: list[str]
    passthrough_columns: list[str]
    pseudonymised_columns: list[str]
    partition_by: str
    skipped_features: list[dict[str, Any]]
    plan: dict[str, Any]
    created_at: str
    data_path: str = DATA

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the manifest file's content)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSetManifest:
        """Read back :meth:`to_dict` output."""
        return cls(**data)

    def feature_plan(self) -> FeaturePlan:
        """The plan the set was built with, for building the same features online."""
        return FeaturePlan.from_dict(self.plan)


def featureset_version(dataset_sha256: str, definitions_hash: str, code_version: str) -> str:
    """First 16 hex of sha256(dataset sha256, definitions hash, code version)."""
    text = f"{dataset_sha256}\n{definitions_hash}\n{code_version}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
