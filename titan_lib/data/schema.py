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
