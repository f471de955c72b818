"""The lake on a local directory (the embedded default)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlparse

from riskops.lake.base import Lake, LakeError, ObjectInfo


class LocalLake(Lake):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        # A subclass may write differently (a wrapper, a test double): not reopened as this.
        self.reopen = partial(LocalLake, self.root) if type(self) is LocalLake else None

    def __repr__(self) -> str:
        return f"LocalLake({self.root})"

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise LakeError(f"key {key!r} escapes the lake root {self.root}")
        return path

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def key_of(self, uri: str) -> str:
        parsed = urlparse(uri)
        path = Path(unquote(parsed.path))
        if parsed.scheme != "file" or self.root not in path.parents:
            raise LakeError(f"{uri} is not inside the local lake {self.root}")
        return path.relative_to(self.root).as_posix()

    def _atomic_write(self, key: str, write: object) -> str:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)  # type: ignore[operator]
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target.as_uri()

    def put_file(self, key: str, path: Path) -> str:
        def write(handle: object) -> None:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle, length=1 << 20)  # type: ignore[arg-type]

        return self._atomic_write(key, write)

    def put_bytes(self, key: str, data: bytes) -> str:
        return self._atomic_write(key, lambda handle: handle.write(data))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except OSError as error:
            raise LakeError(f"cannot read {self.uri(key)}: {error}") from error

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise LakeError(f"no object at {path.as_uri()}")
        yield path

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.path(prefix) if prefix else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if not path.is_file() or any(p.startswith(".") for p in path.relative_to(base).parts):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # moved away while we listed
            yield ObjectInfo(path.relative_to(self.root).as_posix(), stat.st_size, stat.st_mtime)

    @contextmanager
    def local_tree(self, prefix: str) -> Iterator[Path]:
        path = self.path(prefix)
        if not path.is_dir():
            raise LakeError(f"nothing stored under {path.as_uri()}")
        yield path

    def put_tree(self, prefix: str, directory: Path, last: str | None = None) -> str:
        target = self.path(prefix)
        if target.exists():
            raise LakeError(f"{target.as_uri()} exists already; trees are written once")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-tree-", dir=target.parent))
        shutil.copytree(directory, staging, dirs_exist_ok=True)
        os.replace(staging, target)  # the whole tree appears at once
        return target.as_uri()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def move(self, src: str, dst: str) -> str:
        source, target = self.path(src), self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)  # same filesystem: atomic
        return target.as_uri()
