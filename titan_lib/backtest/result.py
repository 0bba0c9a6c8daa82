"""The result of a backtest: equity curve, per-leg positions, pair trades and statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from titan_lib.core.state_machine import REASONS

WINDOW_END = len(REASONS)
GIVEN = len(REASONS) + 1
EXIT_REASONS: tuple[str, ...] = (*REASONS, "window_end", "signal")
"""Reason names by code: the state machine's, then ``window_end`` (forced exit at the end
of a trading window) and ``signal`` (a change of a position series given by the caller)."""


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest of one or several pairs returns.

    Attributes
    ----------
    equity
        One row per bar: ``date``, ``equity`` (currency, after all costs), ``returns``
        (simple daily), ``drawdown`` (fraction below the running peak), ``borrow`` (fee
        charged at that close), ``gross_exposure`` (sum of ``|shares| close``).
    positions
        One row per bar and pair: ``date``, ``pair``, ``y``, ``x``, ``state`` (-1/0/+1
        held after the bar's fills), ``y_shares``, ``x_shares``, ``y_value``, ``x_value``.
    trades
        One row per pair trade: ``pair``, ``y``, ``x``, ``side`` (``long``/``short``
        spread), ``signal_date`` (the close that decided the entry), ``entry_date`` and
        ``exit_date`` (fill bars; null while open), ``y_shares``, ``x_shares``,
        ``y_entry_price``, ``x_entry_price``, ``y_exit_price``, ``x_exit_price`` (fill
        prices after slippage), ``pnl`` (currency, net of commission, slippage and borrow;
        an open trade is marked at the last close), ``holding_days`` (bars from entry fill
        to exit fill), ``exit_reason`` and ``status`` (``closed``/``open``).
    stats
        See :mod:`titan_lib.backtest.stats` for every definition.
    settings
        The convention, costs, sizing and engine the run used; single-pair runs add
        ``sample`` and ``hedge_fit`` (:func:`~titan_lib.backtest.pair.backtest_pair`).
    """

    equity: pl.DataFrame
    positions: pl.DataFrame
    trades: pl.DataFrame
    stats: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def sample(self) -> str:
        """``"out-of-sample"`` when the hedge was estimated before the first traded bar,
        ``"in-sample"`` otherwise (``settings["sample"]``; in-sample when unrecorded)."""
        return str(self.settings.get("sample", "in-sample"))

    @property
    def final_equity(self) -> float:
        """Equity at the last bar."""
        return float(self.equity.get_column("equity")[-1])


def equity_frame(
    dates: list[Any], equity: np.ndarray, borrow: np.ndarray, gross: np.ndarray
) -> pl.DataFrame:
    """Equity table of :class:`BacktestResult`."""
    returns = np.full(equity.shape[0], np.nan)
    returns[1:] = equity[1:] / equity[:-1] - 1.0
    peak = np.maximum.accumulate(equity)
    drawdown = np.where(peak > 0, 1.0 - equity / np.where(peak > 0, peak, 1.0), np.nan)
    return pl.DataFrame(
        {
            "date": pl.Series(dates, dtype=pl.Date),
            "equity": equity,
            "returns": returns,
            "drawdown": drawdown,
            "borrow": borrow,
            "gross_exposure": gross,
        }
    )


def positions_frame(
    dates: list[Any],
    labels: list[tuple[str, str]],
    held: np.ndarray,
    shares: np.ndarray,
    close: np.ndarray,
) -> pl.DataFrame:
    """Long positions table of :class:`BacktestResult` (one block of rows per pair)."""
    n = len(dates)
    blocks = []
    for i, (y, x) in enumerate(labels):
        blocks.append(
            pl.DataFrame(
                {
                    "date": pl.Series(dates, dtype=pl.Date),
                    "pair": [f"{y}/{x}"] * n,
                    "y": [y] * n,
                    "x": [x] * n,
                    "state": held[:, i].astype(np.int8),
                    "y_shares": shares[:, 2 * i],
                    "x_shares": shares[:, 2 * i + 1],
                    "y_value": shares[:, 2 * i] * close[:, 2 * i],
                    "x_value": shares[:, 2 * i + 1] * close[:, 2 * i + 1],
                }
            )
        )
    return pl.concat(blocks)


def held_states(shares: np.ndarray) -> np.ndarray:
    """Spread state held after each bar's fills, from the sign of the ``y`` leg."""
    return np.sign(shares[:, 0::2]).astype(np.int64)


def trades_frame(
    dates: list[Any],
    labels: list[tuple[str, str]],
    trade_pair: np.ndarray,
    trade_side: np.ndarray,
    trade_entry: np.ndarray,
    trade_exit: np.ndarray,
    trade_pnl: np.ndarray,
    shares: np.ndarray,
    fill: np.ndarray,
    slippage: float,
    reasons: np.ndarray,
) -> pl.DataFrame:
    """Trades table of :class:`BacktestResult` from the trade arrays of a run."""
    rows: dict[str, list[Any]] = {
        name: []
        for name in (
            "pair",
            "y",
            "x",
            "side",
            "signal_date",
            "entry_date",
            "exit_date",
            "y_shares",
            "x_shares",
            "y_entry_price",
            "x_entry_price",
            "y_exit_price",
            "x_exit_price",
            "pnl",
            "holding_days",
            "exit_reason",
            "status",
        )
    }
    for r in range(trade_pair.shape[0]):
        i = int(trade_pair[r])
        a = int(trade_entry[r])
        b = int(trade_exit[r])
        y, x = labels[i]
        qy = float(shares[a, 2 * i])
        qx = float(shares[a, 2 * i + 1])
        rows["pair"].append(f"{y}/{x}")
        rows["y"].append(y)
        rows["x"].append(x)
        rows["side"].append("long" if trade_side[r] > 0 else "short")
        rows["signal_date"].append(dates[a - 1])
        rows["entry_date"].append(dates[a])
        rows["y_shares"].append(qy)
        rows["x_shares"].append(qx)
        rows["y_entry_price"].append(_slipped(fill[a, 2 * i], qy, slippage))
        rows["x_entry_price"].append(_slipped(fill[a, 2 * i + 1], qx, slippage))
        rows["pnl"].append(float(trade_pnl[r]))
        if b >= 0:
            rows["exit_date"].append(dates[b])
            rows["y_exit_price"].append(_slipped(fill[b, 2 * i], -qy, slippage))
            rows["x_exit_price"].append(_slipped(fill[b, 2 * i + 1], -qx, slippage))
            rows["holding_days"].append(b - a)
            rows["exit_reason"].append(EXIT_REASONS[int(reasons[b - 1, i])])
            rows["status"].append("closed")
        else:
            rows["exit_date"].append(None)
            rows["y_exit_price"].append(None)
            rows["x_exit_price"].append(None)
            rows["holding_days"].append(len(dates) - 1 - a)
            rows["exit_reason"].append("open")
            rows["status"].append("open")
    schema = {
        "pair": pl.String,
        "y": pl.String,
        "x": pl.String,
        "side": pl.String,
        "signal_date": pl.Date,
        "entry_date": pl.Date,
        "exit_date": pl.Date,
        "y_shares": pl.Float64,
        "x_shares": pl.Float64,
        "y_entry_price": pl.Float64,
        "x_entry_price": pl.Float64,
        "y_exit_price": pl.Float64,
        "x_exit_price": pl.Float64,
        "pnl": pl.Float64,
        "holding_days": pl.Int64,
        "exit_reason": pl.String,
        "status": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def _slipped(price: float, traded: float, slippage: float) -> float | None:
    """Fill price after slippage for a trade of ``traded`` shares (None when no trade)."""
    if traded > 0:
        return float(price * (1.0 + slippage))
    if traded < 0:
        return float(price * (1.0 - slippage))
    return None
