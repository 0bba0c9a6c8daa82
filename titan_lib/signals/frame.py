"""Aligned pair prices and the spread, in polars."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from titan_lib.core.signal_model import PriceTransform
from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError


def pair_prices(prices: pl.DataFrame, symbols: Sequence[str]) -> pl.DataFrame:
    """Closes of ``symbols`` on the dates where every one of them has a close.

    Parameters
    ----------
    prices
        Long prices (``date, symbol, close``, as from :func:`titan_lib.data.load_prices`) or
        wide closes (``date`` plus one column per symbol).
    symbols
        The legs, and optionally a market series.

    Returns
    -------
    pl.DataFrame
        ``date`` and one Float64 column per symbol, sorted by date, no nulls.
    """
    if "date" not in prices.columns:
        raise DataValidationError("prices need a 'date' column", {"columns": prices.columns})
    wanted = list(dict.fromkeys(symbols))
    if "symbol" in prices.columns:
        present = set(prices.get_column("symbol").unique().to_list())
        missing = [s for s in wanted if s not in present]
        if missing:
            raise NotFoundError(f"no prices for {', '.join(missing)}", {"symbols": missing})
        wide = (
            prices.filter(pl.col("symbol").is_in(wanted))
            .pivot(on="symbol", index="date", values="close")
            .select("date", *wanted)
        )
    else:
        missing = [s for s in wanted if s not in prices.columns]
        if missing:
            raise NotFoundError(f"no price column for {', '.join(missing)}", {"symbols": missing})
        wide = prices.select("date", *wanted)
    wide = wide.with_columns(pl.col(wanted).cast(pl.Float64)).drop_nulls().sort("date")
    if wide.height == 0:
        raise DataValidationError(
            f"prices of {', '.join(wanted)} share no date", {"symbols": wanted}
        )
    if wide.get_column("date").is_duplicated().any():
        raise DataValidationError("prices have a repeated date", {"symbols": wanted})
    for s in wanted:
        col = wide.get_column(s)
        bad = ~(col.is_finite() & (col > 0.0))
        if bad.any():
            first = wide.get_column("date").filter(bad)[0]
            raise DataValidationError(
                f"close of {s!r} on {first} must be positive and finite",
                {"symbol": s, "date": str(first)},
            )
    return wide


def spread_expr(
    y: str, x: str, beta: float, alpha: float = 0.0, transform: PriceTransform = "log"
) -> pl.Expr:
    """``f(y) - beta f(x) - alpha`` as a polars expression named ``spread``.

    ``f`` is ``ln`` for ``transform="log"`` and the identity for ``"level"``.
    """
    if transform == "log":
        return (pl.col(y).log() - beta * pl.col(x).log() - alpha).alias("spread")
    if transform == "level":
        return (pl.col(y) - beta * pl.col(x) - alpha).alias("spread")
    raise ParameterError(f"transform must be 'log' or 'level', got {transform!r}")
