"""The `titan` command line: lazy start-up and help."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port, imported_modules

from titan_lib.exceptions import ConflictError

HEAVY = ("vectorbt", "statsmodels", "papermill", "numba", "nbformat", "jsonschema", "polars")


def test_help_imports_nothing_heavy() -> None:
    names = imported_modules(
        "from titan_lib.cli import main\ntry:\n main(['--help'])\nexcept SystemExit:\n pass"
    )
    assert "titan_lib" in names
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_help_lists_commands() -> None:
    exe = Path(sys.executable).with_name("titan")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "data" in proc.stdout


def test_subcommand_help_is_lazy_too() -> None:
    names = imported_modules(
        "from titan_lib.cli import main\ntry:\n main(['data', '--help'])\nexcept SystemExit:\n pass"
    )
    assert not names & set(HEAVY)


def test_dashboard_port_busy_is_an_error_or_the_next_free_port() -> None:
    from titan_lib.dashboards.serve import ServeOptions, choose_port, voila_command

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConflictError, match=f"port {port} on 127.0.0.1 is in use"):
            choose_port(port, explicit=True)
        chosen = choose_port(port, explicit=False)
        assert chosen > port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", chosen))  # it really is free
        exe = Path(sys.executable).with_name("titan")
        proc = subprocess.run(
            [str(exe), "dashboard", "--port", str(port), "--store", "/tmp/titan-no-store"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: port {port} on 127.0.0.1 is in use")
    assert "Traceback" not in proc.stderr
    free = free_port()
    assert choose_port(free, explicit=True) == free
    # Voila itself never moves to another port: the URL printed is the URL served
    assert "--Voila.port_retries=0" in voila_command(ServeOptions(folder=Path("."), store="/s"))
