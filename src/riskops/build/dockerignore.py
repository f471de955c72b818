"""Which paths of a build context a ``.dockerignore`` leaves out, as Docker's builder decides.

Patterns follow Docker's rules: ``*`` and ``?`` never cross ``/``, ``**`` matches any number of
directories, a leading ``!`` re-includes, and the last pattern that matches the path or one of
its parent directories decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


def _regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
        i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class DockerIgnore:
    """The parsed patterns of one ``.dockerignore`` (``(regex, re-include)`` in file order)."""

    rules: tuple[tuple[re.Pattern[str], bool], ...]

    @classmethod
    def read(cls, path: Path) -> DockerIgnore:
        """Patterns of ``path``; no file means nothing is left out."""
        if not path.exists():
            return cls(())
        rules = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = line[1:].strip() if keep else line
            pattern = pattern.strip("/").removeprefix("./")
            rules.append((_regex(pattern), keep))
        return cls(tuple(rules))

    def excludes(self, relative: str) -> bool:
        """True when the context path ``relative`` (``a/b/c``) is not sent to the builder."""
        parts = relative.strip("/").split("/")
        candidates = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
        excluded = False
        for regex, keep in self.rules:  # the last pattern matching the path or a parent wins
            if any(regex.match(candidate) for candidate in candidates):
                excluded = not keep
        return excluded
