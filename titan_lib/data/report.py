"""A short text summary of the stored price universe."""

from __future__ import annotations

from typing import Any

import polars as pl

from titan_lib.config import store_option
from titan_lib.data.query import list_symbols, load_prices


def universe_summary(store: str | None = None, top: int = 5) -> str:
    """Coverage of the stored universe and each symbol's return over its last year.

    Returns
    -------
    str
        Symbol count, date range, total rows, and the ``top`` best and worst symbols by
        trailing 252-day return of the adjusted close.
    """
    table = list_symbols(store)
    if table.height == 0:
        return f"the store holds no prices; run `titan data ingest sample{store_option(store)}`"
    prices = load_prices(store=store)
    trailing = (
        prices.group_by("symbol")
        .agg(
            pl.col("close").tail(253).first().alias("c0"),
            pl.col("close").last().alias("c1"),
            pl.col("date").last().alias("last_date"),
        )
        .with_columns((pl.col("c1") / pl.col("c0") - 1.0).alias("ret"))
        .sort("ret", descending=True)
    )
    lines = [
        f"{table.height} symbols, {table.get_column('rows').sum()} rows, "
        f"{table.get_column('first_date').min()!s} to {table.get_column('last_date').max()!s}",
        "trailing 1-year return (adjusted close):",
    ]

    def line(rec: dict[str, Any]) -> str:
        return (
            f"  {rec['symbol']:<8} {rec['ret']:+8.1%}  last {rec['c1']:.2f} on {rec['last_date']!s}"
        )

    lines.extend(line(rec) for rec in trailing.head(top).iter_rows(named=True))
    if trailing.height > top:
        lines.append("  ...")
        bottom = trailing.tail(min(top, trailing.height - top))
        lines.extend(line(rec) for rec in bottom.iter_rows(named=True))
    return "\n".join(lines)
