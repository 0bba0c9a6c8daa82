"""Research jobs on the worker side: the notebook catalog, and ``titan worker``.

:func:`notebook_catalog` writes what the API needs to validate a job request without
papermill (:mod:`titan_lib.core.jobs.catalog`): each notebook's declared parameters with
their types, and the names its parameter file and profiles set.

:class:`JobWorker` takes job ids from the queue and runs each job once:

1. receive a message (hidden from other workers for the lease),
2. claim the job in the job store (compare-and-set; only one worker wins; a job whose
   worker was lost is claimed again, or failed after ``max_attempts``),
3. run the notebook with :func:`~titan_lib.runner.execute.run_notebook` (here, or on a
   Dask cluster), renewing the job's lease and the message's visibility meanwhile,
4. record the outcome (run id, error) and delete the message.

Each state change is pushed to the job's ``jobs:<job_id>`` subscribers. A worker killed
at any point leaves the message to reappear when its lease ends: the next worker claims
the job again (or fails it), so no job is lost or stuck in ``running``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from titan_lib.core.jobs.catalog import CATALOG_SCHEMA_VERSION
from titan_lib.core.jobs.lifecycle import claim_job, finish_job, renew_lease
from titan_lib.core.jobs.models import Job
from titan_lib.core.jobs.queue import JobQueue, QueueMessage
from titan_lib.core.jobs.store import JobStore
from titan_lib.core.push.connections import ConnectionStore
from titan_lib.core.push.gateway import Sender
from titan_lib.core.push.publisher import publish
from titan_lib.exceptions import TitanError, UnavailableError
from titan_lib.runner.parameter_files import (
    NOTEBOOKS_DIR,
    PROFILES_KEY,
    collect_parameters,
    default_parameter_file,
    read_yaml_mapping,
    resolve_notebook,
)
from titan_lib.runner.parameters import inspect_parameters


def notebook_catalog(root: str | Path | None = None) -> dict[str, Any]:
    """The catalog document of the notebooks in ``<root>/notebooks`` (see
    :mod:`titan_lib.core.jobs.catalog`); ``root`` defaults to the working directory."""
    base = Path(root) if root is not None else Path.cwd()
    notebooks: dict[str, Any] = {}
    for path in sorted((base / NOTEBOOKS_DIR).glob("*.ipynb")):
        declared = inspect_parameters(path)
        file = default_parameter_file(path, base)
        values = read_yaml_mapping(file) if file is not None else {}
        profiles = values.pop(PROFILES_KEY, None) or {}
        notebooks[path.stem] = {
            "parameters": {
                p.name: {"type": p.type_name, "required": p.required} for p in declared.values()
            },
            "defaults": sorted(values),
            "profiles": {str(k): sorted(v or {}) for k, v in sorted(profiles.items())},
        }
    return {"schema_version": CATALOG_SCHEMA_VERSION, "notebooks": notebooks}


def write_notebook_catalog(target: Path, root: str | Path | None = None) -> Path:
    """Write :func:`notebook_catalog` as JSON to ``target`` (atomically); return it."""
    text = json.dumps(notebook_catalog(root), indent=1, sort_keys=True) + "\n"
    partial = target.with_suffix(target.suffix + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    return target


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs jobs.

    Attributes
    ----------
    root
        The project folder holding ``notebooks/`` and ``parameters/``.
    store
        Store URI for the run records (default ``$TITAN_STORE``).
    scheduler
        Address of a Dask scheduler to run the notebooks on (``None``: in this process).
    lease_seconds
        How long a claim and a received message hold without renewal (renewed every third
        of it while a job runs); a killed worker's job is taken up again after it.
    max_attempts
        Claims of one job before a lost job is failed instead of retried.
    wait_seconds
        How long one receive waits for a message.
    worker_id
        Names the worker in the job store.
    """

    root: Path = field(default_factory=Path.cwd)
    store: str | None = None
    scheduler: str | None = None
    lease_seconds: float = 60.0
    max_attempts: int = 3
    wait_seconds: float = 5.0
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


@dataclass(frozen=True)
class JobOutcome:
    """What running a job's notebook gave: success, the run record's id, the error."""

    succeeded: bool
    run_id: str | None
    error: str | None


def execute_job(job: Job, settings: WorkerSettings, client: Any | None = None) -> JobOutcome:
    """Run a job's notebook with the runner, leaving a run record in every case.

    Resolution and validation failures (checked again here with the runner) leave a
    failed run record too (:func:`~titan_lib.runner.execute.record_failure`).
    """
    from titan_lib.runner.execute import absolute_store_uri, record_failure, run_notebook
    from titan_lib.stores.objects import open_store

    request = job.request
    try:
        path = resolve_notebook(request.notebook, settings.root)
        values = collect_parameters(
            path, profile=request.profile, values=request.parameters, root=settings.root
        )
        arguments = {
            "store": settings.store,
            "parent_id": job.job_id,
            "step": "job",
            "progress": False,
            "check": False,
        }
        if client is not None:
            record = client.submit(run_notebook, path, values, pure=False, **arguments).result()
        else:
            record = run_notebook(path, values, **arguments)  # type: ignore[arg-type]
    except TitanError as exc:
        run_id = exc.details.get("run_id") if isinstance(exc.details, dict) else None
        if run_id is None:
            failed = record_failure(
                open_store(absolute_store_uri(settings.store)),
                request.notebook,
                request.parameters,
                exc.message,
                parent_id=job.job_id,
                step="job",
                ename=type(exc).__name__,
            )
            run_id = failed.run_id
        return JobOutcome(False, run_id, exc.message)
    error = record.error.message if record.error is not None else None
    return JobOutcome(record.status == "succeeded", record.run_id, error)


class JobWorker:
    """Takes jobs from a queue and runs each once (see the module docstring).

    Parameters
    ----------
    jobs, queue
        The job store and the queue the API writes.
    connections, sender
        Where job state changes are pushed (``sender=None``: nothing is pushed).
    settings
        :class:`WorkerSettings`.
    log
        Receives one line per event (``print`` in ``titan worker``).
    """

    def __init__(
        self,
        jobs: JobStore,
        queue: JobQueue,
        connections: ConnectionStore | None,
        sender: Sender | None,
        settings: WorkerSettings,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.jobs = jobs
        self.queue = queue
        self.connections = connections
        self.sender = sender
        self.settings = settings
        self.log = log
        self._client: Any | None = None

    def client(self) -> Any | None:
        """The Dask client of ``settings.scheduler`` (made once), or ``None``."""
        if self.settings.scheduler is None:
            return None
        if self._client is None:
            from dask.distributed import Client

            try:
                self._client = Client(self.settings.scheduler)  # distributed.comm.timeouts
            except (OSError, ValueError) as exc:
                raise UnavailableError(
                    f"could not reach the Dask scheduler {self.settings.scheduler}: {exc}",
                    {"scheduler": self.settings.scheduler},
                ) from None
        return self._client

    def notify(self, job: Job) -> None:
        """Push the job's state to its subscribers; a failed push is logged, not raised."""
        if self.connections is None:
            return
        try:
            publish(
                self.connections,
                self.sender,
                f"jobs:{job.job_id}",
                "job",
                job.public_dict(),
                principal=job.principal,
            )
        except TitanError as exc:
            self.log(f"job {job.job_id}: push failed: {exc.message}")

    def poll(self) -> Job | None:
        """Receive at most one message and handle it; the job it ended with, if any."""
        message = self.queue.receive(self.settings.wait_seconds, self.settings.lease_seconds)
        return None if message is None else self.handle(message)

    def handle(self, message: QueueMessage) -> Job | None:
        """Claim and run the message's job (see the module docstring)."""
        settings = self.settings
        claim = claim_job(
            self.jobs,
            message.job_id,
            settings.worker_id,
            time.time(),
            settings.lease_seconds,
            settings.max_attempts,
        )
        if claim.outcome == "busy":
            self.log(f"job {message.job_id}: held by another worker; left for later")
            return None
        if claim.outcome in ("missing", "done"):
            self.queue.delete(message.receipt)
            return claim.job
        job = claim.job
        assert job is not None
        if claim.outcome == "exhausted":
            self.log(f"job {job.job_id}: failed: {job.error}")
            self.notify(job)
            self.queue.delete(message.receipt)
            return job
        self.log(f"job {job.job_id}: running {job.request.notebook} (attempt {job.attempts})")
        self.notify(job)
        held = _LeaseKeeper(self.jobs, self.queue, job, message.receipt, settings.lease_seconds)
        held.start()
        try:
            outcome = execute_job(job, settings, self.client())
        finally:
            current = held.stop()
        if current is None:
            self.log(f"job {job.job_id}: lease lost to another worker; outcome dropped")
            return None
        done = finish_job(self.jobs, current, outcome.succeeded, outcome.run_id, outcome.error)
        if done is None:
            self.log(f"job {job.job_id}: taken over by another worker; outcome dropped")
            return None
        self.log(f"job {job.job_id}: {done.status} (run {done.run_id})")
        self.notify(done)
        self.queue.delete(message.receipt)
        return done

    def run(self, once: bool = False, stop: threading.Event | None = None) -> int:
        """Handle messages until ``stop`` is set (or after one message with ``once``);
        return the number of jobs that ended."""
        ended = 0
        self.client()  # an unreachable scheduler fails here, before a job is claimed
        while stop is None or not stop.is_set():
            message = self.queue.receive(self.settings.wait_seconds, self.settings.lease_seconds)
            if message is None:
                if once:
                    break
                continue
            job = self.handle(message)
            ended += int(job is not None and job.is_final)
            if once:
                break
        return ended


class _LeaseKeeper:
    """Renews a running job's lease and its message's visibility every third of the lease."""

    def __init__(
        self, jobs: JobStore, queue: JobQueue, job: Job, receipt: str, lease_seconds: float
    ) -> None:
        self.jobs, self.queue, self.receipt = jobs, queue, receipt
        self.lease_seconds = lease_seconds
        self.job: Job | None = job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, daemon=True, name="job-lease")

    def start(self) -> None:
        self._thread.start()

    def _keep(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3.0):
            if self.job is None:
                return
            try:
                self.job = renew_lease(self.jobs, self.job, time.time(), self.lease_seconds)
                self.queue.extend(self.receipt, self.lease_seconds)
            except TitanError:
                continue  # a store hiccup: the next renewal tries again within the lease

    def stop(self) -> Job | None:
        """Stop renewing; the job as this worker still holds it, or ``None`` if lost."""
        self._stop.set()
        self._thread.join()
        return self.job
