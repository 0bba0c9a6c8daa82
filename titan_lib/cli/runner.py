"""`titan` commands of this area (filled in by the owning module)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `titan` app."""
