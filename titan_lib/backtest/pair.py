"""Backtest of one pair: two legs, hedge-ratio weighted, in one cash-sharing group."""

from __future__ import annotations

import math

import polars as pl

from titan_lib.backtest.book import DateLike, Engine, PairSpec, backtest_portfolio
from titan_lib.backtest.costs import Costs
from titan_lib.backtest.legs import FillPrice
from titan_lib.backtest.result import BacktestResult
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.sizing import HedgeUnits
from titan_lib.core.zscore import ZScoreSpec


def backtest_pair(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    beta: float,
    alpha: float = 0.0,
    entry: float = 2.0,
    exit: float = 0.5,
    stop: float = math.inf,
    max_hold: float = math.inf,
    window: int | None = 60,
    zscore: ZScoreSpec | None = None,
    positions: pl.DataFrame | None = None,
    notional: float | None = None,
    target_weight: float | None = None,
    hedge: HedgeUnits = "log",
    costs: Costs | None = None,
    init_cash: float = 1_000_000.0,
    fill: FillPrice = "auto",
    start: DateLike = None,
    end: DateLike = None,
    flatten_at_end: bool = False,
    gate: pl.DataFrame | None = None,
    risk_free: float = 0.0,
    engine: Engine = "vectorbt",
) -> BacktestResult:
    """Backtest the z-score rule on the spread ``y - beta x - alpha`` of one pair.

    Convention: the state decided from data up to the close of bar ``t`` is filled at bar
    ``t + 1``: at its close, or at its open when every leg has opens (``fill="auto"``).
    Leg sizes follow ``beta`` and a ``notional`` (currency) or ``target_weight`` (fraction
    of equity at the signal close; 1.0 when neither is given), see
    :mod:`titan_lib.backtest.sizing`. Costs: commission (bps and fixed per order),
    slippage (bps) and the annual borrow fee of the short leg accrued daily
    (:class:`~titan_lib.backtest.costs.Costs`). Statistics use 252 days a year and the
    annual ``risk_free`` rate (:mod:`titan_lib.backtest.stats`).

    Parameters
    ----------
    prices
        Long prices (``date``, ``symbol``, ``close``, optional ``open``).
    y, x
        Leg symbols: long spread is long ``y`` and short ``x``.
    beta, alpha
        Hedge ratio and intercept of the spread (``hedge`` gives the units of ``beta``).
    entry, exit, stop, max_hold
        Rule thresholds in z units, ``0 <= exit < entry < stop``, and time stop in bars
        (``inf`` for none); see :mod:`titan_lib.core.state_machine`.
    window, zscore
        Rolling z-score window, or a full :class:`~titan_lib.core.zscore.ZScoreSpec`
        (which wins when given).
    positions
        A frame of ``date`` and ``position`` (-1/0/+1 decided states) used instead of the
        rule.
    notional, target_weight, hedge, costs, init_cash, fill, start, end, flatten_at_end,
    gate, risk_free, engine
        As in :func:`~titan_lib.backtest.book.backtest_portfolio`.

    Returns
    -------
    BacktestResult
        Equity curve, per-leg positions, trades (with exit reasons) and statistics.

    Raises
    ------
    ParameterError
        Any invalid parameter, before anything runs.
    """
    spec = zscore if zscore is not None else ZScoreSpec.rolling(60 if window is None else window)
    rule = PairRule(entry=entry, exit=exit, stop=stop, max_hold=max_hold, zscore=spec)
    pair = PairSpec(y=y, x=x, beta=beta, alpha=alpha, rule=rule, positions=positions)
    return backtest_portfolio(
        prices,
        [pair],
        allocation=target_weight,
        notional=notional,
        hedge=hedge,
        costs=costs,
        init_cash=init_cash,
        fill=fill,
        start=start,
        end=end,
        flatten_at_end=flatten_at_end,
        gate=gate,
        risk_free=risk_free,
        engine=engine,
    )
