"""``titan dashboard [NAME]``: serve the Voilà dashboards (127.0.0.1 unless ``--host``)."""

from __future__ import annotations

from typing import Annotated

import typer

from titan_lib.cli.options import STORE_OPTION

NAME_ARGUMENT = typer.Argument(
    help="index, pair_explorer, backtest_report or live_signals; default: all, from the "
    "landing page."
)
PORT_OPTION = typer.Option(
    help="Port on 127.0.0.1 (an error if it is busy). Default: 8866, or the next free port "
    "after it."
)
TOKEN_OPTION = typer.Option(help="Require this token (?token=...) on every request.")
LEDGER_OPTION = typer.Option(
    help="Order ledger for live signals: a SQLite path or dynamodb://TABLE. Default: "
    "$TITAN_LEDGER, else ledger.sqlite in a local store."
)
PUSH_URL_OPTION = typer.Option(
    help="WebSocket API the live-signals page subscribes to, e.g. ws://127.0.0.1:8000/ws "
    "(titan lambdas local) or wss://<api>/api: the page then updates by push. Default: "
    "$TITAN_PUSH_URL; none: the page updates on Refresh. The bearer token comes from "
    "$TITAN_PUSH_TOKEN (or the SSM parameter named by $TITAN_PUSH_TOKEN_SSM)."
)
HOST_OPTION = typer.Option(
    help="Address to listen on. Default 127.0.0.1 (this machine only); to serve others, "
    "listen on 0.0.0.0 behind a reverse proxy with TLS and sign-in (README: serving beyond "
    "localhost) and set --token."
)
POOL_SIZE_OPTION = typer.Option(
    help="Preheated kernels kept ready per dashboard: that many visitors within seconds get "
    "a page built in advance (about 250 MB each)."
)
REFILL_DELAY_OPTION = typer.Option(
    help="Seconds after a visit before a new kernel is preheated (it would otherwise "
    "compete with the page being loaded for the CPU)."
)
CULL_IDLE_TIMEOUT_OPTION = typer.Option(
    help="Shut down a kernel whose page is gone after N seconds."
)
CULL_INTERVAL_OPTION = typer.Option(help="Check for idle kernels every N seconds.")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
ALL_INTERFACES = ("0.0.0.0", "::")


def dashboard_command(
    name: Annotated[str | None, NAME_ARGUMENT] = None,
    port: Annotated[int | None, PORT_OPTION] = None,
    token: Annotated[str | None, TOKEN_OPTION] = None,
    store: Annotated[str | None, STORE_OPTION] = None,
    ledger: Annotated[str | None, LEDGER_OPTION] = None,
    push_url: Annotated[str | None, PUSH_URL_OPTION] = None,
    host: Annotated[str, HOST_OPTION] = "127.0.0.1",
    pool_size: Annotated[int, POOL_SIZE_OPTION] = 3,
    refill_delay: Annotated[float, REFILL_DELAY_OPTION] = 5.0,
    cull_idle_timeout: Annotated[int, CULL_IDLE_TIMEOUT_OPTION] = 300,
    cull_interval: Annotated[int, CULL_INTERVAL_OPTION] = 30,
) -> None:
    """Serve the dashboards with Voilà (read-only views of the store).

    Sources are stripped, tracebacks hidden, kernels preheated and idle kernels culled.
    Stop with Ctrl-C.
    """
    import dataclasses
    import os
    import socket
    import sys

    from titan_lib.dashboards.catalog import DEFAULT_PORT, dashboard_url, dashboards_dir
    from titan_lib.dashboards.live_feed import PUSH_URL_ENV
    from titan_lib.dashboards.plotly_bundle import check_installed
    from titan_lib.dashboards.serve import (
        ServeOptions,
        choose_port,
        voila_command,
        voila_environment,
    )
    from titan_lib.runner.execute import absolute_store_uri, check_kernel

    options = ServeOptions(
        folder=dashboards_dir(),
        store=absolute_store_uri(store),
        ledger=ledger,
        push_url=push_url or os.environ.get(PUSH_URL_ENV) or None,
        dashboard=name,
        port=port if port is not None else DEFAULT_PORT,
        host=host,
        token=token,
        pool_size=pool_size,
        refill_delay=refill_delay,
        cull_idle_timeout=cull_idle_timeout,
        cull_interval=cull_interval,
    )
    check_kernel("titan")
    check_installed()
    serving = choose_port(options.port, explicit=port is not None, host=host)
    if serving != options.port:
        typer.echo(f"port {options.port} is in use; serving on port {serving}")
        options = dataclasses.replace(options, port=serving)
    shown_host = socket.gethostname() if host in ALL_INTERFACES else host
    url = dashboard_url(dashboard=name or "index", host=shown_host, port=serving, token=token)
    typer.echo(f"store     {options.store}")
    typer.echo(f"dashboard {url}")
    if options.push_url is not None:
        typer.echo(f"push      {options.push_url}")
    typer.echo(f"serving on {host} (Ctrl-C to stop)")
    if host not in LOCAL_HOSTS and token is None:
        typer.echo(
            "warning: listening beyond this machine without --token: anyone who can reach "
            "this port can read the dashboards; put it behind a reverse proxy with sign-in "
            "(README: serving beyond localhost)",
            err=True,
        )
    sys.stdout.flush()
    command = voila_command(options)
    os.execve(command[0], command, voila_environment(options))


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command."""
    app.command("dashboard")(dashboard_command)
