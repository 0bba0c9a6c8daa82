"""Data of the backtest report, read from a backtest or walk-forward run's sidecar.

Tables are recognised by their columns (as written from the backtest engine's results):

- equity: ``date``, ``equity`` (and ``drawdown``, else it is computed from equity);
- trades: ``pnl`` with ``entry_date`` (one row per pair trade);
- sweep: the parameter grid (``entry``, ``exit`` and others) with statistics per row;
- windows (walk-forward): ``train_start``, ``test_start`` and ``is_*``/``oos_*`` values.

The metrics are the sidecar's values named like the engine's statistics (``sharpe``,
``total_return``, ...), at the top level or in a mapping such as ``stats``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

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

METRIC_LABELS = {
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


def _tables(results: RunResults) -> list[pl.DataFrame]:
    return [results.table(name) for name in sorted(results.tables)]


def _first_with(tables: list[pl.DataFrame], *columns: str) -> pl.DataFrame | None:
    return next((t for t in tables if all(c in t.columns for c in columns)), None)


def find_metrics(values: dict[str, Any]) -> dict[str, Any]:
    """The run's headline statistics: known metric names at the top level, else in the
    first mapping value that holds some (e.g. ``values["stats"]``)."""
    top = {k: values[k] for k in METRIC_LABELS if k in values}
    if top:
        return top
    for value in values.values():
        if isinstance(value, dict):
            nested = {k: value[k] for k in METRIC_LABELS if k in value}
            if nested:
                return nested
    return {}


def with_drawdown(equity: pl.DataFrame) -> pl.DataFrame:
    """``date``, ``equity`` and ``drawdown`` (fraction below the running peak, >= 0)."""
    frame = equity.sort("date")
    if "drawdown" not in frame.columns:
        frame = frame.with_columns(
            (1.0 - pl.col("equity") / pl.col("equity").cum_max()).alias("drawdown")
        )
    return frame.select(pl.col("date").cast(pl.Date), "equity", "drawdown")


def backtest_view(store: ObjectStore, run_id: str) -> BacktestView:
    """Read everything the report shows from one run's sidecar."""
    results = load_results(run_id, store)
    tables = _tables(results)
    equity = _first_with(tables, "date", "equity")
    sweep = next(
        (
            t
            for t in tables
            if "entry" in t.columns
            and "exit" in t.columns
            and "date" not in t.columns
            and t.height > 1
            and any(m in t.columns for m in METRIC_LABELS)
        ),
        None,
    )
    degradation = next(
        (v for k, v in results.values.items() if "degradation" in k and isinstance(v, dict)), {}
    )
    return BacktestView(
        run_id=run_id,
        notebook=results.notebook,
        equity=with_drawdown(equity) if equity is not None and equity.height else None,
        trades=_first_with(tables, "pnl", "entry_date"),
        sweep=sweep,
        windows=_first_with(tables, "train_start", "test_start"),
        metrics=find_metrics(results.values),
        degradation=degradation,
    )


def sweep_axes(sweep: pl.DataFrame) -> tuple[list[str], list[str]]:
    """``(parameters that vary, metric columns)`` of a sweep table."""
    params = [
        c for c in SWEEP_PARAMETERS if c in sweep.columns and sweep.get_column(c).n_unique() > 1
    ]
    metrics = [c for c in METRIC_LABELS if c in sweep.columns]
    return params, metrics


def sweep_grid(
    sweep: pl.DataFrame, x: str, y: str, metric: str
) -> tuple[list[Any], list[Any], list[list[float | None]]]:
    """The heatmap of ``metric`` over parameters ``x`` and ``y``.

    Where other parameters vary too, each cell holds the best (largest) value of the
    metric over them (smallest for ``max_drawdown``).

    Returns
    -------
    tuple
        ``(x values, y values, z rows)``, ``z[i][j]`` at ``y values[i]``, ``x values[j]``.
    """
    agg = pl.col(metric).min() if metric == "max_drawdown" else pl.col(metric).max()
    cells = sweep.group_by(x, y).agg(agg.alias("v"))
    xs = sorted(cells.get_column(x).unique().to_list())
    ys = sorted(cells.get_column(y).unique().to_list())
    lookup = {(a, b): v for a, b, v in cells.iter_rows()}
    z = [[lookup.get((a, b)) for a in xs] for b in ys]
    return xs, ys, z


def sort_trades(trades: pl.DataFrame, column: str, descending: bool) -> pl.DataFrame:
    """Trades sorted by ``column`` (nulls last)."""
    return trades.sort(column, descending=descending, nulls_last=True)
