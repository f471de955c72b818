"""What every lake backend offers, and how keys are laid out.

Layout (keys use "/" on every backend):
  landing/<model>/<file>                 files as they arrive
  quarantine/<model>/<sha256>/<file>     refused files, with reasons.json beside them
  datasets/<model>/<sha256>/...          accepted, immutable dataset versions
  featuresets/<model>/<version>/...      feature sets (partitioned parquet + manifest.json)
"""

from __future__ import annotations

import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

LANDING = "landing"
QUARANTINE = "quarantine"
DATASETS = "datasets"
FEATURESETS = "featuresets"
UNASSIGNED = "unassigned"  # model segment for objects that land outside landing/<model>/

_MODEL = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class LakeError(RuntimeError):
    """A lake operation failed; the message names the object and the backend."""


def read_verified(lake: Lake, key: str, sha256: str, *, what: str, remedy: str) -> bytes:
    """The bytes of ``key``, refused (LakeError) when their SHA-256 is not the indexed one."""
    from riskops.hashing import sha256_bytes

    data = lake.get_bytes(key)
    digest = sha256_bytes(data)
    if digest != sha256:
        raise LakeError(
            f"{what} {lake.uri(key)} does not match its index (sha256 {digest}, indexed "
            f"{sha256}): {remedy}"
        )
    return data


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float  # epoch seconds


def landing_key(model: str, filename: str) -> str:
    name = Path(filename).name
    if not name or name.startswith("."):
        raise LakeError(f"cannot land {filename!r}: the file name is empty or hidden")
    return f"{LANDING}/{model}/{name}"


def split_landing_key(key: str) -> tuple[str, str]:
    """(model, file name) of a landing key; model is ``unassigned`` when the path has none."""
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == LANDING and _MODEL.match(parts[1]):
        return parts[1], parts[2]
    return UNASSIGNED, parts[-1]


@contextmanager
def _downloaded_tree(lake: Lake, prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="riskops-tree-") as tmp:
        root = Path(tmp)
        found = False
        for info in lake.list(prefix):
            found = True
            target = root / info.key[len(prefix) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            with lake.local_copy(info.key) as path:
                shutil.copyfile(path, target)
        if not found:
            raise LakeError(f"nothing stored under {lake.uri(prefix)}")
        yield root


class Lake(ABC):
    """Object storage with whole-object writes; writes are atomic on every backend."""

    reopen: Callable[[], Lake] | None = None  # picklable: this lake again, in another process

    @abstractmethod
    def uri(self, key: str) -> str:
        """Absolute URI of ``key`` (file:// path or s3://bucket/key)."""

    @abstractmethod
    def key_of(self, uri: str) -> str:
        """Inverse of :meth:`uri`; raises LakeError for a URI outside this lake."""

    @abstractmethod
    def put_file(self, key: str, path: Path) -> str:
        """Copy a local file to ``key``; returns its URI."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> str:
        """Write ``data`` to ``key``; returns its URI."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local path holding the object's bytes for the duration of the block."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix``, hidden names (".tmp") excluded."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def put_tree(self, prefix: str, directory: Path, last: str | None = None) -> str:
        """Upload every file below ``directory`` under ``prefix``; ``last`` (e.g. a manifest)
        is written after all others, so its presence means the tree is complete."""
        files = sorted(
            p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")
        )
        files.sort(key=lambda p: p.relative_to(directory).as_posix() == last)
        for path in files:
            self.put_file(f"{prefix}/{path.relative_to(directory).as_posix()}", path)
        return self.uri(prefix)

    def local_tree(self, prefix: str) -> AbstractContextManager[Path]:
        """A local directory holding every object under ``prefix`` for the block."""
        return _downloaded_tree(self, prefix)

    def move(self, src: str, dst: str) -> str:
        """Copy then delete, so the object is never absent from both places."""
        with self.local_copy(src) as path:
            uri = self.put_file(dst, path)
        self.delete(src)
        return uri
