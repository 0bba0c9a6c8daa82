"""Backtesting of pairs: vectorbt portfolios, parameter sweeps and walk-forward tests.

Public names: :func:`backtest_pair`, :func:`backtest_portfolio` (several pairs, per-pair
capital and a gross cap), :func:`sweep`, :func:`walk_forward`, :class:`Costs`,
:class:`PairRule`, :class:`PairSpec`, :class:`BacktestResult`, :data:`STAT_NAMES`.
The trade convention is in :mod:`titan_lib.backtest.simulate`.
"""

from titan_lib.backtest.book import PairSpec, backtest_portfolio
from titan_lib.backtest.costs import TRADING_DAYS, Costs
from titan_lib.backtest.pair import backtest_pair
from titan_lib.backtest.result import BacktestResult
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.stats import STAT_NAMES
from titan_lib.backtest.sweep import best_params, sweep
from titan_lib.backtest.walk_forward import WalkForwardResult, walk_forward

__all__ = [
    "STAT_NAMES",
    "TRADING_DAYS",
    "BacktestResult",
    "Costs",
    "PairRule",
    "PairSpec",
    "WalkForwardResult",
    "backtest_pair",
    "backtest_portfolio",
    "best_params",
    "sweep",
    "walk_forward",
]
