"""``titan worker``: run the research jobs queued through ``POST /jobs``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def _beside_store(explicit: str | None, store: str | None, env: str, name: str) -> str | None:
    """``explicit``, else ``$env``, else ``<store>/<name>`` for a local ``--store``."""
    if explicit or os.environ.get(env) or store is None or store.startswith("s3://"):
        return explicit
    return os.path.join(store, name)


def worker_command(
    once: Annotated[
        bool, typer.Option("--once", help="Handle at most one queued job, then exit.")
    ] = False,
    store: Annotated[
        str | None,
        typer.Option(help="Store URI for run records. Default: $TITAN_STORE or ./titan-data."),
    ] = None,
    queue: Annotated[
        str | None,
        typer.Option(help="Queue: sqs://<name> or a SQLite path. Default: $TITAN_QUEUE."),
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option(help="Ledger holding the jobs: dynamodb://<table> or a SQLite path."),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address to run notebooks on.")
    ] = None,
    root: Annotated[
        Path, typer.Option(help="Project folder with notebooks/ and parameters/.")
    ] = Path("."),
    lease: Annotated[
        float, typer.Option(help="Seconds a claim holds without renewal (min 3).")
    ] = 60.0,
    max_attempts: Annotated[
        int, typer.Option(help="Claims of a job before a lost job is failed.")
    ] = 3,
    wait: Annotated[float, typer.Option(help="Seconds to wait for a message.")] = 5.0,
    push_endpoint: Annotated[
        str | None,
        typer.Option(help="WebSocket management endpoint. Default: $TITAN_WS_ENDPOINT."),
    ] = None,
) -> None:
    """Take jobs from the queue and run their notebooks, each exactly once."""
    import threading

    from titan_lib.core.jobs.queues import open_queue
    from titan_lib.core.jobs.stores import open_job_store
    from titan_lib.core.push.connection_stores import open_connections
    from titan_lib.core.push.gateway import default_sender
    from titan_lib.exceptions import ParameterError
    from titan_lib.runner.jobs import JobWorker, WorkerSettings

    if lease < 3 or max_attempts < 1 or wait < 0:
        raise ParameterError("--lease must be >= 3, --max-attempts >= 1, --wait >= 0")
    ledger = _beside_store(ledger, store, "TITAN_LEDGER", "ledger.sqlite")
    queue = _beside_store(queue, store, "TITAN_QUEUE", "queue.sqlite")
    worker = JobWorker(
        open_job_store(ledger),
        open_queue(queue),
        open_connections(ledger),
        default_sender(push_endpoint),
        WorkerSettings(
            root=root.resolve(),
            store=store,
            scheduler=scheduler,
            lease_seconds=lease,
            max_attempts=max_attempts,
            wait_seconds=wait,
        ),
        log=typer.echo,
    )
    typer.echo(f"worker {worker.settings.worker_id} on {worker.queue.uri}")
    stop = threading.Event()
    try:
        ended = worker.run(once=once, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        return
    typer.echo(f"jobs ended: {ended}")


def register(app: typer.Typer) -> None:
    """Add the ``worker`` command."""
    app.command("worker")(worker_command)
