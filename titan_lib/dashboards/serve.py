"""How ``titan dashboard`` starts Voilà: the command line and the environment.

The server listens on 127.0.0.1 only and serves the dashboards folder:

- sources stripped and tracebacks hidden (a failing cell shows no code or stack);
- the ``titan`` template: Voilà's lab template without its CDN stylesheets, so a page
  loads nothing from the internet; it loads the partial plotly.js bundle a notebook asks
  for (:mod:`titan_lib.dashboards.plotly_bundle`) instead of the ``jupyterlab-plotly``
  extension's full bundle;
- preheated kernels (``pool_size`` per dashboard, each has built its default page before
  a visitor arrives); when one dashboard is named, only that one is preheated; a used
  kernel is replaced ``refill_delay`` seconds after the visit, once the page has loaded;
- idle kernels culled: a kernel without a connected page for ``cull_idle_timeout``
  seconds is shut down, checked every ``cull_interval`` seconds (pooled kernels are kept).

Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from titan_lib.dashboards.catalog import DASHBOARDS, DEFAULT_HOST, DEFAULT_PORT, get_dashboard
from titan_lib.dashboards.plotly_bundle import bundle_files
from titan_lib.exceptions import ParameterError

TEMPLATE = "titan"
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"
"""A Jupyter data folder holding ``voila/templates/titan``; put on ``JUPYTER_PATH``."""
STORE_ENV = "TITAN_STORE"
LEDGER_ENV = "TITAN_LEDGER"
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
    dashboard
        Preheat only this dashboard; ``None`` preheats all of them.
    port
        TCP port on 127.0.0.1.
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
    dashboard: str | None = None
    port: int = DEFAULT_PORT
    token: str | None = None
    pool_size: int = 1
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


def voila_command(options: ServeOptions) -> list[str]:
    """The ``python -m voila`` command line for ``options``."""
    others = [d.notebook for d in DASHBOARDS.values() if options.dashboard not in (None, d.name)]
    command = [
        sys.executable,
        "-m",
        "voila",
        str(options.folder),
        "--no-browser",
        f"--Voila.ip={DEFAULT_HOST}",
        f"--port={options.port}",
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
        command.append(f"--token={options.token}")
    return command


def voila_environment(options: ServeOptions, base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``base`` (default ``os.environ``) plus the store, the
    ledger and the template folder on ``JUPYTER_PATH``."""
    env = dict(os.environ if base is None else base)
    env[STORE_ENV] = options.store
    if options.ledger is not None:
        env[LEDGER_ENV] = options.ledger
    paths = [str(JUPYTER_DATA), *filter(None, env.get("JUPYTER_PATH", "").split(os.pathsep))]
    env["JUPYTER_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
