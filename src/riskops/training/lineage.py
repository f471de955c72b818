"""What a model was trained from and by whom, as MLflow tags under the ``riskops.`` prefix."""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

TAG_PREFIX = "riskops."
NOT_FROM_IMAGE = "not built from an image"


@dataclass(frozen=True)
class Lineage:
    """The inputs and identity behind one training run (set on runs and model versions)."""

    dataset_version: str
    dataset_sha256: str
    featureset_version: str
    featureset_uri: str
    spec_hash: str
    definitions_hash: str
    code_version: str  # git commit, or "unknown"
    trainer: str  # who or what trained: a person, or a pipeline identity
    landed_event_id: str | None = None
    image_digest: str = NOT_FROM_IMAGE  # <repository>@sha256:<hex> of the image it ran in

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name != "landed_event_id" and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"lineage field {name!r} must be a non-empty string")

    def tags(self) -> dict[str, str]:
        """MLflow tags: ``riskops.<field>`` (``riskops.git_commit`` for the code version)."""
        tags = {
            f"{TAG_PREFIX}dataset_version": self.dataset_version,
            f"{TAG_PREFIX}dataset_sha256": self.dataset_sha256,
            f"{TAG_PREFIX}featureset_version": self.featureset_version,
            f"{TAG_PREFIX}featureset_uri": self.featureset_uri,
            f"{TAG_PREFIX}spec_hash": self.spec_hash,
            f"{TAG_PREFIX}definitions_hash": self.definitions_hash,
            f"{TAG_PREFIX}git_commit": self.code_version,
            f"{TAG_PREFIX}image_digest": self.image_digest,
            f"{TAG_PREFIX}trainer": self.trainer,
            f"{TAG_PREFIX}source": "pipeline",
        }
        if self.landed_event_id:
            tags[f"{TAG_PREFIX}landed_event_id"] = self.landed_event_id
        return tags

    def to_dict(self) -> dict[str, str | None]:
        """Plain dict of the fields."""
        return asdict(self)


def git_commit(cwd: Path | str) -> str:
    """HEAD commit of the git checkout at ``cwd``, or ``"unknown"`` (no git, no repo)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = done.stdout.strip()
    if done.returncode != 0 or len(commit) not in (40, 64):
        return "unknown"
    return commit
