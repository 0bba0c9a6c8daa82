"""JupyterLab on the project's notebooks with the ``titan`` kernel as the default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from titan_lib.runner.execute import check_kernel
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
