"""``titan data``: ingest price files or fetch bars from a provider; list what the store
holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from titan_lib.cli.options import STORE_OPTION

data_app = typer.Typer(
    help="Price data: ingest CSV/Parquet files or fetch from a provider, list stored symbols.",
    no_args_is_help=True,
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


@data_app.command("fetch")
def fetch_command(
    symbols: Annotated[
        list[str],
        typer.Argument(help="Tickers, separated by spaces or commas, e.g. KO PEP."),
    ],
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First session, YYYY-MM-DD.")
    ],
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last session, YYYY-MM-DD. Default: latest."),
    ] = None,
    provider: Annotated[
        str,
        typer.Option(
            help="Price provider: alpaca (keys in TITAN_ALPACA_KEY_ID and "
            "TITAN_ALPACA_SECRET_KEY, or their _SSM names), or an installed plug-in."
        ),
    ] = "alpaca",
    retries: Annotated[
        int, typer.Option(help="Tries per request on timeouts, 5xx and rate limits.")
    ] = 5,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per request.")] = 30.0,
    store: Annotated[str | None, STORE_OPTION] = None,
) -> None:
    """Fetch adjusted daily bars from a provider and ingest them (atomic: all or nothing).

    The bars go through the same validation and commit as `titan data ingest`.
    """
    from titan_lib.data.providers import RetryPolicy, fetch_prices

    wanted = [part for item in symbols for part in item.split(",") if part.strip()]
    report = fetch_prices(
        wanted,
        start=start.date(),
        end=end.date() if end is not None else None,
        provider=provider,
        store=store,
        retry=RetryPolicy(attempts=retries, timeout_s=timeout),
    )
    typer.echo(str(report))


@data_app.command("symbols")
def symbols_command(store: Annotated[str | None, STORE_OPTION] = None) -> None:
    """List stored symbols with first date, last date and row count."""
    from titan_lib.data import list_symbols

    table = list_symbols(store)
    if table.height == 0:
        from titan_lib.config import store_option

        typer.echo(
            f"the store holds no prices; run `titan data ingest sample{store_option(store)}`"
        )
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


def register(app: typer.Typer) -> None:
    """Add ``titan data ...``."""
    app.add_typer(data_app, name="data")
