"""Whether a pipeline step can reuse its previous run instead of executing again.

A step's fingerprint is a SHA-256 over everything its run depends on:

- the notebook file's bytes;
- its resolved parameters (fixed values and values read from earlier steps);
- the run ids of the earlier steps it takes inputs from;
- the content of local files and folders its parameters (or their defaults in the
  notebook) name: a path relative to the notebook's folder, where its kernel starts, or
  an absolute one;
- the ``titan_lib`` package (code and bundled sample data), the versions of the packages
  that decide results (:func:`~titan_lib.runner.record.package_versions`) and Python;
- the store's URI.

A parameter naming an ``s3://`` object makes the step always run: its content is not
checked here.

Steps also read what earlier runs left in the store (prices, scans, models, the newest
run of a notebook), so a pipeline reuses runs only while the store is exactly as the
previous run of the same pipeline left it (:func:`store_state`), and only a leading run of
unchanged steps: once a step executes, every later step executes too.
"""

from __future__ import annotations

import ast
import hashlib
import platform
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from titan_lib.exceptions import NotFoundError
from titan_lib.runner.parameters import NotebookParameter
from titan_lib.runner.record import package_versions
from titan_lib.stores.objects import ObjectStore, dumps_json

LIBRARY = Path(__file__).resolve().parents[1]
"""The ``titan_lib`` package folder: its code and bundled data are part of every
fingerprint."""
RECORD_PREFIXES = ("runs/", "sweeps/")
"""Create-only records: a key's name stands for its content in :func:`store_state`."""
UNTRACKED_PREFIXES = ("pipelines/",)
"""Pipeline records: written after the state is taken, read by nothing a step runs."""
MAX_FOLDER_FILES = 10_000
"""A parameter naming a folder with more files than this makes the step always run."""
REUSE_REASON = "unchanged notebook, parameters and inputs"


def _digest_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_fingerprint() -> str:
    """SHA-256 of the ``titan_lib`` package files, the key package versions and Python."""
    digest = hashlib.sha256()
    for path in sorted(LIBRARY.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(f"{path.relative_to(LIBRARY)}\0{_digest_file(path)}\n".encode())
    digest.update(dumps_json(package_versions(), pretty=False))
    digest.update(platform.python_version().encode())
    return digest.hexdigest()


def _folder_digest(folder: Path) -> str | None:
    """Names, sizes and modification times of a folder's files; ``None`` when too many."""
    digest = hashlib.sha256()
    count = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        count += 1
        if count > MAX_FOLDER_FILES:
            return None
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _defaults(declared: Mapping[str, NotebookParameter]) -> dict[str, Any]:
    """The notebook's default values that are plain literals."""
    values: dict[str, Any] = {}
    for name, parameter in declared.items():
        try:
            values[name] = ast.literal_eval(parameter.default)
        except (ValueError, SyntaxError):
            continue
    return values


def _named_path(text: str, folder: Path) -> Path | None:
    """The existing local file or folder a parameter value names, if any."""
    if not text.strip() or "\n" in text or len(text) > 4096:
        return None
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = folder / candidate
    try:
        return candidate if candidate.exists() else None
    except OSError:  # a value that is no valid path
        return None


def step_fingerprint(
    notebook: Path,
    values: Mapping[str, Any],
    upstream: Mapping[str, str],
    *,
    declared: Mapping[str, NotebookParameter],
    library: str,
    store: str,
) -> str | None:
    """The fingerprint of one step's run, or ``None`` when it must always run.

    Parameters
    ----------
    notebook
        The step's notebook file.
    values
        Its resolved parameters.
    upstream
        Step name to run id of every earlier step it takes inputs from.
    declared
        The notebook's parameters (their defaults may name files too).
    library
        :func:`library_fingerprint`, computed once per pipeline run.
    store
        The store's URI.
    """
    files: dict[str, str] = {}
    for text in _strings({**_defaults(declared), **values}):
        if text.startswith("s3://"):
            return None
        path = _named_path(text, notebook.parent)
        if path is None:
            continue
        content = _digest_file(path) if path.is_file() else _folder_digest(path)
        if content is None:
            return None
        files[text] = content
    doc = {
        "notebook": _digest_file(notebook),
        "parameters": dict(values),
        "upstream": dict(upstream),
        "files": files,
        "library": library,
        "store": store,
    }
    return hashlib.sha256(dumps_json(doc, pretty=False)).hexdigest()


def store_state(store: ObjectStore) -> str:
    """SHA-256 of what is in the store, for telling whether anything changed it.

    Run and sweep records count by their keys (they are create-only), any other object by
    its size and modification time (local stores) or its content (S3). Pipeline records
    and hidden files (locks, write probes) are left out.
    """
    digest = hashlib.sha256()
    for key in store.list(""):
        if key.startswith(UNTRACKED_PREFIXES) or key.rsplit("/", 1)[-1].startswith("."):
            continue
        digest.update(f"{key}\0".encode())
        if key.startswith(RECORD_PREFIXES):
            digest.update(b"\n")
            continue
        local = store.local_path(key)
        try:
            if local is not None:
                stat = local.stat()
                digest.update(f"{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            else:
                digest.update(hashlib.sha256(store.read_bytes(key)).hexdigest().encode() + b"\n")
        except (OSError, NotFoundError):  # removed since the listing
            digest.update(b"missing\n")
    return digest.hexdigest()
