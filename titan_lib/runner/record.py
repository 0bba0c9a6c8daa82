"""Run records: the immutable trace each notebook run leaves under ``runs/<run_id>/``.

``run.json`` is written last and create-only: a run is listed once its ``run.json``
exists, and nothing in a record is ever overwritten (see :mod:`titan_lib.runner` for the
whole layout).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import secrets
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from titan_lib.exceptions import ConflictError, NotFoundError, SchemaVersionError
from titan_lib.stores.objects import ObjectStore, dumps_json

RUN_SCHEMA_VERSION = 1
RUNS_PREFIX = "runs"
RUN_FILE = "run.json"
OUTPUT_NOTEBOOK = "output.ipynb"
PARAMETERS_FILE = "parameters.yaml"
REPORT_FILE = "report.html"

RunStatus = Literal["succeeded", "failed"]

KEY_PACKAGES = (
    "titan-lib",
    "papermill",
    "ipykernel",
    "polars",
    "pyarrow",
    "numpy",
    "pandas",
    "statsmodels",
    "scipy",
    "vectorbt",
    "plotly",
    "dask",
)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A run id that sorts by start time: ``20261125T212300123Z-1a2b3c`` (UTC, ms)."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{secrets.token_hex(3)}"


def run_key(run_id: str, name: str) -> str:
    """Store key of a file in a run's record."""
    return f"{RUNS_PREFIX}/{run_id}/{name}"


@dataclass(frozen=True)
class RunError:
    """Where and why a run failed.

    Attributes
    ----------
    message
        One line naming the cell and the error.
    cell_index
        Index of the failing cell in the output notebook (``None`` when not known, e.g.
        the kernel died before a cell started).
    execution_count
        The cell's ``In [n]`` number, when it ran.
    ename, evalue
        Exception class name and text, as reported by the kernel.
    """

    message: str
    cell_index: int | None = None
    execution_count: int | None = None
    ename: str | None = None
    evalue: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """The content of ``runs/<run_id>/run.json``.

    Times are ISO 8601 UTC; ``duration_s`` is wall seconds from kernel start to the end
    of the last cell. ``files`` lists the record's other files (relative names).
    """

    run_id: str
    notebook: str
    status: RunStatus
    started_at: str
    ended_at: str
    duration_s: float
    parameters: dict[str, Any]
    code_version: str
    packages: dict[str, str]
    host: str
    python: str
    store: str
    parent_id: str | None = None
    step: str | None = None
    error: RunError | None = None
    files: list[str] = field(default_factory=list)
    schema_version: int = RUN_SCHEMA_VERSION

    @property
    def succeeded(self) -> bool:
        """Whether every cell ran without error."""
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document stored as ``run.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunRecord:
        """Parse a ``run.json`` document.

        Raises
        ------
        SchemaVersionError
            The document was written by a newer, incompatible version.
        """
        version = doc.get("schema_version")
        if version != RUN_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"run record {doc.get('run_id')!r} has schema_version {version!r}; "
                f"this code reads {RUN_SCHEMA_VERSION}",
                {"run_id": doc.get("run_id")},
            )
        error = doc.get("error")
        return cls(**{**doc, "error": RunError(**error) if error else None})


def code_version(where: Path | None = None) -> str:
    """The git commit of the code (``git:<sha>``, ``+dirty`` when files changed), else
    the installed package version (``titan-lib==0.1.0``)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"git:{sha}" + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"titan-lib=={_version('titan-lib')}"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a run's results."""
    return {name: _version(name) for name in KEY_PACKAGES}


def environment() -> dict[str, str]:
    """Host name and Python version for a record."""
    return {"host": socket.gethostname(), "python": platform.python_version() or sys.version}


def publish_record(store: ObjectStore, record: RunRecord, files: dict[str, bytes]) -> None:
    """Write a run's files, then its ``run.json``, all create-only.

    Parameters
    ----------
    store
        The store.
    record
        The run record; ``record.files`` should name ``files``.
    files
        Relative file name to content (output notebook, parameters, sidecar).

    Raises
    ------
    ConflictError
        A file of this run id already exists: records are immutable.
    """
    for name, data in files.items():
        if not store.put_if_absent(run_key(record.run_id, name), data):
            raise ConflictError(
                f"run record {record.run_id} already has {name} in store {store.uri}; "
                "run records are immutable",
                {"run_id": record.run_id, "file": name},
            )
    if not store.put_if_absent(run_key(record.run_id, RUN_FILE), dumps_json(record.to_dict())):
        raise ConflictError(
            f"run record {record.run_id} already exists in store {store.uri}",
            {"run_id": record.run_id},
        )
    from titan_lib.data.serving_documents import publish_run_document  # loads polars

    publish_run_document(store, record.to_dict(), files.get("results.json"))


def add_record_file(store: ObjectStore, run_id: str, name: str, data: bytes) -> bool:
    """Add a derived file (an HTML report) to an existing record; never replaces one.

    Returns ``False`` when the file was already there.
    """
    read_record(store, run_id)
    return store.put_if_absent(run_key(run_id, name), data)


def read_record(store: ObjectStore, run_id: str) -> RunRecord:
    """Read ``runs/<run_id>/run.json``.

    Raises
    ------
    NotFoundError
        No run with that id in the store.
    """
    try:
        doc = json.loads(store.read_bytes(run_key(run_id, RUN_FILE)))
    except NotFoundError:
        raise NotFoundError(
            f"run {run_id!r} not found in store {store.uri}", {"run_id": run_id}
        ) from None
    return RunRecord.from_dict(doc)


def list_records(
    store: ObjectStore,
    *,
    notebook: str | None = None,
    status: RunStatus | None = None,
    parent_id: str | None = None,
) -> list[RunRecord]:
    """Every complete run in the store, oldest first, optionally filtered."""
    records = []
    for key in store.list(RUNS_PREFIX):
        parts = key.split("/")
        if len(parts) != 3 or parts[2] != RUN_FILE:
            continue
        record = read_record(store, parts[1])
        if notebook is not None and record.notebook != notebook:
            continue
        if status is not None and record.status != status:
            continue
        if parent_id is not None and record.parent_id != parent_id:
            continue
        records.append(record)
    return sorted(records, key=lambda r: r.run_id)


def utc_now() -> dt.datetime:
    """The current time, UTC."""
    return dt.datetime.now(dt.UTC)
