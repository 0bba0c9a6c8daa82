"""Each group of numba kernels compiled once per machine, not once per process.

numba saves what it compiles with ``cache=True`` in its cache folder (``NUMBA_CACHE_DIR``),
but processes that call the same kernels for the first time together, on an empty cache,
each compile them: the notebook kernels of a pipeline, Dask worker processes, ``titan``
commands started side by side. Compiling vectorbt's portfolio simulation alone takes about
20 s of CPU. :func:`compiling_once` makes the first call of a group of kernels in a process
wait for an exclusive file lock: one process compiles and saves, the others wait and then
load the kernels from the cache. A process takes the lock of a group once; later calls pass
straight through.

Standard library only (the lock is an ``flock``: Linux and macOS).
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from titan_lib.exceptions import ParameterError

CACHE_FOLDER_ENV = "NUMBA_CACHE_DIR"
"""numba's cache folder; the locks live beside the kernels it holds."""

_GROUP = re.compile(r"[a-z0-9][a-z0-9_-]*")
_passed: set[str] = set()
_holding = threading.local()


def lock_folder() -> Path:
    """Where the compile locks live: ``$NUMBA_CACHE_DIR``, else a folder of this user's in
    the temporary directory (numba then caches beside the sources, one cache per machine)."""
    cache = os.environ.get(CACHE_FOLDER_ENV)
    if cache:
        return Path(cache)
    return Path(tempfile.gettempdir()) / f"titan-numba-locks-{os.getuid()}"


@contextmanager
def compiling_once(group: str) -> Iterator[None]:
    """Run the block holding the machine-wide compile lock of ``group``, the first time in
    this process; later times (and nested blocks) run it without the lock.

    Parameters
    ----------
    group
        Names the kernels the block compiles (lower-case letters, digits, ``-``, ``_``).

    Notes
    -----
    A block that holds a compile lock takes no other (a nested group runs under the outer
    lock), so two processes never wait for each other. The lock is an ``flock``: a process
    that dies holding it releases it. When the lock folder cannot be written, the block runs
    without the lock (each process then compiles for itself, as numba does alone).
    """
    if not _GROUP.fullmatch(group):
        raise ParameterError(
            f"compile group must match {_GROUP.pattern}, got {group!r}", {"parameter": "group"}
        )
    if group in _passed or getattr(_holding, "group", None) is not None:
        yield
        return
    handle = _open_lock(group)
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _holding.group = group
        try:
            yield
            _passed.add(group)
        finally:
            _holding.group = None
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_lock(group: str) -> TextIO | None:
    """The lock file of ``group``, opened; ``None`` when the folder cannot be written."""
    try:
        folder = lock_folder()
        folder.mkdir(parents=True, exist_ok=True)
        return open(folder / f".compile-{group}.lock", "a")
    except OSError:
        return None
