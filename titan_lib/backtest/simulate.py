"""Compiled accounting of pair portfolios: fills, costs, cash, equity and pair trades.

Convention (the same everywhere in :mod:`titan_lib.backtest`)
--------------------------------------------------------------
- ``state[t, i]`` in {-1, 0, +1} is the spread position of pair ``i`` decided from data
  up to and including the close of bar ``t`` (+1 long spread: long ``y``, short ``x``).
- A change of state decided at ``t`` is filled at bar ``t + 1`` at ``fill[t + 1]``: the
  close of ``t + 1``, or its open when opens are used. A decision on the last bar is never
  filled. Leg sizes come from the closes (and equity) of the signal bar ``t``, see
  :mod:`titan_lib.backtest.sizing`, and stay fixed for the life of the trade.
- Each leg whose holding changes is one order: buys fill at ``p (1 + slippage)``, sells at
  ``p (1 - slippage)``, commission ``|dq| p_fill rate + fixed``. Orders that cross zero
  (a flip from long to short spread) are one order per leg; their commission is split
  between the closed and the opened trade in proportion to the shares.
- A short held over the close of bar ``t`` pays ``|q| close[t] * borrow_daily``.
- ``equity[t] = cash[t] + sum(q close[t]) - borrow paid up to t``.

Several pairs share one cash account. New entries decided on the same bar are scaled
down pro rata when they would take the gross exposure (sum of ``|q| close``) above
``gross_cap`` times equity; an entry left with no capital is skipped and the pair waits
for its next entry signal. Open positions are never cut by the cap.
"""

from __future__ import annotations

import numpy as np
from numba import njit

CLOSE_PART = 0
OPEN_PART = 1


@njit(cache=True)
def count_entries_nb(state: np.ndarray) -> int:
    """Upper bound on the number of trades: entries into a non-zero state, all pairs."""
    n, k = state.shape
    total = 0
    for i in range(k):
        prev = 0
        for t in range(n):
            s = state[t, i]
            if s != 0 and s != prev:
                total += 1
            prev = s
    return total


@njit(cache=True)
def simulate_nb(
    close: np.ndarray,
    fill: np.ndarray,
    state: np.ndarray,
    beta: np.ndarray,
    size: np.ndarray,
    size_mode: int,
    hedge_mode: int,
    gross_cap: float,
    init_cash: float,
    commission: float,
    fixed: float,
    slippage: float,
    borrow_daily: float,
) -> tuple[np.ndarray, ...]:
    """Run the accounting of ``k`` pairs over ``n`` bars.

    Parameters
    ----------
    close, fill
        ``(n, 2k)`` prices; columns are ``y0, x0, y1, x1, ...``.
    state
        ``(n, k)`` int spread state decided at each close.
    beta, size
        ``(k,)`` hedge ratio and gross size (currency when ``size_mode == 0``, fraction of
        equity when ``size_mode == 1``) per pair.
    hedge_mode
        0: ``beta`` in log-price units (value ratio), 1: in price units (share ratio).
    gross_cap
        Cap on gross exposure as a multiple of equity (``inf`` for none).
    init_cash, commission, fixed, slippage, borrow_daily
        Starting cash; commission rate, fixed commission per order, slippage rate and
        daily borrow rate (fractions).

    Returns
    -------
    tuple
        ``shares (n, 2k)`` after each bar's fills; ``equity (n,)``; ``borrow (n, k)`` fee
        charged at each close per pair; ``orders (n, 2k)`` target shares at fill bars (NaN
        elsewhere); ``totals (5,)`` commission, slippage, borrow, traded value at fill
        prices, bars with a position; trade arrays ``pair, side, entry_bar, exit_bar``
        (``-1`` while open), ``pnl`` (open trades marked at the last close) and the
        number of trades.
    """
    n, m = close.shape
    k = m // 2
    shares = np.zeros((n, m))
    equity = np.empty(n)
    borrow = np.zeros((n, k))
    orders = np.full((n, m), np.nan)
    totals = np.zeros(5)

    max_trades = count_entries_nb(state)
    tr_pair = np.empty(max_trades, dtype=np.int64)
    tr_side = np.empty(max_trades, dtype=np.int64)
    tr_entry = np.empty(max_trades, dtype=np.int64)
    tr_exit = np.empty(max_trades, dtype=np.int64)
    tr_pnl = np.empty(max_trades)
    n_tr = 0

    q = np.zeros(m)
    target = np.zeros(m)
    pending = np.zeros(k, dtype=np.bool_)
    pending_state = np.zeros(k, dtype=np.int64)
    held = np.zeros(k, dtype=np.int64)
    skipped = np.zeros(k, dtype=np.int64)
    open_tr = np.full(k, -1, dtype=np.int64)
    entering = np.zeros(k, dtype=np.bool_)
    gross_want = np.zeros(k)
    cash = init_cash
    paid_borrow = 0.0

    for t in range(n):
        # 1. fills of the orders decided at the previous close
        for i in range(k):
            if not pending[i]:
                continue
            pending[i] = False
            new_state = pending_state[i]
            closing = open_tr[i]
            opening = -1
            if new_state != 0:
                opening = n_tr
                tr_pair[n_tr] = i
                tr_side[n_tr] = new_state
                tr_entry[n_tr] = t
                tr_exit[n_tr] = -1
                tr_pnl[n_tr] = 0.0
                n_tr += 1
            for j in range(2 * i, 2 * i + 2):
                old = q[j]
                new = target[j]
                dq = new - old
                if dq == 0.0:
                    continue
                orders[t, j] = new
                p = fill[t, j]
                p_fill = p * (1.0 + slippage) if dq > 0 else p * (1.0 - slippage)
                fee = abs(dq) * p_fill * commission + fixed
                cash -= dq * p_fill + fee
                totals[0] += fee
                totals[1] += abs(dq) * p * slippage
                totals[3] += abs(dq) * p
                if old != 0.0 and closing >= 0:
                    tr_pnl[closing] += old * p_fill - fee * abs(old) / abs(dq)
                if new != 0.0 and opening >= 0:
                    tr_pnl[opening] += -new * p_fill - fee * abs(new) / abs(dq)
                q[j] = new
            if closing >= 0:
                tr_exit[closing] = t
            open_tr[i] = opening
            held[i] = new_state

        # 2. borrow on shorts held over this close
        for j in range(m):
            if q[j] < 0.0:
                fee = -q[j] * close[t, j] * borrow_daily
                paid_borrow += fee
                borrow[t, j // 2] += fee
                tr = open_tr[j // 2]
                if tr >= 0:
                    tr_pnl[tr] -= fee
        totals[2] = paid_borrow

        # 3. mark to market
        value = cash - paid_borrow
        any_position = False
        for j in range(m):
            value += q[j] * close[t, j]
            shares[t, j] = q[j]
            if q[j] != 0.0:
                any_position = True
        equity[t] = value
        if any_position:
            totals[4] += 1.0

        # 4. decisions at this close, filled at t + 1
        if t == n - 1:
            break
        open_gross = 0.0
        want_gross = 0.0
        for i in range(k):
            s = state[t, i]
            entering[i] = False
            if skipped[i] != 0:
                if s == skipped[i]:
                    continue
                skipped[i] = 0
            if s == held[i]:
                if held[i] != 0:
                    for j in range(2 * i, 2 * i + 2):
                        open_gross += abs(q[j]) * close[t, j]
                continue
            pending[i] = True
            pending_state[i] = s
            target[2 * i] = 0.0
            target[2 * i + 1] = 0.0
            if s != 0:
                g = size[i] if size_mode == 0 else size[i] * value
                entering[i] = True
                gross_want[i] = g
                want_gross += g
        scale = 1.0
        if want_gross > 0.0 and np.isfinite(gross_cap):
            room = gross_cap * value - open_gross
            if want_gross > room:
                scale = max(room, 0.0) / want_gross
        for i in range(k):
            if not entering[i]:
                continue
            g = gross_want[i] * scale
            s = state[t, i]
            if not g > 0.0:
                skipped[i] = s
                if held[i] == 0:
                    pending[i] = False
                else:
                    pending_state[i] = 0
                continue
            py = close[t, 2 * i]
            px = close[t, 2 * i + 1]
            b = beta[i]
            if hedge_mode == 0:
                dollars_y = g / (1.0 + abs(b))
                target[2 * i] = s * dollars_y / py
                target[2 * i + 1] = -s * b * dollars_y / px
            else:
                unit = g / (py + abs(b) * px)
                target[2 * i] = s * unit
                target[2 * i + 1] = -s * b * unit

    # open trades are marked at the last close
    for i in range(k):
        tr = open_tr[i]
        if tr >= 0:
            for j in range(2 * i, 2 * i + 2):
                tr_pnl[tr] += q[j] * close[n - 1, j]
    return (
        shares,
        equity,
        borrow,
        orders,
        totals,
        tr_pair[:n_tr],
        tr_side[:n_tr],
        tr_entry[:n_tr],
        tr_exit[:n_tr],
        tr_pnl[:n_tr],
    )
