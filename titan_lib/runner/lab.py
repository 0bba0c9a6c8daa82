"""JupyterLab on the project's notebooks with the ``titan`` kernel as the default.

Kernels started from JupyterLab inherit the server's environment: ``TITAN_STORE`` holds
the absolute store URI (``--store``, else ``$TITAN_STORE``, else ``./titan-data`` where
``titan lab`` was started), so a notebook run by hand in ``notebooks/`` reads the same
store as ``titan run`` and ``make demo``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from titan_lib.config import DEFAULT_STORE
from titan_lib.runner.execute import absolute_store_uri, check_kernel
from titan_lib.runner.parameter_files import NOTEBOOKS_DIR

LAB_KERNEL = "titan"


def lab_command(
    root: Path | None = None,
    *,
    ip: str = "127.0.0.1",
    port: int = 8888,
    open_browser: bool = True,
    token: str | None = None,
) -> list[str]:
    """The ``jupyter lab`` command line for ``<root>/notebooks``.

    Checks that the ``titan`` kernel is installed first (raises
    :class:`~titan_lib.exceptions.NotFoundError` with the install command if not).
    ``token=None`` keeps JupyterLab's own generated token.
    """
    check_kernel(LAB_KERNEL)
    folder = (root or Path.cwd()) / NOTEBOOKS_DIR
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={folder.resolve()}",
        f"--ServerApp.ip={ip}",
        f"--ServerApp.port={port}",
        f"--MappingKernelManager.default_kernel_name={LAB_KERNEL}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers often run as root
    if not open_browser:
        command.append("--no-browser")
    if token is not None:
        command.append(f"--IdentityProvider.token={token}")
    return command


def lab_environment(
    store: str | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """JupyterLab's environment: ``base`` (default ``os.environ``) with ``TITAN_STORE``
    set to the absolute store URI, which every kernel inherits."""
    env = dict(os.environ if base is None else base)
    env["TITAN_STORE"] = absolute_store_uri(store or env.get("TITAN_STORE") or DEFAULT_STORE)
    return env
