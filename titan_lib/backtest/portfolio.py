"""The vectorbt boundary: one grouped, cash-sharing portfolio of all legs.

vectorbt is imported inside :func:`run_vectorbt` only: importing it costs seconds, and the
sweep path never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from titan_lib.backtest.costs import Costs
from titan_lib.backtest.legs import LegPrices
from titan_lib.compile_once import compiling_once
from titan_lib.exceptions import RunFailedError


@dataclass(frozen=True)
class VectorbtRun:
    """What the backtest takes from vectorbt.

    ``value`` is the group value (cash + holdings at the close, before borrow fees, which
    vectorbt does not model); ``shares`` the holdings per leg after each bar. Leg trades
    are vectorbt's exit trades (``col``, ``entry_idx``, ``exit_idx``, ``pnl`` net of
    commission, ``is_open``).
    """

    value: np.ndarray
    cash: np.ndarray
    shares: np.ndarray
    fees: float
    trade_col: np.ndarray
    trade_entry: np.ndarray
    trade_exit: np.ndarray
    trade_pnl: np.ndarray
    trade_open: np.ndarray


def run_vectorbt(
    legs: LegPrices, orders: np.ndarray, costs: Costs, init_cash: float
) -> VectorbtRun:
    """Simulate target-share orders of all legs in one vectorbt group with shared cash.

    Parameters
    ----------
    legs
        Aligned prices; orders fill at ``legs.fill`` and are valued at ``legs.close``.
    orders
        ``(n, m)`` target shares per leg at the bars they fill, NaN where no order.
    costs
        Commission (``fees``, ``fixed_fees``) and slippage go to vectorbt; the borrow fee
        is accounted for by the caller.
    init_cash
        Starting cash of the group.

    Raises
    ------
    RunFailedError
        vectorbt did not fill an order in full (not enough cash for the long leg).
    """
    with compiling_once("vectorbt-portfolio"):  # about 20 s of numba on an empty cache
        return _simulate(legs, orders, costs, init_cash)


def _simulate(legs: LegPrices, orders: np.ndarray, costs: Costs, init_cash: float) -> VectorbtRun:
    import pandas as pd
    import vectorbt as vbt

    index = pd.DatetimeIndex(legs.date_array().astype("datetime64[ns]"))
    columns = [f"{j}:{symbol}" for j, symbol in enumerate(legs.symbols)]
    close = pd.DataFrame(legs.close, index=index, columns=columns)
    portfolio = vbt.Portfolio.from_orders(
        close,
        size=pd.DataFrame(orders, index=index, columns=columns),
        size_type="targetamount",
        direction="both",
        price=pd.DataFrame(legs.fill, index=index, columns=columns),
        fees=costs.commission_rate,
        fixed_fees=costs.commission_fixed,
        slippage=costs.slippage_rate,
        init_cash=init_cash,
        cash_sharing=True,
        group_by=np.zeros(len(columns), dtype=np.int64),
        call_seq="auto",
        freq="1D",
    )
    shares = np.asarray(portfolio.assets(), dtype=np.float64).reshape(len(index), -1)
    target = pd.DataFrame(orders).ffill().fillna(0.0).to_numpy()
    scale = max(1.0, float(np.max(np.abs(target))))
    gap = np.abs(shares - target) > 1e-9 * scale
    if gap.any():
        row, col = (int(v) for v in np.argwhere(gap)[0])
        raise RunFailedError(
            f"an order for {legs.symbols[col]} on {legs.dates[row]} was not filled in full "
            "(not enough cash for the long leg); lower the size or raise init_cash",
            {"symbol": legs.symbols[col], "date": str(legs.dates[row])},
        )
    records = portfolio.exit_trades.records
    return VectorbtRun(
        value=np.asarray(portfolio.value(), dtype=np.float64).reshape(-1),
        cash=np.asarray(portfolio.cash(), dtype=np.float64).reshape(-1),
        shares=shares,
        fees=float(np.sum(portfolio.orders.records["fees"])),
        trade_col=np.asarray(records["col"], dtype=np.int64),
        trade_entry=np.asarray(records["entry_idx"], dtype=np.int64),
        trade_exit=np.asarray(records["exit_idx"], dtype=np.int64),
        trade_pnl=np.asarray(records["pnl"], dtype=np.float64),
        trade_open=np.asarray(records["status"], dtype=np.int64) == 0,
    )
