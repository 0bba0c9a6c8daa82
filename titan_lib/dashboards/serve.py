"""How ``titan dashboard`` starts Voilà: the command line and the environment.

The server listens on 127.0.0.1 unless told otherwise (``--host``) and serves the
dashboards folder:

- sources stripped and tracebacks hidden (a failing cell shows no code or stack);
- the ``titan`` template: Voilà's lab template without its CDN stylesheets, so a page
  loads nothing from the internet; it loads the partial plotly.js bundle a notebook asks
  for (:mod:`titan_lib.dashboards.plotly_bundle`) instead of the ``jupyterlab-plotly``
  extension's full bundle;
- preheated kernels (``pool_size`` per dashboard, each has built its default page before
  a visitor arrives); when one dashboard is named, only that one is preheated; a used
  kernel is replaced ``refill_delay`` seconds after the visit, once the page has loaded;
- idle kernels culled: a kernel without a connected page for ``cull_idle_timeout``
  seconds is shut down, checked every ``cull_interval`` seconds (pooled kernels are kept);
- the port is chosen before Voilà starts (:func:`choose_port`) and Voilà never moves to
  another one by itself, so the URL printed is the URL served;
- an address that is no dashboard gets the template's page-not-found page with status 404
  (:mod:`titan_lib.dashboards.voila_app`).

Standard library only.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from titan_lib.dashboards.catalog import DASHBOARDS, DEFAULT_HOST, DEFAULT_PORT, get_dashboard
from titan_lib.dashboards.live_feed import PUSH_URL_ENV, check_push_url
from titan_lib.dashboards.plotly_bundle import bundle_files
from titan_lib.exceptions import ConflictError, ParameterError

TEMPLATE = "titan"
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"
"""A Jupyter data folder holding ``voila/templates/titan``; put on ``JUPYTER_PATH``."""
STORE_ENV = "TITAN_STORE"
LEDGER_ENV = "TITAN_LEDGER"
TEAM_POOL = 3
"""Default preheated kernels per dashboard: three people opening the same dashboard within
seconds each get a page built in advance (a fourth waits for a kernel to start, 5-9 s on
two cores). Each kernel holds about 250 MB while it waits."""
PORT_TRIES = 20
"""Ports tried after the default one is busy (8866, 8867, ...)."""
IDENTITY_PROVIDER = "titan_lib.dashboards.login.TitanIdentityProvider"
"""Sign-in with a TITAN page instead of Jupyter's (token-protected servers)."""
VOILA_APP = "titan_lib.dashboards.voila_app"
"""The module ``python -m`` runs: Voilà with TITAN's page-not-found routes."""
UNUSED_EXTENSIONS = ("anywidget", "jupyterlab-plotly", "jupyterlab_pygments")
"""Front-end extensions the dashboards never use: not loaded, so pages start faster (charts
are drawn by the template's partial plotly.js bundle)."""


@dataclass(frozen=True)
class ServeOptions:
    """Settings of one dashboard server.

    Attributes
    ----------
    folder
        The dashboards folder (``notebooks/dashboards``).
    store
        Absolute store URI the dashboards read (``TITAN_STORE`` in the kernels).
    ledger
        Order ledger URI for the live-signals dashboard; ``None`` uses the default
        (``ledger.sqlite`` in a local store).
    push_url
        WebSocket API the live-signals page subscribes to (``TITAN_PUSH_URL`` in the
        kernels; the token stays in ``TITAN_PUSH_TOKEN``); ``None``: no push.
    dashboard
        Preheat only this dashboard; ``None`` preheats all of them.
    port
        TCP port.
    host
        Address to listen on: ``127.0.0.1`` (this machine only, the default) or another
        interface, e.g. ``0.0.0.0`` behind a reverse proxy (README: serving beyond
        localhost).
    token
        Require ``?token=`` on every request; ``None`` serves without a token (the
        server is reachable from this machine only).
    pool_size
        Preheated kernels kept ready per dashboard.
    refill_delay
        Seconds after a visit takes a preheated kernel before a new one is started: a
        kernel starting up (imports, preheat) while the page loads would take one of a
        small machine's cores from the browser.
    cull_idle_timeout, cull_interval
        Seconds before an idle kernel (no page connected) is shut down, and between checks.
    """

    folder: Path
    store: str
    ledger: str | None = None
    push_url: str | None = None
    dashboard: str | None = None
    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    token: str | None = None
    pool_size: int = TEAM_POOL
    refill_delay: float = 5.0
    cull_idle_timeout: int = 300
    cull_interval: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ParameterError(f"--port must be in 1..65535, got {self.port}")
        if self.pool_size < 0:
            raise ParameterError(f"pool size must be >= 0, got {self.pool_size}")
        if self.refill_delay < 0:
            raise ParameterError(f"refill delay must be >= 0 seconds, got {self.refill_delay}")
        if self.cull_idle_timeout < 1 or self.cull_interval < 1:
            raise ParameterError(
                "cull_idle_timeout and cull_interval must be >= 1 second, got "
                f"{self.cull_idle_timeout} and {self.cull_interval}"
            )
        if self.token is not None and not self.token.strip():
            raise ParameterError("--token must not be empty")
        if self.dashboard is not None:
            get_dashboard(self.dashboard)
        if self.push_url is not None:
            check_push_url(self.push_url)


def port_is_free(port: int, host: str = DEFAULT_HOST) -> bool:
    """Whether ``host:port`` can be listened on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def choose_port(port: int, *, explicit: bool, host: str = DEFAULT_HOST) -> int:
    """The port to serve on: ``port`` when free; when it is busy, an error if the user
    asked for it (``explicit``), else the next free one of the following
    :data:`PORT_TRIES` ports.

    Raises
    ------
    ConflictError
        The port (or every port tried) is in use; the message says what to do.
    """
    if port_is_free(port, host):
        return port
    if explicit:
        raise ConflictError(
            f"port {port} on {host} is in use (another titan dashboard?); stop that server "
            "or choose another port with --port",
            {"port": port},
        )
    for candidate in range(port + 1, min(port + 1 + PORT_TRIES, 65536)):
        if port_is_free(candidate, host):
            return candidate
    raise ConflictError(
        f"ports {port}..{port + PORT_TRIES} on {host} are all in use; choose a port with --port",
        {"port": port},
    )


def voila_command(options: ServeOptions) -> list[str]:
    """The command line running Voilà (:data:`VOILA_APP`) for ``options``."""
    others = [d.notebook for d in DASHBOARDS.values() if options.dashboard not in (None, d.name)]
    command = [
        sys.executable,
        "-m",
        VOILA_APP,
        str(options.folder),
        "--no-browser",
        f"--Voila.ip={options.host}",
        f"--port={options.port}",
        "--Voila.port_retries=0",
        f"--template={TEMPLATE}",
        "--strip_sources=True",
        "--show_tracebacks=False",
        "--preheat_kernel=True",
        f"--pool_size={options.pool_size}",
        f"--VoilaKernelManager.fill_delay={options.refill_delay}",
        *(f"--VoilaKernelManager.preheat_denylist={name}" for name in others),
        *(f"--VoilaConfiguration.extension_denylist={name}" for name in UNUSED_EXTENSIONS),
        f"--VoilaConfiguration.resources={json.dumps({'titan_plotly': bundle_files()})}",
        f"--MappingKernelManager.cull_idle_timeout={options.cull_idle_timeout}",
        f"--MappingKernelManager.cull_interval={options.cull_interval}",
        "--MappingKernelManager.cull_connected=False",
    ]
    if options.token is not None:
        command += [
            f"--token={options.token}",
            f"--Voila.identity_provider_class={IDENTITY_PROVIDER}",
        ]
    return command


def voila_environment(options: ServeOptions, base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``base`` (default ``os.environ``) plus the store, the
    ledger and the template folder on ``JUPYTER_PATH``."""
    env = dict(os.environ if base is None else base)
    env[STORE_ENV] = options.store
    if options.ledger is not None:
        env[LEDGER_ENV] = options.ledger
    if options.push_url is not None:
        env[PUSH_URL_ENV] = options.push_url
    paths = [str(JUPYTER_DATA), *filter(None, env.get("JUPYTER_PATH", "").split(os.pathsep))]
    env["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
