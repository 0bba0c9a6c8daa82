"""The backtest report's charts: equity and drawdown, sweep heatmap, in- vs out-of-sample."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from titan_lib.dashboards.backtest_data import METRIC_LABELS
from titan_lib.dashboards.figures import chart_values, style_figure


def equity_figure(equity: pl.DataFrame, title: str) -> go.Figure:
    """Equity (currency) over drawdown (percent below the running peak, drawn negative)."""
    dates = equity.get_column("date").cast(pl.String).to_list()
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.68, 0.32]
    )
    fig.add_trace(
        go.Scatter(
            x=dates, y=chart_values(equity.get_column("equity")), name="equity", mode="lines"
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=dates,
            y=chart_values(equity.get_column("drawdown") * -100.0),
            name="drawdown %",
            mode="lines",
            fill="tozeroy",
            line={"color": "#c0392b"},
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    return style_figure(fig, title, height=460)


def heatmap_figure(
    xs: list[Any], ys: list[Any], z: list[list[float | None]], x: str, y: str, metric: str
) -> go.Figure:
    """Heatmap of ``metric`` over two sweep parameters."""
    fig = go.Figure(
        go.Heatmap(
            x=[str(v) for v in xs],
            y=[str(v) for v in ys],
            z=z,
            colorscale="RdYlGn_r" if metric == "max_drawdown" else "RdYlGn",
            colorbar={"title": {"text": METRIC_LABELS.get(metric, metric)}},
            hovertemplate=f"{x} %{{x}}<br>{y} %{{y}}<br>{metric} %{{z:.4g}}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=x, type="category")
    fig.update_yaxes(title_text=y, type="category")
    fig.update_layout(hovermode="closest")
    return style_figure(fig, f"sweep: {METRIC_LABELS.get(metric, metric)} by {x} and {y}", 420)


def in_out_figure(windows: pl.DataFrame, metric: str) -> go.Figure:
    """In-sample vs out-of-sample ``metric`` per walk-forward window (grouped bars)."""
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
    label = METRIC_LABELS.get(metric, metric)
    return style_figure(fig, f"in-sample vs out-of-sample {label} per window", 380)
