"""Which code and which container image a run came from: the git commit and the image digest.

CI sets both: ``RISKOPS_GIT_COMMIT`` is baked into the images at build time, and the release
workflow deploys flows with ``RISKOPS_IMAGE_DIGEST`` (``<repository>@sha256:<hex>``) in their job
environment. Outside an image, the git checkout that the running code is tracked in gives the
commit. Nothing is invented: what cannot be known is recorded as exactly that.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskops.training.lineage import NOT_FROM_IMAGE, git_commit

UNKNOWN_COMMIT = "unknown"

_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1 or SHA-256 object names
_DIGEST = re.compile(r"([a-z0-9][a-z0-9._/:-]*@)?sha256:[0-9a-f]{64}")


class ProvenanceSettings(BaseSettings):
    """What CI says about the build a process runs from (unset outside CI and images)."""

    model_config = SettingsConfigDict(env_prefix="RISKOPS_", extra="ignore", env_file=None)

    git_commit: str | None = Field(
        default=None,
        description="Full git commit of the code (set by CI and baked into the images); "
        "unset: the commit of the git checkout the code is tracked in, else 'unknown'.",
    )
    image_digest: str | None = Field(
        default=None,
        description="Digest of the container image this process runs in, as "
        "'<repository>@sha256:<hex>' or 'sha256:<hex>' (set by the release workflow in the "
        "work pool's job environment); unset: 'not built from an image'.",
    )

    @field_validator("git_commit")
    @classmethod
    def _full_commit(cls, value: str | None) -> str | None:
        value = (value or "").strip().lower()
        if not value:
            return None
        if not _COMMIT.fullmatch(value):
            raise ValueError(
                f"RISKOPS_GIT_COMMIT={value!r} is not a full git commit (40 or 64 hex "
                "characters); set it to the output of `git rev-parse HEAD`, or unset it"
            )
        return value

    @field_validator("image_digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        if not _DIGEST.fullmatch(value):
            raise ValueError(
                f"RISKOPS_IMAGE_DIGEST={value!r} is not an image digest; give "
                "'<repository>@sha256:<64 hex>' or 'sha256:<64 hex>' (what `docker buildx` or "
                "docker/build-push-action reports as the digest), or unset it"
            )
        return value

    def code_version(self, code_file: Path | str) -> str:
        """The commit CI named; else :func:`checkout_commit` of ``code_file``."""
        return self.git_commit or checkout_commit(code_file)

    def image(self) -> str:
        """The image digest CI named, or ``"not built from an image"``."""
        return self.image_digest or NOT_FROM_IMAGE


def checkout_commit(code_file: Path | str) -> str:
    """HEAD of the git checkout that tracks ``code_file``, else ``"unknown"``.

    A file that is merely inside a checkout (an installed copy under an ignored ``.venv``) is not
    that checkout's code, so the file must be tracked. Uncommitted edits are not detected.
    """
    path = Path(code_file).resolve()
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN_COMMIT
    if tracked.returncode != 0:
        return UNKNOWN_COMMIT
    return git_commit(path.parent)
