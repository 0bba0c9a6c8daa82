"""Backtesting of pairs: vectorbt portfolios, parameter sweeps and walk-forward tests.

Public names: :func:`backtest_pair`, :func:`backtest_portfolio` (several pairs, per-pair
capital and a gross cap), :func:`sweep`, :func:`walk_forward`, :class:`Costs`,
:class:`PairRule`, :class:`PairSpec`, :class:`BacktestResult`, :data:`STAT_NAMES`.
The trade convention is in :mod:`titan_lib.backtest.simulate`.

Settings objects (frozen, validated once, recorded with the results): :class:`BacktestSettings`
(composed of :class:`SizingSettings` and :class:`Costs`), :class:`HedgeFit` and
:class:`PairBacktest` (one pair), :class:`SweepSettings`, :class:`WindowSettings` and
:class:`SelectionSettings` (walk-forward). The keyword functions build them and call
:func:`run_pair`, :func:`run_portfolio`, :func:`~titan_lib.backtest.sweep.run_sweep` and
:func:`~titan_lib.backtest.walk_forward.run_walk_forward`.
"""

from titan_lib.backtest.book import PairSpec, backtest_portfolio, run_portfolio
from titan_lib.backtest.costs import TRADING_DAYS, Costs
from titan_lib.backtest.pair import HedgeFit, PairBacktest, backtest_pair, run_pair
from titan_lib.backtest.result import BacktestResult
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.settings import BacktestSettings, settings_dict
from titan_lib.backtest.sizing import SizingSettings
from titan_lib.backtest.stats import STAT_NAMES
from titan_lib.backtest.sweep import SweepSettings, best_params, sweep
from titan_lib.backtest.walk_forward import (
    SelectionSettings,
    WalkForwardResult,
    WindowSettings,
    walk_forward,
)

__all__ = [
    "STAT_NAMES",
    "TRADING_DAYS",
    "BacktestResult",
    "BacktestSettings",
    "Costs",
    "HedgeFit",
    "PairBacktest",
    "PairRule",
    "PairSpec",
    "SelectionSettings",
    "SizingSettings",
    "SweepSettings",
    "WalkForwardResult",
    "WindowSettings",
    "backtest_pair",
    "backtest_portfolio",
    "best_params",
    "run_pair",
    "run_portfolio",
    "settings_dict",
    "sweep",
    "walk_forward",
]
