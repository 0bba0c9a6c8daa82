"""Readable labels of the backtest statistics, for every chart, card and table.

The statistics and their order are the backtest engine's
(:data:`titan_lib.backtest.stats.STAT_NAMES`; ``tests/test_plots.py`` keeps the two in step).
This module holds only their labels, so the dashboards can use them without importing the
engine's compiled code.
"""

from __future__ import annotations

METRIC_LABELS: dict[str, str] = {
    "total_return": "total return",
    "cagr": "CAGR",
    "ann_vol": "annual volatility",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "max_drawdown": "max drawdown",
    "calmar": "Calmar",
    "hit_rate": "hit rate",
    "n_trades": "trades",
    "avg_holding_days": "average holding (days)",
    "turnover": "turnover",
    "exposure": "exposure",
    "costs_paid": "costs paid",
    "final_equity": "final equity",
}
"""Statistic name to label, in the engine's order: the headline statistics a report shows.
The parts of ``costs_paid`` (:data:`COST_PARTS`) are left out: their sum is shown."""

COST_PARTS: tuple[str, ...] = ("commission_paid", "slippage_paid", "borrow_paid")
"""Statistics that split ``costs_paid`` into its parts; not shown on their own."""

LOWER_IS_BETTER: frozenset[str] = frozenset({"max_drawdown"})
"""Statistics for which a smaller value is better (a heatmap's colours turn round)."""


def metric_label(name: str) -> str:
    """The label of statistic ``name`` (the name itself when it has none)."""
    return METRIC_LABELS.get(name, name)
