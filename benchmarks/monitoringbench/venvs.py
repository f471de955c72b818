"""The contenders' own virtualenvs (never the project's): built once, reused while stamps match."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# pandas 2.3.3 / numpy / scipy as in /work/main/constraints.txt where the contender allows it.
EVIDENTLY = ["evidently==0.7.23", "pandas==2.3.3", "numpy==2.4.6", "scipy==1.17.1"]  # + its pyarrow
# whylogs.viz (calculate_drift_scores) imports IPython; nothing else beyond whylogs' own deps.
WHYLOGS_VIZ = [
    "whylogs==1.6.4",
    "ipython",
    "pandas==2.3.3",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "pyarrow==25.0.1",  # to read the parquet frames
]


class Unavailable(RuntimeError):
    """A contender could not be set up; the message says why."""


def ensure_venv(venv: Path, packages: list[str]) -> Path:
    """Create ``venv`` with ``packages`` unless its stamp says it has them; its python."""
    stamp = venv / ".riskops-bench-packages"
    python = venv / "bin" / "python"
    wanted = " ".join(packages)
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return python
    base = shutil.which("python3.11")
    if base is None:
        raise Unavailable("python3.11 not found: the contender needs its own Python 3.11 venv")
    print(f"  · creating {venv} with {wanted} (once; a minute or two)", flush=True)
    steps = [
        [base, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"`{' '.join(step)}` failed:\n{done.stderr[-3000:]}")
    stamp.write_text(wanted + "\n")
    return python
