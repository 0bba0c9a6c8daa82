"""Reading prices back: from a store, or from the bundled sample without a store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import polars as pl

from titan_lib.data.price_store import coerce_date, load_from_store, manifest_summary, read_manifest
from titan_lib.data.schema import PRICE_SCHEMA
from titan_lib.data.sources import SAMPLE_DIR, SAMPLE_FILES
from titan_lib.exceptions import NotFoundError
from titan_lib.stores.objects import open_store

DateLike = date | datetime | str | None


def load_prices(
    symbols: Sequence[str] | str | None = None,
    start: DateLike = None,
    end: DateLike = None,
    store: str | None = None,
) -> pl.DataFrame:
    """Load stored prices as a long frame.

    Parameters
    ----------
    symbols
        Symbols to load (a name or a sequence); all stored symbols when ``None``.
    start, end
        Inclusive date bounds (date, datetime or ``YYYY-MM-DD``); open when ``None``.
    store
        Store URI; ``$TITAN_STORE`` or ``./titan-data`` when omitted.

    Returns
    -------
    polars.DataFrame
        Columns ``date`` (Date), ``symbol`` (String), ``close`` (Float64, adjusted close),
        ``open``, ``high``, ``low``, ``volume`` (Float64, null where not given), sorted by
        symbol then date.

    Raises
    ------
    NotFoundError
        A symbol is not in the store (the message names it), or the store is empty.
    """
    wanted = [symbols] if isinstance(symbols, str) else symbols
    return load_from_store(
        open_store(store), wanted, coerce_date(start, "start"), coerce_date(end, "end")
    )


def list_symbols(store: str | None = None) -> pl.DataFrame:
    """Stored symbols with ``first_date``, ``last_date`` and ``rows``, sorted by symbol."""
    return manifest_summary(read_manifest(open_store(store)))


def sample_prices(symbols: Sequence[str] | None = None) -> pl.DataFrame:
    """The bundled real sample as a long frame, without touching any store.

    Daily adjusted closes of 20 US stocks (AAPL AMD BAC BBY CVX GE HD JNJ JPM KO LLY MRK
    MSFT PEP PFE PG RRC UNH WMT XOM) and the S&P 500 index level (symbol ``SP500``),
    1990-01-02 to 2022-12-28. Source and licence: ``titan_lib/data/sample/NOTICE.md``.
    """
    frame = pl.concat([pl.read_parquet(SAMPLE_DIR / name) for name in SAMPLE_FILES])
    frame = frame.select(
        [
            pl.col(n).cast(t) if n in frame.columns else pl.lit(None, t).alias(n)
            for n, t in PRICE_SCHEMA.items()
        ]
    )
    if symbols is not None:
        unknown = sorted(set(symbols) - set(frame.get_column("symbol").unique().to_list()))
        if unknown:
            raise NotFoundError(
                f"symbols not in the bundled sample: {', '.join(unknown)}", {"symbols": unknown}
            )
        frame = frame.filter(pl.col("symbol").is_in(list(symbols)))
    return frame.sort("symbol", "date")


def wide_closes(prices: pl.DataFrame) -> pl.DataFrame:
    """Pivot a long price frame to wide closes: ``date`` plus one column per symbol.

    Dates missing for a symbol are null; rows are sorted by date; symbol columns keep the
    order of first appearance in ``prices`` (sorted input gives sorted columns).
    """
    return prices.pivot(on="symbol", index="date", values="close").sort("date")
