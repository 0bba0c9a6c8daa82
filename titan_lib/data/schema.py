"""The stored price schema and the column names accepted on input."""

from __future__ import annotations

import polars as pl

PRICE_SCHEMA: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "symbol": pl.String(),
    "close": pl.Float64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "volume": pl.Float64(),
}
"""Columns of the price dataset. ``close`` is the adjusted close; the others may be null."""

PRICE_FIELDS = ("close", "open", "high", "low")
"""Price columns: strictly positive finite numbers when present."""

LONG_COLUMNS = frozenset(PRICE_SCHEMA)
"""Columns allowed in long-form input (case-insensitive)."""

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.\-_^=]{0,31}$"
"""A stored symbol: letters, digits and ``. - _ ^ =``, at most 32 characters."""


def symbol_date_key(symbols: pl.Series) -> pl.Expr:
    """An Int64 per row that orders rows by symbol, then date; ``symbols`` holds every
    symbol the rows may have (a row with another symbol is an error).

    Sorting and joining on it is much faster than on the text of the symbol and the date
    together. Rows without a symbol or a date get a null key.
    """
    names = pl.Enum(symbols.drop_nulls().unique().sort())
    code = pl.col("symbol").cast(names).to_physical().cast(pl.Int64)
    # days since 1970 fit in 32 bits, so each symbol's keys stay in a band of their own
    return (code * 2**32 + pl.col("date").to_physical().cast(pl.Int64)).alias("_key")


def with_sorted_key(frame: pl.DataFrame, symbols: pl.Series | None = None) -> pl.DataFrame:
    """``frame`` with its :func:`symbol_date_key` (over ``symbols``, by default its own) as
    column ``_key``, sorted by it. A frame in that order already is kept as it is, with the
    key marked sorted, so that joins on it merge instead of hashing."""
    keyed = frame.with_columns(
        symbol_date_key(frame.get_column("symbol") if symbols is None else symbols)
    )
    if keyed.get_column("_key").is_sorted():
        return keyed.with_columns(pl.col("_key").set_sorted())
    return keyed.sort("_key")


def in_stored_order(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` sorted by symbol, then date (the order of the price dataset)."""
    return with_sorted_key(frame).drop("_key")
