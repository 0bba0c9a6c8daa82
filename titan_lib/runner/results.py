"""The results sidecar: what a notebook run hands to the next step and to dashboards.

A notebook calls :func:`save_results`; the runner tells it where to write through the
kernel's environment (``TITAN_RUN_DIR``, ``TITAN_RUN_ID``, ``TITAN_STORE``) and publishes
the files into the run record when the run succeeds. Readers call :func:`load_results`.
What each research notebook saves is its schema (:mod:`titan_lib.runner.result_schemas`),
checked by :func:`validate_results`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError, RunFailedError
from titan_lib.runner.record import list_records, read_record, run_key
from titan_lib.runner.result_schemas import (
    RESULT_SCHEMAS,
    ResultSchema,
    ResultSchemaError,
    result_schema,
)
from titan_lib.stores.objects import ObjectStore, open_store

if TYPE_CHECKING:
    import polars as pl

RESULTS_FILE = "results.json"
RESULTS_SCHEMA_VERSION = 1
ENV_RUN_DIR = "TITAN_RUN_DIR"
ENV_RUN_ID = "TITAN_RUN_ID"
ENV_NOTEBOOK = "TITAN_NOTEBOOK"


def to_jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, non-finite floats to ``None``, dates
    to ISO text, tuples to lists. Anything else that JSON cannot hold is an error."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, str | bytes):
        value = value.item()  # numpy / polars scalars
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    raise DataValidationError(
        f"result value of type {type(value).__name__} cannot be stored as JSON; "
        "store tables as polars DataFrames in `tables`",
        {"type": type(value).__name__},
    )


def current_run_dir() -> Path | None:
    """The staging folder of the run this code executes in, or ``None`` outside a run."""
    raw = os.environ.get(ENV_RUN_DIR)
    return Path(raw) if raw else None


def save_results(
    values: Mapping[str, Any] | None = None,
    *,
    tables: Mapping[str, pl.DataFrame] | None = None,
    summary: Mapping[str, Any] | None = None,
) -> Path | None:
    """Record a notebook's results in its run's sidecar.

    Call it from a notebook run by ``titan run``; calls accumulate (later keys replace
    earlier ones). Outside a run (an interactive session) nothing is written.

    Parameters
    ----------
    values
        JSON-able results (numbers, text, lists, nested mappings). Non-finite floats are
        stored as ``null``.
    tables
        Name to polars DataFrame, each written as ``<name>.parquet``. Names are simple
        identifiers.
    summary
        A few headline figures (label to value) that ``titan pipeline`` prints at the end.

    Raises
    ------
    ResultSchemaError
        The run's notebook declares a schema (:mod:`titan_lib.runner.result_schemas`) and
        a table it names lacks a column its readers need; nothing is written. Whether every
        table, value and summary key is there is checked once all are saved
        (:func:`validate_results`), as calls accumulate.

    Returns
    -------
    Path or None
        The staged ``results.json``, or ``None`` outside a run.
    """
    run_dir = current_run_dir()
    if run_dir is None:
        print("save_results: not running under `titan run`; results are not recorded")
        return None
    notebook = os.environ.get(ENV_NOTEBOOK) or ""
    if notebook in RESULT_SCHEMAS:
        given = {name: (frame.columns, frame.height) for name, frame in (tables or {}).items()}
        lacking = RESULT_SCHEMAS[notebook].column_problems(given)
        if lacking:
            raise ResultSchemaError(
                f"{notebook} cannot save its results: {'; '.join(lacking)} "
                "(see titan_lib.runner.result_schemas)",
                {"notebook": notebook, "problems": lacking},
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RESULTS_FILE
    doc: dict[str, Any] = (
        json.loads(path.read_text())
        if path.is_file()
        else {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "run_id": os.environ.get(ENV_RUN_ID),
            "notebook": os.environ.get(ENV_NOTEBOOK),
            "values": {},
            "tables": {},
            "summary": {},
        }
    )
    doc["values"].update(to_jsonable(dict(values or {})))
    doc["summary"].update(to_jsonable(dict(summary or {})))
    for name, frame in (tables or {}).items():
        if not name.isidentifier():
            raise ParameterError(
                f"table name {name!r} must be a simple identifier", {"table": name}
            )
        file_name = f"{name}.parquet"
        frame.write_parquet(run_dir / file_name)
        doc["tables"][name] = file_name
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(json.dumps(doc, indent=2, allow_nan=False).encode())  # keeps key order
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class RunResults:
    """A published sidecar, read from the store.

    Attributes
    ----------
    run_id, notebook
        The run and its notebook name.
    values
        The JSON results.
    summary
        Headline figures.
    tables
        Table name to file name inside the run record.
    """

    run_id: str
    notebook: str
    values: dict[str, Any]
    summary: dict[str, Any]
    tables: dict[str, str]
    store: ObjectStore

    def table(self, name: str) -> pl.DataFrame:
        """Read one of the run's tables as a polars DataFrame.

        Raises
        ------
        NotFoundError
            The run saved no table of that name.
        """
        import polars as pl

        if name not in self.tables:
            raise NotFoundError(
                f"run {self.run_id} has no table {name!r}; it has: "
                f"{', '.join(sorted(self.tables)) or 'none'}",
                {"run_id": self.run_id, "table": name},
            )
        data = self.store.read_bytes(run_key(self.run_id, self.tables[name]))
        return pl.read_parquet(BytesIO(data))

    def value(self, path: str) -> Any:
        """A value by dotted path (``"top_pair.y"``; list items by index, ``"pairs.0"``).

        Raises
        ------
        NotFoundError
            The path does not exist in the run's values.
        """
        node: Any = self.values
        for part in path.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif (
                isinstance(node, list)
                and part.lstrip("-").isdigit()
                and -len(node) <= int(part) < len(node)
            ):
                node = node[int(part)]
            else:
                raise NotFoundError(
                    f"run {self.run_id} ({self.notebook}) has no result {path!r}; "
                    f"top-level results: {', '.join(sorted(self.values)) or 'none'}",
                    {"run_id": self.run_id, "path": path},
                )
        return node


def load_results(run_id: str, store: str | ObjectStore | None = None) -> RunResults:
    """Read the results sidecar of a successful run.

    Parameters
    ----------
    run_id
        The run.
    store
        A store URI or open store; ``$TITAN_STORE`` / ``./titan-data`` when ``None``.

    Raises
    ------
    NotFoundError
        No such run, or the run saved no results.
    RunFailedError
        The run failed: its results are not published.
    """
    opened = store if isinstance(store, ObjectStore) else open_store(store)
    record = read_record(opened, run_id)
    if not record.succeeded:
        reason = record.error.message if record.error else "unknown error"
        raise RunFailedError(
            f"run {run_id} ({record.notebook}) failed, it has no results: {reason}",
            {"run_id": run_id},
        )
    try:
        doc = json.loads(opened.read_bytes(run_key(run_id, RESULTS_FILE)))
    except NotFoundError:
        raise NotFoundError(
            f"run {run_id} ({record.notebook}) saved no results", {"run_id": run_id}
        ) from None
    return RunResults(
        run_id=run_id,
        notebook=record.notebook,
        values=doc.get("values", {}),
        summary=doc.get("summary", {}),
        tables=doc.get("tables", {}),
        store=opened,
    )


def latest_run_id(notebook: str, store: str | ObjectStore | None = None) -> str:
    """The id of the newest successful run of a notebook (by name, e.g. ``02_pair_scan``).

    Raises
    ------
    NotFoundError
        The notebook has no successful run in the store.
    """
    opened = store if isinstance(store, ObjectStore) else open_store(store)
    runs = list_records(opened, notebook=notebook, status="succeeded")
    if not runs:
        raise NotFoundError(
            f"no successful run of {notebook} in store {opened.uri}; run it first "
            f"(titan run {notebook})",
            {"notebook": notebook},
        )
    return runs[-1].run_id


def results_of(run_id: str, notebook: str, store: str | ObjectStore | None = None) -> RunResults:
    """The sidecar of ``run_id``, or of the newest successful run of ``notebook`` when
    ``run_id`` is empty (what a notebook parameter ``..._run_id: str = ""`` means).

    Raises
    ------
    NotFoundError
        No such run, or no successful run of ``notebook`` yet.
    """
    opened = store if isinstance(store, ObjectStore) else open_store(store)
    return load_results(run_id or latest_run_id(notebook, opened), opened)


def current_run_id() -> str | None:
    """The id of the run this code executes in (``None`` outside ``titan run``), for
    provenance of what a notebook publishes."""
    return os.environ.get(ENV_RUN_ID) or None


def validate_results(results: RunResults) -> ResultSchema:
    """Check a run's published results against its notebook's schema.

    Returns
    -------
    ResultSchema
        The schema they fit.

    Raises
    ------
    ResultSchemaError
        A table, column, value or summary key is missing (all of them are named).
    NotFoundError
        The run's notebook declares no schema.
    """
    schema = result_schema(results.notebook)
    tables = {}
    for name in results.tables:
        frame = results.table(name)
        tables[name] = (frame.columns, frame.height)
    schema.check(results.values, results.summary, tables, run_id=results.run_id)
    return schema
