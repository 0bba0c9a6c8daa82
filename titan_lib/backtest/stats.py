"""Performance statistics of an equity curve and its trades (one compiled definition).

Conventions: daily bars, annualisation by :data:`~titan_lib.backtest.costs.TRADING_DAYS`
(252). Returns are simple daily returns of equity, ``r_t = E_t / E_{t-1} - 1``. The
risk-free rate is an annual simple rate, charged per day as ``rf / 252``.

- ``total_return``: ``E_end / E_0 - 1``.
- ``cagr``: ``(E_end / E_0) ** (252 / (n - 1)) - 1`` over the ``n - 1`` daily returns
  (-1 when equity ends at or below zero).
- ``ann_vol``: sample standard deviation (ddof 1) of daily returns times sqrt(252).
- ``sharpe``: mean of ``r - rf/252`` over the standard deviation of ``r``, times sqrt(252).
- ``sortino``: mean of ``r - rf/252`` over the downside deviation
  ``sqrt(mean(min(r - rf/252, 0)^2))``, times sqrt(252).
- ``max_drawdown``: largest fall from a running peak, ``max(1 - E_t / max_{s<=t} E_s)``, a
  positive fraction.
- ``calmar``: ``cagr / max_drawdown``.
- ``hit_rate``: share of closed trades with P&L > 0; ``avg_holding_days``: mean number of
  bars from entry fill to exit fill of closed trades.
- ``n_trades``: trades entered, including one still open at the end.
- ``turnover``: traded value (at fill prices, both legs) over mean equity, per year.
- ``exposure``: share of bars ending with an open position.
- ``costs_paid``: commission + slippage + borrow, in currency; also given separately.

A ratio with a zero denominator (no volatility, no drawdown, no closed trade) is NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from titan_lib.backtest.costs import TRADING_DAYS

STAT_NAMES: tuple[str, ...] = (
    "total_return",
    "cagr",
    "ann_vol",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "hit_rate",
    "n_trades",
    "avg_holding_days",
    "turnover",
    "exposure",
    "costs_paid",
    "commission_paid",
    "slippage_paid",
    "borrow_paid",
    "final_equity",
)
"""Order of the statistics in :func:`stats_nb`'s output and in sweep tables."""

N_STATS = len(STAT_NAMES)


@njit(cache=True)
def stats_nb(
    equity: np.ndarray,
    tr_entry: np.ndarray,
    tr_exit: np.ndarray,
    tr_pnl: np.ndarray,
    totals: np.ndarray,
    rf_annual: float,
) -> np.ndarray:
    """Compute :data:`STAT_NAMES` from an equity curve and trade arrays.

    ``totals`` is ``(commission, slippage, borrow, traded value, bars in position)`` as
    returned by :func:`~titan_lib.backtest.simulate.simulate_nb`; ``tr_exit`` is -1 for a
    trade still open at the end.
    """
    out = np.full(N_STATS, np.nan)
    n = equity.shape[0]
    e0 = equity[0]
    e_end = equity[n - 1]
    periods = n - 1
    ann = float(TRADING_DAYS)
    rf_daily = rf_annual / ann
    out[0] = e_end / e0 - 1.0
    if periods > 0:
        if e_end > 0.0 and e0 > 0.0:
            out[1] = (e_end / e0) ** (ann / periods) - 1.0
        else:
            out[1] = -1.0
        mean = 0.0
        for t in range(1, n):
            mean += equity[t] / equity[t - 1] - 1.0
        mean /= periods
        var = 0.0
        down = 0.0
        for t in range(1, n):
            r = equity[t] / equity[t - 1] - 1.0
            var += (r - mean) ** 2
            ex = r - rf_daily
            if ex < 0.0:
                down += ex * ex
        if periods > 1:
            sd = math.sqrt(var / (periods - 1))
            out[2] = sd * math.sqrt(ann)
            if sd > 0.0:
                out[3] = (mean - rf_daily) / sd * math.sqrt(ann)
        dd_dev = math.sqrt(down / periods)
        if dd_dev > 0.0:
            out[4] = (mean - rf_daily) / dd_dev * math.sqrt(ann)
    peak = e0
    mdd = 0.0
    for t in range(n):
        if equity[t] > peak:
            peak = equity[t]
        if peak > 0.0:
            dd = 1.0 - equity[t] / peak
            if dd > mdd:
                mdd = dd
    out[5] = mdd
    if mdd > 0.0:
        out[6] = out[1] / mdd
    n_tr = tr_entry.shape[0]
    closed = 0
    wins = 0
    held = 0.0
    for i in range(n_tr):
        if tr_exit[i] >= 0:
            closed += 1
            held += tr_exit[i] - tr_entry[i]
            if tr_pnl[i] > 0.0:
                wins += 1
    if closed > 0:
        out[7] = wins / closed
        out[9] = held / closed
    out[8] = n_tr
    mean_equity = 0.0
    for t in range(n):
        mean_equity += equity[t]
    mean_equity /= n
    if periods > 0 and mean_equity > 0.0:
        out[10] = totals[3] / mean_equity * ann / periods
    out[11] = totals[4] / n
    out[12] = totals[0] + totals[1] + totals[2]
    out[13] = totals[0]
    out[14] = totals[1]
    out[15] = totals[2]
    out[16] = e_end
    return out


def stats_dict(values: np.ndarray) -> dict[str, float]:
    """Name the output of :func:`stats_nb`."""
    return {name: float(v) for name, v in zip(STAT_NAMES, values, strict=True)}
