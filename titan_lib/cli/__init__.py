"""The ``titan`` command line.

Start-up is lazy: each command module imports its heavy dependencies (polars, statsmodels,
vectorbt, papermill) inside the command function, so ``titan --help`` stays fast.
"""

from __future__ import annotations

import sys

import typer

from titan_lib.exceptions import TitanError

app = typer.Typer(
    name="titan",
    help="TITAN: pairs-trading research, notebooks, dashboards and signal services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from titan_lib.cli import (
        backtest,
        dashboard,
        data,
        lambdas,
        models,
        pairs,
        principals,
        runner,
        token,
        worker,
    )

    modules = (data, pairs, models, principals, backtest, runner, dashboard, token, lambdas, worker)
    for module in modules:
        module.register(app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; a :class:`TitanError` becomes ``error: ...`` and exit 1.

    Usage errors (unknown option, missing argument) are reported by typer with exit 2.
    """
    try:
        app(args=argv)
    except TitanError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
