"""Charts of backtest results: equity and drawdown, the sweep heatmap, in- vs out-of-sample
per walk-forward window, and a z-score with its trading bands.

Each function takes the tables a backtest run saves (:mod:`titan_lib.runner.result_schemas`)
and returns a styled ``plotly.graph_objects.Figure``; a notebook shows it with
``fig.show()``, a dashboard with :func:`titan_lib.dashboards.figures.show_figure`.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from titan_lib.plots.labels import LOWER_IS_BETTER, metric_label
from titan_lib.plots.style import chart_values, line_trace, style_figure


def with_drawdown(equity: pl.DataFrame) -> pl.DataFrame:
    """``date``, ``equity`` and ``drawdown`` (fraction below the running peak, >= 0)."""
    frame = equity.sort("date")
    if "drawdown" not in frame.columns:
        frame = frame.with_columns(
            (1.0 - pl.col("equity") / pl.col("equity").cum_max()).alias("drawdown")
        )
    return frame.select(pl.col("date").cast(pl.Date), "equity", "drawdown")


def equity_figure(equity: pl.DataFrame, title: str) -> go.Figure:
    """Equity (currency) over drawdown (percent below the running peak, drawn negative).

    ``equity`` holds ``date`` and ``equity``, and ``drawdown`` (else it is computed, see
    :func:`with_drawdown`).
    """
    equity = with_drawdown(equity)
    dates = equity.get_column("date").cast(pl.String).to_list()
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.68, 0.32]
    )
    fig.add_trace(line_trace(dates, equity.get_column("equity"), "equity"), row=1, col=1)
    drawdown = equity.get_column("drawdown") * -100.0
    red = {"fill": "tozeroy", "line": {"color": "#c0392b"}}
    fig.add_trace(line_trace(dates, drawdown, "drawdown %", **red), row=2, col=1)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    return style_figure(fig, title, height=460)


def sweep_grid(
    sweep: pl.DataFrame, x: str, y: str, metric: str
) -> tuple[list[Any], list[Any], list[list[float | None]]]:
    """The heatmap of ``metric`` over parameters ``x`` and ``y`` of a sweep table.

    Where other parameters vary too, each cell holds the best value of the metric over
    them: the largest, the smallest for a statistic in
    :data:`~titan_lib.plots.labels.LOWER_IS_BETTER`.

    Returns
    -------
    tuple
        ``(x values, y values, z rows)``, ``z[i][j]`` at ``y values[i]``, ``x values[j]``.
    """
    agg = pl.col(metric).min() if metric in LOWER_IS_BETTER else pl.col(metric).max()
    cells = sweep.group_by(x, y).agg(agg.alias("v"))
    xs = sorted(cells.get_column(x).unique().to_list())
    ys = sorted(cells.get_column(y).unique().to_list())
    lookup = {(a, b): v for a, b, v in cells.iter_rows()}
    z = [[lookup.get((a, b)) for a in xs] for b in ys]
    return xs, ys, z


def heatmap_figure(
    xs: list[Any], ys: list[Any], z: list[list[float | None]], x: str, y: str, metric: str
) -> go.Figure:
    """Heatmap of ``metric`` over two sweep parameters (the output of :func:`sweep_grid`)."""
    label = metric_label(metric)
    fig = go.Figure(
        go.Heatmap(
            x=[str(v) for v in xs],
            y=[str(v) for v in ys],
            z=z,
            colorscale="RdYlGn_r" if metric in LOWER_IS_BETTER else "RdYlGn",
            colorbar={"title": {"text": label}},
            hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>{metric} %{{z:.4g}}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=x, type="category")
    fig.update_yaxes(title_text=y, type="category")
    fig.update_layout(hovermode="closest")
    return style_figure(fig, f"sweep: {label} by {x} and {y}", 420)


def sweep_figure(sweep: pl.DataFrame, x: str, y: str, metric: str) -> go.Figure:
    """:func:`heatmap_figure` of :func:`sweep_grid`: ``metric`` of a sweep table by ``x``
    and ``y``, the best value over the other parameters in each cell."""
    return heatmap_figure(*sweep_grid(sweep, x, y, metric), x, y, metric)


def in_out_figure(windows: pl.DataFrame, metric: str) -> go.Figure:
    """In-sample vs out-of-sample ``metric`` per walk-forward window (grouped bars of the
    windows table's ``is_<metric>`` and ``oos_<metric>``, by ``test_start``)."""
    labels = [str(v) for v in windows.get_column("test_start").cast(pl.String).to_list()]
    fig = go.Figure()
    for prefix, name, colour in (
        ("is", "in-sample", "#2f6fb0"),
        ("oos", "out-of-sample", "#e67e22"),
    ):
        column = f"{prefix}_{metric}"
        if column in windows.columns:
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=chart_values(windows.get_column(column)),
                    name=name,
                    marker_color=colour,
                )
            )
    fig.update_xaxes(title_text="test window start", type="category")
    fig.update_layout(barmode="group", hovermode="closest")
    return style_figure(fig, f"in-sample vs out-of-sample {metric_label(metric)} per window", 380)


def zscore_figure(
    history: pl.DataFrame,
    title: str,
    entry: float,
    exit_band: float,
    *,
    stop: float | None = None,
    signals: pl.DataFrame | None = None,
) -> go.Figure:
    """A z-score (``date``, ``z``) with its entry (dashed) and exit (dotted) bands.

    Parameters
    ----------
    history
        ``date`` and ``z``.
    title
        The chart's title.
    entry, exit_band
        ``|z|`` thresholds, drawn at plus and minus each.
    stop
        ``|z|`` of the stop (dash-dotted), when given.
    signals
        ``date`` and ``z`` of entry signals, drawn as markers, when given.
    """
    dates = history.get_column("date").cast(pl.String).to_list()
    fig = go.Figure(line_trace(dates, history.get_column("z"), "z-score"))
    bands = [(entry, "dash"), (-entry, "dash"), (exit_band, "dot"), (-exit_band, "dot")]
    if stop is not None:
        bands += [(stop, "dashdot"), (-stop, "dashdot")]
    for level, dash in bands:
        fig.add_hline(y=level, line_dash=dash, line_width=1, line_color="#888")
    if signals is not None:
        fig.add_trace(
            go.Scatter(
                x=signals.get_column("date").cast(pl.String).to_list(),
                y=chart_values(signals.get_column("z")),
                mode="markers",
                name="entry signal",
                marker={"symbol": "triangle-up", "size": 9},
            )
        )
    return style_figure(fig, title, height=340)
