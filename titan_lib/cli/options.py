"""Options shared by several ``titan`` commands."""

from __future__ import annotations

import typer

STORE_OPTION = typer.Option(
    "--store",
    "-s",
    help="Store URI: a folder or s3://bucket/prefix. Default: $TITAN_STORE or ./titan-data.",
)
"""``--store/-s``: the object store a command reads and writes (``None``: the default store)."""
