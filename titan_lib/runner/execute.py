"""Run one notebook with papermill and leave its run record in the store."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from titan_lib.config import store_uri
from titan_lib.exceptions import (
    NotFoundError,
    ParameterError,
    RunFailedError,
    StoreError,
    TitanError,
)
from titan_lib.runner.engine import register_engine
from titan_lib.runner.parameters import NotebookParameter, inspect_parameters, validate_parameters
from titan_lib.runner.record import (
    OUTPUT_NOTEBOOK,
    PARAMETERS_FILE,
    REPORT_FILE,
    RunError,
    RunRecord,
    code_version,
    environment,
    new_run_id,
    package_versions,
    publish_record,
    utc_now,
)
from titan_lib.runner.report import notebook_html
from titan_lib.runner.results import ENV_NOTEBOOK, ENV_RUN_DIR, ENV_RUN_ID, RESULTS_FILE
from titan_lib.stores.objects import ObjectStore, open_store

KERNEL_INSTALL_HINT = (
    'python -m ipykernel install --sys-prefix --name titan --display-name "TITAN (Python 3.11)"'
)


def absolute_store_uri(store: str | None) -> str:
    """The store URI with a local path made absolute, so a kernel in another folder
    finds the same store."""
    uri = store_uri(store)
    return uri if uri.startswith("s3://") else str(Path(uri).expanduser().resolve())


def check_store_access(store: str | None) -> ObjectStore:
    """Open a store and prove it can be written (and read back) before any run starts.

    A probe object is written at the store's root, read and deleted: missing or wrong S3
    credentials, an unknown bucket and a read-only folder fail here, before a kernel or a
    cluster starts.

    Raises
    ------
    StoreError
        The store cannot be opened, written or read; the message names it.
    """
    uri = absolute_store_uri(store)
    probe = f".titan-write-check-{secrets.token_hex(6)}"
    try:
        opened = open_store(uri)
        opened.put_if_absent(probe, b"probe")
        opened.read_bytes(probe)
        opened.delete(probe)
    except (TitanError, OSError) as exc:
        reason = exc.message if isinstance(exc, TitanError) else f"{type(exc).__name__}: {exc}"
        raise StoreError(
            f"store {uri} cannot be written, so nothing was run: {reason}", {"store": uri}
        ) from None
    return opened


def record_failure(
    store: ObjectStore,
    notebook: str,
    parameters: Mapping[str, Any],
    message: str,
    *,
    parent_id: str | None = None,
    step: str | None = None,
    code_ref: str | None = None,
    ename: str | None = None,
) -> RunRecord:
    """Record a run that failed before its notebook could execute (a missing kernel, an
    input that could not be resolved, a lost worker), so every failure has a record."""
    import yaml

    now = utc_now().isoformat()
    values = json.loads(json.dumps(dict(parameters), default=str))
    host = environment()
    record = RunRecord(
        run_id=new_run_id(),
        notebook=notebook,
        status="failed",
        started_at=now,
        ended_at=now,
        duration_s=0.0,
        parameters=values,
        code_version=code_ref or code_version(),
        packages=package_versions(),
        host=host["host"],
        python=host["python"],
        store=store.uri,
        parent_id=parent_id,
        step=step,
        error=RunError(message=message, ename=ename),
        files=[PARAMETERS_FILE],
    )
    publish_record(store, record, {PARAMETERS_FILE: yaml.safe_dump(values).encode()})
    return record


def notebook_kernel(notebook: Path) -> str:
    """The kernel a notebook asks for (``metadata.kernelspec.name``)."""
    doc = json.loads(notebook.read_text(encoding="utf-8"))
    name = doc.get("metadata", {}).get("kernelspec", {}).get("name")
    if not name:
        raise ParameterError(
            f"notebook {notebook} names no kernel (metadata.kernelspec.name)",
            {"notebook": str(notebook)},
        )
    return str(name)


def check_kernel(kernel_name: str) -> None:
    """Fail early, with the install command, when a kernel is not installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        hint = f"; install it with: {KERNEL_INSTALL_HINT}" if kernel_name == "titan" else ""
        raise NotFoundError(
            f"Jupyter kernel {kernel_name!r} is not installed{hint}", {"kernel": kernel_name}
        ) from None


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


def _last_started_cell(output: Path) -> tuple[int | None, str]:
    """Index and first source line of the last cell papermill started: the one that was
    running when execution stopped without a cell error (dead kernel, interrupt)."""
    try:
        doc = json.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, ""
    found: tuple[int | None, str] = (None, "")
    for index, cell in enumerate(doc.get("cells", [])):
        if cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            source = cell.get("source", "")
            found = index, _first_line("".join(source) if isinstance(source, list) else source)
    return found


def _mark_failed_cell(output: Path, error: RunError) -> None:
    """Put the failure into the saved notebook when the kernel could not report it."""
    if error.cell_index is None or not output.is_file():
        return
    doc = json.loads(output.read_text(encoding="utf-8"))
    cell = doc["cells"][error.cell_index]
    cell.setdefault("outputs", []).append(
        {
            "output_type": "error",
            "ename": error.ename or "Error",
            "evalue": error.evalue or "",
            "traceback": [error.message],
        }
    )
    cell.setdefault("metadata", {}).setdefault("papermill", {})["status"] = "failed"
    output.write_text(json.dumps(doc, indent=1), encoding="utf-8")


def _describe_failure(name: str, exc: BaseException, output: Path) -> RunError:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        where = f"In [{exc.exec_count}]" if exc.exec_count is not None else "a cell"
        return RunError(
            message=(
                f"notebook {name} failed at cell {exc.cell_index} ({where}: "
                f"{_first_line(exc.source)!r}): {exc.ename}: {exc.evalue}"
            ),
            cell_index=exc.cell_index,
            execution_count=exc.exec_count,
            ename=exc.ename,
            evalue=exc.evalue,
        )
    index, first = _last_started_cell(output)
    kind = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else kind
    if kind == "DeadKernelError" or "Kernel died" in text:
        text = "the kernel died (killed or out of memory)"
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    where = f"cell {index} ({first!r})" if index is not None else "start-up"
    return RunError(
        message=f"notebook {name} failed at {where}: {kind}: {text}",
        cell_index=index,
        ename=kind,
        evalue=text,
    )


def run_notebook(
    notebook: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    store: str | None = None,
    parent_id: str | None = None,
    step: str | None = None,
    kernel_name: str | None = None,
    progress: bool = True,
    report: bool = False,
    execution_timeout: float | None = None,
    check: bool = True,
    declared: Mapping[str, NotebookParameter] | None = None,
    code_ref: str | None = None,
    progress_label: str | None = None,
) -> RunRecord:
    """Validate parameters, execute a notebook with papermill and record the run.

    Parameters
    ----------
    notebook
        Path of the ``.ipynb`` file.
    parameters
        Values for the notebook's ``parameters`` cell; checked before the kernel starts.
    store
        Store URI for the record (and for the notebook, through ``TITAN_STORE``).
    parent_id
        Pipeline or sweep id this run belongs to.
    step
        The pipeline step name, when run by a pipeline.
    kernel_name
        Override the notebook's kernel (default: its ``kernelspec``, ``titan``).
    progress
        Show papermill's progress bar on stderr.
    progress_label
        Name the progress bar with this label and clear it when the run ends (a pipeline
        prints one line per step instead).
    report
        Also render ``report.html`` (code hidden) into the record.
    execution_timeout
        Seconds allowed per cell (no limit when ``None``).
    check
        Raise :class:`RunFailedError` when the run fails (after recording it).
    declared
        The notebook's parameters when already inspected.
    code_ref
        The code version to record (default: git commit of the notebook's folder, else
        the package version).

    Returns
    -------
    RunRecord
        The published record (``status`` ``"succeeded"`` or, with ``check=False``,
        ``"failed"``).

    Raises
    ------
    ParameterError
        Parameters do not match the notebook (no kernel was started, nothing recorded).
    NotFoundError
        The kernel is not installed (a failed record says so).
    RunFailedError
        A cell raised or the kernel died; the failed record is in the store.

    Notes
    -----
    Runs may share a process (threads of a Dask worker): nothing here changes the
    process's working directory or environment. The kernel starts in the notebook's
    folder with the run's own environment and talks to this process over Unix sockets
    in the run's staging folder (no TCP ports, no plain-text warning from the kernel).
    """
    import papermill
    import yaml
    from traitlets.config import Config

    path = Path(notebook).resolve()
    params = dict(declared) if declared is not None else inspect_parameters(path)
    values = validate_parameters(path, dict(parameters or {}), params)
    kernel = kernel_name or notebook_kernel(path)
    uri = absolute_store_uri(store)
    opened = open_store(uri)
    try:
        check_kernel(kernel)
    except NotFoundError as exc:
        failed = record_failure(
            opened,
            path.stem,
            values,
            f"notebook {path.stem} did not start: {exc.message}",
            parent_id=parent_id,
            step=step,
            code_ref=code_ref,
            ename="NotFoundError",
        )
        raise NotFoundError(exc.message, {**exc.details, "run_id": failed.run_id}) from None

    run_id = new_run_id()
    staging = Path(tempfile.mkdtemp(prefix=f"titan-run-{run_id}-"))
    output = staging / OUTPUT_NOTEBOOK
    sidecar = staging / "results"
    kernel_env = {
        **os.environ,
        "TITAN_STORE": uri,
        ENV_RUN_DIR: str(sidecar),
        ENV_RUN_ID: run_id,
        ENV_NOTEBOOK: path.stem,
    }
    transport = Config({"KernelManager": {"transport": "ipc", "ip": str(staging / "kernel")}})
    bar: bool | dict[str, Any] = progress
    if progress and progress_label is not None:
        bar = {"desc": progress_label, "leave": False}
    started = utc_now()
    clock = time.perf_counter()
    error: RunError | None = None
    interrupted: BaseException | None = None
    try:
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=values,
            engine_name=register_engine(),
            kernel_name=kernel,
            progress_bar=bar,
            execution_timeout=execution_timeout,
            kernel_env=kernel_env,
            config=transport,
            resources={"metadata": {"path": str(path.parent)}},
        )
    except KeyboardInterrupt as exc:
        error = _describe_failure(path.stem, exc, output)
        interrupted = exc
        _mark_failed_cell(output, error)
    except Exception as exc:
        from papermill.exceptions import PapermillExecutionError

        error = _describe_failure(path.stem, exc, output)
        if not isinstance(exc, PapermillExecutionError):
            _mark_failed_cell(output, error)
    duration = time.perf_counter() - clock
    ended = utc_now()

    try:
        files: dict[str, bytes] = {}
        if output.is_file():
            files[OUTPUT_NOTEBOOK] = output.read_bytes()
        files[PARAMETERS_FILE] = yaml.safe_dump(values, sort_keys=True).encode()
        if error is None and sidecar.is_dir():
            for item in sorted(sidecar.iterdir()):
                if item.name == RESULTS_FILE or item.suffix == ".parquet":
                    files[item.name] = item.read_bytes()
        if report and OUTPUT_NOTEBOOK in files:
            files[REPORT_FILE] = notebook_html(files[OUTPUT_NOTEBOOK])
        host = environment()
        record = RunRecord(
            run_id=run_id,
            notebook=path.stem,
            status="succeeded" if error is None else "failed",
            started_at=started.isoformat(),
            ended_at=ended.isoformat(),
            duration_s=round(duration, 3),
            parameters=json.loads(json.dumps(values, default=str)),
            code_version=code_ref or code_version(path.parent),
            packages=package_versions(),
            host=host["host"],
            python=host["python"],
            store=uri,
            parent_id=parent_id,
            step=step,
            error=error,
            files=sorted(files),
        )
        publish_record(opened, record, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if interrupted is not None:
        raise interrupted
    if check and error is not None:
        raise RunFailedError(
            f"{error.message} (run {run_id}, output notebook saved in the record)",
            {"run_id": run_id, "notebook": path.stem},
        )
    return record
