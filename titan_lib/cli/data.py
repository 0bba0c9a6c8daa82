"""``titan data``: ingest price files and list what the store holds."""

from __future__ import annotations

from typing import Annotated

import typer

STORE_OPTION = typer.Option(
    "--store",
    "-s",
    help="Store URI: a folder or s3://bucket/prefix. Default: $TITAN_STORE or ./titan-data.",
)


def register(app: typer.Typer) -> None:
    """Add ``titan data ...``."""
    data_app = typer.Typer(
        help="Price data: ingest CSV/Parquet files, list stored symbols.", no_args_is_help=True
    )

    @data_app.command("ingest")
    def ingest_command(
        sources: Annotated[
            list[str],
            typer.Argument(
                help="CSV/Parquet files (paths or s3://bucket/key), or 'sample' (bundled data)."
            ),
        ],
        store: Annotated[str | None, STORE_OPTION] = None,
    ) -> None:
        """Validate files and add their prices to the store (atomic: all or nothing)."""
        from titan_lib.data import ingest

        report = ingest(sources, store=store)
        typer.echo(str(report))

    @data_app.command("symbols")
    def symbols_command(store: Annotated[str | None, STORE_OPTION] = None) -> None:
        """List stored symbols with first date, last date and row count."""
        from titan_lib.data import list_symbols

        table = list_symbols(store)
        if table.height == 0:
            typer.echo("the store holds no prices; run `titan data ingest sample`")
            return
        typer.echo(f"{'symbol':<10} {'first_date':<12} {'last_date':<12} {'rows':>8}")
        for rec in table.iter_rows(named=True):
            typer.echo(
                f"{rec['symbol']:<10} {rec['first_date']!s:<12} "
                f"{rec['last_date']!s:<12} {rec['rows']:>8}"
            )

    @data_app.command("summary")
    def summary_command(store: Annotated[str | None, STORE_OPTION] = None) -> None:
        """A short summary of the stored universe: coverage and the latest closes."""
        from titan_lib.data.report import universe_summary

        typer.echo(universe_summary(store))

    app.add_typer(data_app, name="data")
