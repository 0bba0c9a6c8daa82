"""Return series for regime models: log returns of a price series, checked for use."""

from __future__ import annotations

import polars as pl

from titan_lib.exceptions import DataValidationError, NotFoundError


def log_returns(prices: pl.DataFrame, symbol: str) -> pl.DataFrame:
    """Daily log returns ``ln(P_t / P_{t-1})`` of one symbol.

    Parameters
    ----------
    prices
        Long prices (``date, symbol, close``, as from :func:`titan_lib.data.load_prices`) or
        wide closes (``date`` plus one column per symbol).
    symbol
        The series, e.g. ``"SP500"`` (the index in the bundled sample).

    Returns
    -------
    pl.DataFrame
        ``date`` and ``return`` (one row per date after the first), sorted by date.
    """
    if "symbol" in prices.columns:
        series = prices.filter(pl.col("symbol") == symbol).select("date", pl.col("close"))
        if series.height == 0:
            raise NotFoundError(f"no prices for symbol {symbol!r}", {"symbol": symbol})
    else:
        if symbol not in prices.columns:
            raise NotFoundError(f"no price column {symbol!r}", {"symbol": symbol})
        series = prices.select("date", pl.col(symbol).alias("close"))
    series = series.drop_nulls().sort("date")
    return series.select(
        "date", (pl.col("close") / pl.col("close").shift(1)).log().alias("return")
    ).slice(1)


def return_values(returns: pl.DataFrame, column: str | None = None) -> tuple[pl.Series, str]:
    """The dates and the checked float values of a ``(date, value)`` return frame.

    The value column is ``column`` or the only column besides ``date``. Nulls, NaN and
    infinities are rejected with the first offending date.
    """
    if "date" not in returns.columns:
        raise DataValidationError("returns need a 'date' column", {"columns": returns.columns})
    others = [c for c in returns.columns if c != "date"]
    if column is None:
        if len(others) != 1:
            raise DataValidationError(
                f"returns have columns {others}; name the one to use with column=",
                {"columns": others},
            )
        column = others[0]
    if column not in others:
        raise DataValidationError(f"returns have no column {column!r}", {"columns": others})
    values = returns.get_column(column).cast(pl.Float64)
    bad = values.is_null() | ~values.is_finite()
    if bad.any():
        first = returns.get_column("date").filter(bad)[0]
        raise DataValidationError(
            f"returns column {column!r} has a missing or non-finite value on {first}",
            {"column": column, "date": str(first)},
        )
    if returns.height > 1 and not returns.get_column("date").is_sorted(descending=False):
        raise DataValidationError("returns must be sorted by date", {"column": column})
    if values.len() < 2:
        raise DataValidationError(f"returns column {column!r} has fewer than 2 values")
    return values, column
