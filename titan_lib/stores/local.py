"""Local-folder object store: atomic writes by write-to-temp + ``os.replace``.

A write goes to a hidden temporary file ``.<name>.<random>.tmp`` next to its key, which
is then renamed (or linked) into place. A process killed in between leaves that file
behind: hidden files are never listed or read as objects, and the first write of a store
opened later deletes the temporary files older than :data:`ORPHAN_AGE_SECONDS` (a live
write never takes that long, so a concurrent writer's file is left alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from titan_lib.exceptions import ConflictError, NotFoundError, StoreError

ORPHAN_AGE_SECONDS = 3600.0
"""Temporary files older than this are left by a killed write and are deleted."""


class LocalObjectStore:
    """Objects are files below a root folder; keys are relative POSIX paths.

    Parameters
    ----------
    root
        The folder. Created on first write.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.uri = str(self.root)
        self._swept = False

    def sweep_orphans(self, max_age_seconds: float = ORPHAN_AGE_SECONDS) -> list[str]:
        """Delete temporary files of interrupted writes older than ``max_age_seconds``.

        Returns the deleted paths, relative to the root. Runs once by itself, before the
        first write of this store object.
        """
        self._swept = True
        if not self.root.is_dir():
            return []
        cutoff = time.time() - max_age_seconds
        removed = []
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if not (name.startswith(".") and name.endswith(".tmp")):
                    continue
                path = Path(dirpath) / name
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed.append(path.relative_to(self.root).as_posix())
        return sorted(removed)

    def _temporary(self, path: Path) -> tuple[int, str]:
        if not self._swept:
            self.sweep_orphans()
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")

    def _path(self, key: str) -> Path:
        clean = key.strip("/")
        if not clean or any(part in ("", ".", "..") for part in clean.split("/")):
            raise StoreError(f"invalid store key {key!r}", {"key": key})
        return self.root / clean

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in store {self.uri}", {"key": key}) from None
        except IsADirectoryError:
            raise NotFoundError(f"{key} is a folder in store {self.uri}", {"key": key}) from None

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self.read_bytes(key)
        except NotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        fd, tmp = self._temporary(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_if_absent(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        fd, tmp = self._temporary(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            # link() fails if the target exists: a create-only, atomic publish.
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.parent / f".{path.name}.lock"
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def write_if_match(self, key: str, data: bytes, token: str | None) -> None:
        with self._locked(key):
            current = self.read_versioned(key)
            current_token = None if current is None else current[1]
            if current_token != token:
                raise ConflictError(
                    f"{key} changed in store {self.uri} while it was being updated; retry",
                    {"key": key},
                )
            self.write_bytes(key, data)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / prefix.strip("/") if prefix.strip("/") else self.root
        if base.is_file():
            return [prefix.strip("/")]
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _dirnames, filenames in os.walk(base):
            for name in filenames:
                if name.startswith("."):
                    continue
                full = Path(dirpath) / name
                keys.append(full.relative_to(self.root).as_posix())
        return sorted(keys)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()
