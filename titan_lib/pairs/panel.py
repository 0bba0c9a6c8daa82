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


def _wide(prices: pl.DataFrame) -> pl.DataFrame:
    if "date" not in prices.columns:
        raise DataValidationError(
            "prices need a 'date' column (long: date, symbol, close; or wide: date + symbols)",
            {"columns": prices.columns},
        )
    if {"symbol", "close"} <= set(prices.columns):
        dupes = prices.group_by("symbol", "date").len().filter(pl.col("len") > 1)
        if dupes.height:
            row = dupes.sort("symbol", "date").row(0, named=True)
            raise DataValidationError(
                f"prices have {dupes.height} duplicated (symbol, date) rows, first: "
                f"{row['symbol']} on {row['date']}",
                {"symbol": row["symbol"], "date": str(row["date"])},
            )
        from titan_lib.data import wide_closes

        return wide_closes(prices.select("date", "symbol", "close"))
    if prices.get_column("date").is_duplicated().any():
        raise DataValidationError("wide prices have duplicated dates", {})
    return prices.sort("date")


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
    wide = _wide(prices)
    available = [c for c in wide.columns if c != "date"]
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
    dates = wide.get_column("date").cast(pl.Date).to_numpy().astype("datetime64[D]")
    values = np.ascontiguousarray(
        wide.select([pl.col(s).cast(pl.Float64) for s in chosen]).to_numpy(), dtype=np.float64
    )
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
