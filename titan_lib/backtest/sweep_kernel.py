"""The compiled accounting of a sweep: every parameter combination of one pair, in parallel.

The states of all combinations come from the shared state machine
(:func:`titan_lib.signals.run_state_machine`); for each combination the accounting of
:mod:`titan_lib.backtest.simulate` turns its states into equity and trades, and
:func:`~titan_lib.backtest.stats.stats_nb` reduces them to one row of statistics.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from titan_lib.backtest.simulate import simulate_nb
from titan_lib.backtest.stats import N_STATS, stats_nb


@njit(parallel=True, cache=True)
def sweep_accounts_nb(
    states: np.ndarray,
    flatten_at_end: bool,
    close: np.ndarray,
    fill: np.ndarray,
    beta: np.ndarray,
    size: np.ndarray,
    size_mode: int,
    hedge_mode: int,
    init_cash: float,
    commission: float,
    fixed: float,
    slippage: float,
    borrow_daily: float,
    rf_annual: float,
    returns_out: np.ndarray,
) -> np.ndarray:
    """Statistics (``(C, N_STATS)``) of the ``(n, C)`` decided ``states`` of one pair.

    ``close`` and ``fill`` are the ``(n, 2)`` leg prices of the trading bars. When
    ``returns_out`` has ``n - 1`` rows (else give it 0 rows), column ``c`` receives the
    daily returns ``E_t / E_{t-1} - 1`` of combination ``c``'s equity.
    """
    n, n_combos = states.shape
    out = np.empty((n_combos, N_STATS))
    keep_returns = returns_out.shape[0] == n - 1 and n > 1
    for c in prange(n_combos):
        book = np.empty((n, 1), dtype=np.int64)
        for t in range(n):
            book[t, 0] = states[t, c]
        if flatten_at_end and n >= 2:
            book[n - 2, 0] = 0
            book[n - 1, 0] = 0
        sim = simulate_nb(
            close,
            fill,
            book,
            beta,
            size,
            size_mode,
            hedge_mode,
            math.inf,
            init_cash,
            commission,
            fixed,
            slippage,
            borrow_daily,
        )
        out[c, :] = stats_nb(sim[1], sim[7], sim[8], sim[9], sim[4], rf_annual)
        if keep_returns:
            equity = sim[1]
            for t in range(1, n):
                returns_out[t - 1, c] = equity[t] / equity[t - 1] - 1.0
    return out
