"""Prices as a dense matrix for the pair engine: dates x symbols, NaN where missing.

Research code passes polars frames around; the compiled kernels want one float64 matrix.
:func:`price_panel` is that boundary: it accepts the long frame of
:func:`titan_lib.data.load_prices` (``date, symbol, close``) or a wide frame (``date`` plus
one column per symbol), validates it, and optionally takes logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from titan_lib.exceptions import DataValidationError, NotFoundError

PriceTransform = Literal["log", "level"]


@dataclass(frozen=True)
class PricePanel:
    """Aligned prices: ``values[t, i]`` is symbol ``i`` on ``dates[t]`` (NaN if missing).

    ``values`` is float64, C-ordered, already transformed (``transform`` says how).
    """

    dates: NDArray[np.datetime64]
    symbols: tuple[str, ...]
    values: NDArray[np.float64]
    transform: PriceTransform

    def column(self, symbol: str) -> NDArray[np.float64]:
        """The series of one symbol (a view; NaN where missing)."""
        return self.values[:, self.index(symbol)]

    def index(self, symbol: str) -> int:
        """Column index of ``symbol``; :class:`NotFoundError` if absent."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise NotFoundError(
                f"symbol {symbol!r} is not in the price panel", {"symbol": symbol}
            ) from None

    def date_of(self, row: int) -> date:
        """The calendar date of row ``row``."""
        return date.fromisoformat(str(self.dates[row])[:10])


def _long_matrix(prices: pl.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Scatter a long frame into (sorted dates, sorted symbols, dates x symbols matrix)."""
    symbols = prices.get_column("symbol").cast(pl.String)
    runs = symbols.is_sorted()  # as the store returns them: one run per symbol, by name
    if runs:
        col = symbols.rle_id().cast(pl.Int64).to_numpy()
        first_row_of = np.flatnonzero(np.diff(col, prepend=-1))
    else:
        col = symbols.rank("dense").cast(pl.Int64).to_numpy() - 1
    n_symbols = int(col.max()) + 1 if col.size else 0
    if not runs:
        first_row_of = np.zeros(n_symbols, dtype=np.int64)
        first_row_of[col] = np.arange(col.shape[0])
    names = symbols.gather(first_row_of).to_list()
    days = prices.get_column("date").cast(pl.Date).to_physical().cast(pl.Int64).to_numpy()
    if days.size:  # calendar days -> row numbers through a lookup table, O(rows)
        first_day = int(days.min())
        present = np.zeros(int(days.max()) - first_day + 1, dtype=bool)
        present[days - first_day] = True
        calendar = np.flatnonzero(present)
        lookup = np.cumsum(present) - 1
        row = lookup[days - first_day]
    else:
        first_day, calendar, row = 0, np.empty(0, np.int64), np.empty(0, np.int64)
    n_dates = calendar.shape[0]
    day_values = (calendar + first_day).astype("datetime64[D]")
    flat = row * n_symbols + col
    # each symbol's dates strictly increasing within its run: no duplicate, no count needed
    increasing = runs and bool(np.all((np.diff(row) > 0) | (np.diff(col) != 0)))
    counts = None if increasing else np.bincount(flat, minlength=n_dates * n_symbols)
    if counts is not None and (counts > 1).any():
        first = int(np.flatnonzero(counts > 1)[0])
        day = str(day_values[first // n_symbols])
        raise DataValidationError(
            f"prices have {int((counts > 1).sum())} duplicated (symbol, date) rows, first: "
            f"{names[first % n_symbols]} on {day}",
            {"symbol": names[first % n_symbols], "date": day},
        )
    values = np.full(n_dates * n_symbols, np.nan)
    values[flat] = prices.get_column("close").cast(pl.Float64).fill_null(np.nan).to_numpy()
    return day_values, names, values.reshape(n_dates, n_symbols)


def _wide_matrix(prices: pl.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    if prices.get_column("date").is_duplicated().any():
        raise DataValidationError("wide prices have duplicated dates", {})
    wide = prices.sort("date")
    names = [c for c in wide.columns if c != "date"]
    values = wide.select([pl.col(c).cast(pl.Float64) for c in names]).to_numpy()
    dates = wide.get_column("date").cast(pl.Date).to_numpy().astype("datetime64[D]")
    return dates, names, values


def price_panel(
    prices: pl.DataFrame,
    symbols: Sequence[str] | None = None,
    transform: PriceTransform = "level",
) -> PricePanel:
    """Build a :class:`PricePanel` from a long or wide polars frame.

    Parameters
    ----------
    prices
        Long frame (``date``, ``symbol``, ``close``) or wide frame (``date`` + symbols).
    symbols
        Keep these symbols, in this order; all (sorted by name) when ``None``.
    transform
        ``"level"`` keeps prices as given; ``"log"`` takes natural logs (prices must be > 0).

    Raises
    ------
    NotFoundError
        A requested symbol has no prices (the message names it).
    DataValidationError
        Missing ``date`` column, duplicated rows, infinite prices, or a non-positive price
        under ``transform="log"`` (symbol and date named).
    """
    if transform not in ("log", "level"):
        raise DataValidationError(
            f"price_transform must be 'log' or 'level', got {transform!r}", {}
        )
    if "date" not in prices.columns:
        raise DataValidationError(
            "prices need a 'date' column (long: date, symbol, close; or wide: date + symbols)",
            {"columns": prices.columns},
        )
    long = {"symbol", "close"} <= set(prices.columns)
    dates, available, matrix = _long_matrix(prices) if long else _wide_matrix(prices)
    if symbols is None:
        chosen = sorted(available)
    else:
        chosen = list(dict.fromkeys(symbols))
        missing = [s for s in chosen if s not in available]
        if missing:
            raise NotFoundError(
                f"no prices for symbol(s) {', '.join(missing)}", {"symbols": missing}
            )
    if not chosen:
        raise DataValidationError("prices hold no symbols", {})
    if chosen == list(available):
        values = np.ascontiguousarray(matrix, dtype=np.float64)
    else:
        position = {s: i for i, s in enumerate(available)}
        values = np.ascontiguousarray(matrix[:, [position[s] for s in chosen]], dtype=np.float64)
    keep = ~np.isnan(values).all(axis=1)
    dates, values = dates[keep], np.ascontiguousarray(values[keep])
    bad = np.isinf(values) | (values <= 0.0) if transform == "log" else np.isinf(values)
    if bad.any():
        t, i = (int(v[0]) for v in np.nonzero(bad))
        what = "a non-positive price (log transform)" if transform == "log" else "an infinite price"
        raise DataValidationError(
            f"{chosen[i]} has {what} on {str(dates[t])[:10]}: {values[t, i]}",
            {"symbol": chosen[i], "date": str(dates[t])[:10]},
        )
    if transform == "log":
        values = np.log(values)
    return PricePanel(dates=dates, symbols=tuple(chosen), values=values, transform=transform)
