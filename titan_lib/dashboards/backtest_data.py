"""Data of the backtest report, read from a backtest or walk-forward run's sidecar.

Tables and values are looked up by the names of the runs' result schemas
(:mod:`titan_lib.runner.result_schemas`):

- ``equity``: ``date``, ``equity`` (and ``drawdown``, else it is computed from equity);
- ``trades``: one row per pair trade, with ``pnl`` and ``entry_date``;
- ``sweep`` (a backtest): the parameter grid (``entry``, ``exit`` and others) with
  statistics per row;
- ``windows`` (a walk-forward): ``train_start``, ``test_start`` and ``is_*``/``oos_*``
  values;
- the values ``stats`` (the headline statistics, named as the engine's), ``degradation``
  and ``sample``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from titan_lib.plots.backtest import with_drawdown
from titan_lib.plots.labels import METRIC_LABELS
from titan_lib.runner.result_schemas import (
    DEGRADATION_VALUE,
    EQUITY_TABLE,
    SAMPLE_VALUE,
    STATS_VALUE,
    SWEEP_TABLE,
    TRADES_TABLE,
    WINDOWS_TABLE,
)
from titan_lib.runner.results import RunResults, load_results
from titan_lib.stores.objects import ObjectStore

SWEEP_PARAMETERS = (
    "entry",
    "exit",
    "stop",
    "window",
    "z_window",
    "z_halflife",
    "max_hold",
    "time_stop_half_lives",
)
"""Columns of a sweep table that are grid parameters (the rest are statistics)."""


@dataclass(frozen=True)
class BacktestView:
    """What the backtest report shows for one run (each part ``None`` when absent)."""

    run_id: str
    notebook: str
    equity: pl.DataFrame | None
    trades: pl.DataFrame | None
    sweep: pl.DataFrame | None
    windows: pl.DataFrame | None
    metrics: dict[str, Any]
    degradation: dict[str, Any]
    sample: str = "in-sample"
    """``"out-of-sample"`` only when the run recorded it (``values["sample"]``); every other
    run is shown as in-sample."""


def _table(results: RunResults, name: str) -> pl.DataFrame | None:
    return results.table(name) if name in results.tables else None


def find_metrics(values: dict[str, Any]) -> dict[str, Any]:
    """The run's headline statistics (``values["stats"]``) that a report shows, in the
    order of :data:`~titan_lib.plots.labels.METRIC_LABELS`."""
    stats = values.get(STATS_VALUE)
    if not isinstance(stats, dict):
        return {}
    return {k: stats[k] for k in METRIC_LABELS if k in stats}


def backtest_view(store: ObjectStore, run_id: str) -> BacktestView:
    """Read everything the report shows from one run's sidecar."""
    results = load_results(run_id, store)
    equity = _table(results, EQUITY_TABLE)
    sweep = _table(results, SWEEP_TABLE)
    degradation = results.values.get(DEGRADATION_VALUE)
    return BacktestView(
        run_id=run_id,
        notebook=results.notebook,
        equity=with_drawdown(equity) if equity is not None and equity.height else None,
        trades=_table(results, TRADES_TABLE),
        sweep=sweep if sweep is not None and sweep.height > 1 else None,
        windows=_table(results, WINDOWS_TABLE),
        metrics=find_metrics(results.values),
        degradation=degradation if isinstance(degradation, dict) else {},
        sample=run_sample(results.values),
    )


def run_sample(values: dict[str, Any]) -> str:
    """The run's sample label: ``values["sample"]`` when it is ``"out-of-sample"``, else
    ``"in-sample"`` (a run that does not say is not assumed to be out of sample)."""
    return "out-of-sample" if values.get(SAMPLE_VALUE) == "out-of-sample" else "in-sample"


def sweep_axes(sweep: pl.DataFrame) -> tuple[list[str], list[str]]:
    """``(parameters that vary, metric columns)`` of a sweep table."""
    params = [
        c for c in SWEEP_PARAMETERS if c in sweep.columns and sweep.get_column(c).n_unique() > 1
    ]
    metrics = [c for c in METRIC_LABELS if c in sweep.columns]
    return params, metrics


def sort_trades(trades: pl.DataFrame, column: str, descending: bool) -> pl.DataFrame:
    """Trades sorted by ``column`` (nulls last)."""
    return trades.sort(column, descending=descending, nulls_last=True)
