"""Aligned leg prices: the dates where every leg has a close, as numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import polars as pl

from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError

FillPrice = Literal["auto", "close", "open"]


@dataclass(frozen=True)
class LegPrices:
    """Prices of the legs on common dates.

    ``close`` and ``fill`` are ``(n, m)`` arrays with one column per leg in the order
    asked for; ``fill`` is the price orders fill at (the close, or the open).
    """

    dates: list[date]
    symbols: tuple[str, ...]
    close: np.ndarray
    fill: np.ndarray
    fill_price: Literal["close", "open"]

    @property
    def n(self) -> int:
        """Number of bars."""
        return len(self.dates)

    def between(self, start: date | None, end: date | None) -> LegPrices:
        """The bars with ``start <= date <= end`` (open bounds when ``None``)."""
        lo = 0 if start is None else int(np.searchsorted(self.date_array(), np.datetime64(start)))
        hi = (
            self.n
            if end is None
            else int(np.searchsorted(self.date_array(), np.datetime64(end), side="right"))
        )
        return LegPrices(
            self.dates[lo:hi],
            self.symbols,
            self.close[lo:hi],
            self.fill[lo:hi],
            self.fill_price,
        )

    def date_array(self) -> np.ndarray:
        """The dates as ``datetime64[D]``."""
        return np.array(self.dates, dtype="datetime64[D]")


def align_legs(prices: pl.DataFrame, symbols: Sequence[str], fill: FillPrice = "auto") -> LegPrices:
    """Align the closes (and opens) of ``symbols`` on the dates where all have a close.

    Parameters
    ----------
    prices
        Long frame with ``date``, ``symbol``, ``close`` and optionally ``open`` (the
        :func:`titan_lib.data.load_prices` layout).
    symbols
        Leg symbols, in column order; a symbol may repeat.
    fill
        ``"close"``: fill at the close; ``"open"``: at the open (every leg needs an open on
        every date); ``"auto"``: the open when every leg has one on every common date, else
        the close.

    Raises
    ------
    NotFoundError
        A symbol is not in ``prices``.
    DataValidationError
        Missing columns, non-positive or non-finite prices, or fewer than 3 common dates.
    """
    if fill not in ("auto", "close", "open"):
        raise ParameterError(
            f"fill must be 'auto', 'close' or 'open', got {fill!r}", {"parameter": "fill"}
        )
    missing_cols = {"date", "symbol", "close"} - set(prices.columns)
    if missing_cols:
        raise DataValidationError(
            f"prices need columns date, symbol, close; missing {', '.join(sorted(missing_cols))}"
        )
    unique = list(dict.fromkeys(symbols))
    frame = prices.filter(pl.col("symbol").is_in(unique))
    present = set(frame.get_column("symbol").unique().to_list())
    unknown = [s for s in unique if s not in present]
    if unknown:
        raise NotFoundError(
            f"symbols not in the prices: {', '.join(unknown)}", {"symbols": unknown}
        )
    has_open = "open" in frame.columns
    value_cols = ["close", "open"] if has_open else ["close"]
    frame = frame.filter(pl.col("close").is_not_null())
    wide = (
        frame.pivot(on="symbol", index="date", values=value_cols, aggregate_function="last")
        .drop_nulls([_col("close", s, has_open) for s in unique])
        .sort("date")
    )
    if wide.height < 3:
        raise DataValidationError(
            f"{', '.join(unique)} share {wide.height} dates with a close; need at least 3",
            {"symbols": unique},
        )
    close = np.column_stack(
        [wide.get_column(_col("close", s, has_open)).to_numpy().astype(np.float64) for s in symbols]
    )
    _check_positive(close, "close", symbols)
    use_open = False
    if has_open and fill != "close":
        opens = np.column_stack(
            [wide.get_column(_col("open", s, True)).to_numpy().astype(np.float64) for s in symbols]
        )
        complete = bool(np.all(np.isfinite(opens)))
        if fill == "open" and not complete:
            raise DataValidationError(
                "fill='open' needs an open price for every leg on every date",
                {"symbols": list(unique)},
            )
        use_open = complete
    elif fill == "open":
        raise DataValidationError("fill='open' needs an open column in prices")
    fill_prices = opens if use_open else close
    if use_open:
        _check_positive(fill_prices, "open", symbols)
    dates = wide.get_column("date").to_list()
    return LegPrices(dates, tuple(symbols), close, fill_prices, "open" if use_open else "close")


def _col(field: str, symbol: str, multi: bool) -> str:
    """Column name polars gives a pivoted value (prefixed when several values)."""
    return f"{field}_{symbol}" if multi else symbol


def _check_positive(values: np.ndarray, field: str, symbols: Sequence[str]) -> None:
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        col = int(np.argwhere(bad)[0][1])
        raise DataValidationError(
            f"{field} prices of {symbols[col]} must be finite and > 0",
            {"symbol": symbols[col], "field": field},
        )
