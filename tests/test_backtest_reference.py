"""An independent, plain-Python event loop of a pair backtest (tests only).

It follows the documented convention of :mod:`titan_lib.backtest` bar by bar with
scalars and lists: decide at the close of t (the pure-Python state machine and z-score of
:mod:`titan_lib.core`), fill at the next bar, pay commission, slippage and borrow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from titan_lib.core.state_machine import REASONS, step
from titan_lib.core.zscore import rolling_zscore_at

BORROW_DAYS = 252


@dataclass
class LoopTrade:
    side: int
    signal_bar: int
    entry_bar: int
    qy: float
    qx: float
    pnl: float = 0.0
    exit_bar: int | None = None
    exit_reason: str = "open"


@dataclass
class LoopResult:
    equity: list[float]
    trades: list[LoopTrade]
    states: list[int] = field(default_factory=list)
    commission: float = 0.0
    slippage: float = 0.0
    borrow: float = 0.0


def rule_decisions(
    close_y: list[float],
    close_x: list[float],
    beta: float,
    alpha: float,
    hedge: str,
    entry: float,
    exit_: float,
    stop: float,
    max_hold: float,
    window: int,
    first: int = 0,
) -> tuple[list[int], list[str]]:
    """Decided states and reasons per bar from the rolling z-score of the spread."""
    if hedge == "log":
        spread = [
            math.log(a) - beta * math.log(b) - alpha for a, b in zip(close_y, close_x, strict=True)
        ]
    else:
        spread = [a - beta * b - alpha for a, b in zip(close_y, close_x, strict=True)]
    states = [0] * len(spread)
    reasons = ["hold"] * len(spread)
    position, held, armed = 0, 0, 1
    for t in range(first, len(spread)):
        z = rolling_zscore_at(spread, t, window)
        position, held, armed, why = step(position, held, armed, z, entry, exit_, stop, max_hold, 0)
        states[t] = position
        reasons[t] = REASONS[why]
    return states[first:], reasons[first:]


def event_loop(
    close_y: list[float],
    close_x: list[float],
    fill_y: list[float],
    fill_x: list[float],
    decided: list[int],
    reasons: list[str],
    *,
    beta: float,
    hedge: str,
    notional: float | None,
    weight: float | None,
    commission_bps: float,
    fixed: float,
    slippage_bps: float,
    borrow_bps: float,
    init_cash: float,
) -> LoopResult:
    """Run the decided states bar by bar and return equity and trades."""
    c_rate = commission_bps / 1e4
    s_rate = slippage_bps / 1e4
    b_rate = borrow_bps / 1e4 / BORROW_DAYS
    n = len(close_y)
    cash = init_cash
    qy = qx = 0.0
    borrow_paid = 0.0
    out = LoopResult(equity=[], trades=[])
    trade: LoopTrade | None = None
    order: tuple[int, float, float, int] | None = None  # state, qy, qx, signal bar

    def trade_leg(q_now: float, q_new: float, price: float) -> tuple[float, float, float]:
        """Cash flow, fee and slippage cost of moving one leg from q_now to q_new."""
        dq = q_new - q_now
        if dq == 0:
            return 0.0, 0.0, 0.0
        fill_price = price * (1 + s_rate) if dq > 0 else price * (1 - s_rate)
        fee = abs(dq) * fill_price * c_rate + fixed
        return -dq * fill_price - fee, fee, abs(dq) * price * s_rate

    for t in range(n):
        if order is not None:
            new_state, ty, tx, signal_bar = order
            order = None
            flow_y, fee_y, slip_y = trade_leg(qy, ty, fill_y[t])
            flow_x, fee_x, slip_x = trade_leg(qx, tx, fill_x[t])
            cash += flow_y + flow_x
            out.commission += fee_y + fee_x
            out.slippage += slip_y + slip_x
            if trade is not None:
                # exit of the whole pair at this bar (no flips in the state machine)
                trade.pnl += flow_y + flow_x
                trade.exit_bar = t
                trade.exit_reason = reasons[t - 1]
                out.trades.append(trade)
                trade = None
            if new_state != 0:
                trade = LoopTrade(new_state, signal_bar, t, ty, tx, pnl=flow_y + flow_x)
            qy, qx = ty, tx
        fee_today = 0.0
        for q, price in ((qy, close_y[t]), (qx, close_x[t])):
            if q < 0:
                fee_today += -q * price * b_rate
        borrow_paid += fee_today
        if trade is not None:
            trade.pnl -= fee_today
        equity = cash + qy * close_y[t] + qx * close_x[t] - borrow_paid
        out.equity.append(equity)
        out.states.append(0 if trade is None else trade.side)
        held_state = 0 if trade is None else trade.side
        if t < n - 1 and decided[t] != held_state:
            s = decided[t]
            if s == 0:
                order = (0, 0.0, 0.0, t)
            else:
                gross = notional if notional is not None else weight * equity
                if gross <= 0:
                    continue
                if hedge == "log":
                    dollars = gross / (1 + abs(beta))
                    order = (s, s * dollars / close_y[t], -s * beta * dollars / close_x[t], t)
                else:
                    unit = gross / (close_y[t] + abs(beta) * close_x[t])
                    order = (s, s * unit, -s * beta * unit, t)
    if trade is not None:
        trade.pnl += qy * close_y[-1] + qx * close_x[-1]
        out.trades.append(trade)
    out.borrow = borrow_paid
    return out


def test_loop_accounting_identity() -> None:
    """The loop's own bookkeeping: final equity = initial cash + the P&L of every trade."""
    from titan_lib.data.synthetic import make_universe

    universe = make_universe(n_symbols=2, n_days=400, n_pairs=1, seed=3)
    wide = universe.wide()
    pair = universe.pairs[0]
    cy = wide.get_column(pair.y).to_list()
    cx = wide.get_column(pair.x).to_list()
    decided, reasons = rule_decisions(cy, cx, pair.beta, pair.alpha, "log", 1.5, 0.3, 3.5, 40, 30)
    result = event_loop(
        cy,
        cx,
        cy,
        cx,
        decided,
        reasons,
        beta=pair.beta,
        hedge="log",
        notional=None,
        weight=0.8,
        commission_bps=3,
        fixed=1.0,
        slippage_bps=2,
        borrow_bps=40,
        init_cash=1e5,
    )
    assert len(result.trades) >= 3
    total = sum(tr.pnl for tr in result.trades)
    assert abs(result.equity[-1] - (1e5 + total)) <= 1e-9 * 1e5
