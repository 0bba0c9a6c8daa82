"""Sweeps: one notebook over many parameter sets, fanned out on a Dask cluster.

A grid file::

    parameters: {pair_y: KO, pair_x: PEP}   # values common to every run
    grid:                                   # every combination (cartesian product)
      entry_z: [1.5, 2.0]
      exit_z: [0.0, 0.5]
    runs:                                   # and/or explicit sets, added after the grid
      - {entry_z: 3.0, exit_z: 1.0}

Each set becomes its own run with its own record (``parent_id`` = the sweep id). All sets
and the store (here, and from every worker) are checked before anything runs; a run that
fails does not stop the others, and leaves a failed record even when its worker was lost.
The sweep's summary is stored as ``sweeps/<sweep_id>/sweep.json`` (create-only).

Workers need the titan kernel, this package and access to the store: the same S3
credentials and ``AWS_ENDPOINT_URL`` (or a folder they all mount at the same path).
Several runs may share a worker process (a worker with several threads): runs share no
working directory, environment or kernel ports.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from titan_lib.exceptions import (
    ConflictError,
    NotFoundError,
    ParameterError,
    RunFailedError,
    StoreError,
    TitanError,
)
from titan_lib.runner.execute import (
    absolute_store_uri,
    check_store_access,
    record_failure,
    run_notebook,
)
from titan_lib.runner.parameter_files import read_yaml_mapping
from titan_lib.runner.parameters import inspect_parameters, validate_parameters
from titan_lib.runner.record import code_version, new_run_id
from titan_lib.runner.report import record_location
from titan_lib.runner.results import load_results
from titan_lib.stores.objects import ObjectStore, dumps_json

SWEEPS_PREFIX = "sweeps"
SWEEP_FILE = "sweep.json"


def expand_grid(doc: Mapping[str, Any], source: str = "grid file") -> list[dict[str, Any]]:
    """The parameter sets of a grid document (see the module docstring).

    Raises
    ------
    ParameterError
        Unknown top-level keys, a grid entry that is not a non-empty list, or no sets.
    """
    unknown = set(doc) - {"parameters", "grid", "runs"}
    if unknown:
        raise ParameterError(
            f"{source}: unknown keys {sorted(unknown)}; expected 'parameters', 'grid', 'runs'",
            {"keys": sorted(unknown)},
        )
    common = doc.get("parameters") or {}
    grid = doc.get("grid") or {}
    runs = doc.get("runs") or []
    if not isinstance(common, dict) or not isinstance(grid, dict) or not isinstance(runs, list):
        raise ParameterError(
            f"{source}: 'parameters' and 'grid' must be mappings, 'runs' a list", {}
        )
    for name, options in grid.items():
        if not isinstance(options, list) or not options:
            raise ParameterError(
                f"{source}: grid entry {name!r} must be a non-empty list of values",
                {"parameter": name},
            )
    sets: list[dict[str, Any]] = []
    if grid:
        names = list(grid)
        for combo in itertools.product(*(grid[n] for n in names)):
            sets.append({**common, **dict(zip(names, combo, strict=True))})
    for position, extra in enumerate(runs, start=1):
        if not isinstance(extra, dict):
            raise ParameterError(f"{source}: run {position} must be a mapping", {})
        sets.append({**common, **extra})
    if not sets:
        raise ParameterError(f"{source}: no parameter sets ('grid' and 'runs' are empty)", {})
    return sets


@dataclass
class SweepRun:
    """One parameter set's outcome."""

    index: int
    parameters: dict[str, Any]
    status: str
    run_id: str | None = None
    duration_s: float | None = None
    error: str | None = None


@dataclass
class SweepResult:
    """All runs of a sweep, in parameter-set order."""

    sweep_id: str
    notebook: str
    store: str
    scheduler: str
    duration_s: float
    runs: list[SweepRun] = field(default_factory=list)
    record: str = ""

    @property
    def failures(self) -> list[SweepRun]:
        """Runs that failed (with or without a record)."""
        return [r for r in self.runs if r.status != "succeeded"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document stored as ``sweep.json``."""
        return asdict(self)


def _run_on_worker(
    notebook_name: str,
    notebook_bytes: bytes,
    values: dict[str, Any],
    store: str,
    sweep_id: str,
    code_ref: str,
) -> dict[str, Any]:
    """Executed on a Dask worker: the notebook travels as bytes, so workers need no
    shared filesystem."""
    with tempfile.TemporaryDirectory(prefix="titan-sweep-") as folder:
        path = Path(folder) / f"{notebook_name}.ipynb"
        path.write_bytes(notebook_bytes)
        try:
            record = run_notebook(
                path,
                values,
                store=store,
                parent_id=sweep_id,
                progress=False,
                check=False,
                code_ref=code_ref,
            )
        except TitanError as exc:
            if "run_id" not in exc.details:
                raise
            return {
                "status": "failed",
                "run_id": exc.details["run_id"],
                "duration_s": 0.0,
                "error": {"message": exc.message},
            }
    return record.to_dict()


def _store_problem(store: str) -> str | None:
    """Executed on each worker: why it cannot write the store, or ``None``."""
    try:
        check_store_access(store)
    except StoreError as exc:
        return exc.message
    return None


def run_sweep(
    notebook: Path,
    parameter_sets: list[dict[str, Any]],
    *,
    store: str | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    on_run: Any = None,
) -> SweepResult:
    """Run a notebook once per parameter set on a Dask cluster.

    Parameters
    ----------
    notebook
        The notebook path.
    parameter_sets
        One mapping of values per run (:func:`expand_grid`); every set is validated
        before the cluster starts.
    store
        Store URI for the records (workers must reach it: S3 or a shared folder).
    scheduler
        Address of a running Dask scheduler; ``None`` starts a ``LocalCluster`` of
        ``workers`` single-threaded processes for the duration of the sweep.
    workers
        Worker processes of the local cluster.
    on_run
        Called with each :class:`SweepRun` as it completes.

    Raises
    ------
    ParameterError
        A parameter set does not fit the notebook (nothing was started).
    StoreError
        This process or a worker cannot write the store (nothing was run).
    """
    from dask.distributed import Client, LocalCluster, as_completed

    declared = inspect_parameters(notebook)
    checked: list[dict[str, Any]] = []
    for index, values in enumerate(parameter_sets):
        try:
            checked.append(validate_parameters(notebook, values, declared))
        except ParameterError as exc:
            raise ParameterError(
                f"parameter set {index + 1} of {len(parameter_sets)}: {exc.message}",
                {**exc.details, "set": index + 1},
            ) from None
    uri = absolute_store_uri(store)
    opened = check_store_access(uri)
    sweep_id = new_run_id()
    code_ref = code_version(notebook.parent)
    clock = time.perf_counter()
    cluster = (
        None
        if scheduler
        else LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        )
    )
    runs: dict[int, SweepRun] = {}
    content = notebook.read_bytes()
    try:
        with Client(scheduler or cluster) as client:
            problems = {w: p for w, p in client.run(_store_problem, uri).items() if p}
            if problems:
                worker, problem = sorted(problems.items())[0]
                raise StoreError(
                    f"{len(problems)} Dask worker(s) cannot write the store, so nothing was "
                    f"run; {worker}: {problem}",
                    {"store": uri, "workers": sorted(problems)},
                )
            futures = {
                client.submit(
                    _run_on_worker,
                    notebook.stem,
                    content,
                    values,
                    uri,
                    sweep_id,
                    code_ref,
                    pure=False,
                ): index
                for index, values in enumerate(checked)
            }
            for future in as_completed(futures):
                index = futures[future]
                try:
                    doc = future.result()
                    error = doc.get("error") or {}
                    run = SweepRun(
                        index,
                        checked[index],
                        doc["status"],
                        doc["run_id"],
                        doc["duration_s"],
                        error.get("message"),
                    )
                except Exception as exc:  # a worker lost, a missing kernel: keep going
                    message = (
                        exc.message
                        if isinstance(exc, TitanError)
                        else f"{type(exc).__name__}: {exc}"
                    )
                    lost_message = f"run of set {index + 1} was lost: {message}"
                    try:
                        lost_id: str | None = record_failure(
                            opened,
                            notebook.stem,
                            checked[index],
                            lost_message,
                            parent_id=sweep_id,
                            code_ref=code_ref,
                            ename=type(exc).__name__,
                        ).run_id
                    except TitanError:  # the store went away: sweep.json still says it
                        lost_id = None
                    run = SweepRun(index, checked[index], "failed", lost_id, 0.0, lost_message)
                runs[index] = run
                if on_run is not None:
                    on_run(run)
    finally:
        if cluster is not None:
            cluster.close()
    key = f"{SWEEPS_PREFIX}/{sweep_id}/{SWEEP_FILE}"
    result = SweepResult(
        sweep_id=sweep_id,
        notebook=notebook.stem,
        store=uri,
        scheduler=scheduler or f"LocalCluster({workers} workers)",
        duration_s=round(time.perf_counter() - clock, 3),
        runs=[runs[i] for i in sorted(runs)],
        record=record_location(opened, key),
    )
    if not opened.put_if_absent(key, dumps_json(result.to_dict())):
        raise ConflictError(f"sweep record {sweep_id} already exists", {"id": sweep_id})
    return result


def _sweep_from_dict(doc: dict[str, Any]) -> SweepResult:
    runs = [SweepRun(**run) for run in doc.get("runs", [])]
    return SweepResult(**{**doc, "runs": runs})


def list_sweeps(store: ObjectStore) -> list[SweepResult]:
    """Every sweep recorded in the store, oldest first."""
    sweeps = []
    for key in store.list(SWEEPS_PREFIX):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == SWEEP_FILE:
            sweeps.append(_sweep_from_dict(json.loads(store.read_bytes(key))))
    return sorted(sweeps, key=lambda s: s.sweep_id)


def read_sweep(store: ObjectStore, sweep_id: str) -> SweepResult:
    """The sweep with this id, or the one whose id starts with it.

    Raises
    ------
    NotFoundError
        No sweep matches, or the prefix matches several (the message lists them).
    """
    key = f"{SWEEPS_PREFIX}/{sweep_id}/{SWEEP_FILE}"
    if store.exists(key):
        return _sweep_from_dict(json.loads(store.read_bytes(key)))
    matches = [s for s in list_sweeps(store) if s.sweep_id.startswith(sweep_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise NotFoundError(
            f"sweep id {sweep_id!r} is ambiguous in store {store.uri}: it starts "
            f"{', '.join(s.sweep_id for s in matches)}",
            {"sweep_id": sweep_id, "matches": [s.sweep_id for s in matches]},
        )
    raise NotFoundError(
        f"sweep {sweep_id!r} not found in store {store.uri}", {"sweep_id": sweep_id}
    )


def compare_runs(store: ObjectStore, sweep: SweepResult) -> list[dict[str, Any]]:
    """One row per parameter set, in set order, for comparing a sweep's runs.

    Each row holds ``set`` (1-based), the parameters whose value differs between sets,
    ``status``, the headline figures each successful run saved as its results summary,
    ``seconds`` and ``run_id``. Values common to every set are left out.
    """
    names = list(dict.fromkeys(k for run in sweep.runs for k in run.parameters))
    varying = [
        n
        for n in names
        if len({json.dumps(r.parameters.get(n), default=str) for r in sweep.runs}) > 1
    ]
    rows = []
    for run in sweep.runs:
        summary: dict[str, Any] = {}
        if run.status == "succeeded" and run.run_id:
            try:
                summary = load_results(run.run_id, store).summary
            except (NotFoundError, RunFailedError):
                summary = {}
        rows.append(
            {
                "set": run.index + 1,
                **{n: run.parameters.get(n) for n in varying},
                "status": run.status,
                **summary,
                "seconds": run.duration_s,
                "run_id": run.run_id,
            }
        )
    return rows


def load_grid(path: str | Path) -> list[dict[str, Any]]:
    """Read a grid file and expand it into parameter sets."""
    return expand_grid(read_yaml_mapping(path, "grid file"), f"grid file {path}")
