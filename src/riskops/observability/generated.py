"""Files generated from code and checked in (rules, dashboards): write them, or check them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_or_check(files: Mapping[str, str], out: Path, *, check: bool) -> list[str]:
    """Write ``files`` (name -> text) under ``out``, or with ``check`` write nothing and return
    the paths whose checked-in text differs from the generated one (empty: up to date)."""
    stale = []
    for name, text in files.items():
        path = out / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return stale
