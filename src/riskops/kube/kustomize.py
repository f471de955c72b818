"""Render a kustomization with ``kubectl kustomize`` (no cluster needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml


class KustomizeError(RuntimeError):
    pass


def kubectl() -> str | None:
    """Path of kubectl, or None when it is not installed."""
    return shutil.which("kubectl")


def render(directory: Path, *, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every resource the kustomization in ``directory`` produces, in order."""
    binary = kubectl()
    if binary is None:
        raise KustomizeError(
            "kubectl is not installed: install it (Debian: apt-get install kubectl) to render "
            f"{directory}"
        )
    result = subprocess.run(
        [binary, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {directory} failed:\n{result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
