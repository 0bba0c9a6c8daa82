"""The `titan` command line: lazy start-up and help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import imported_modules

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
