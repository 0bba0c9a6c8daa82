"""The pair explorer's chart: prices, spread, z-score with bands, hedge ratios, regimes."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from titan_lib.dashboards.figures import chart_values, style_figure

REGIME_COLOURS = ("rgba(0,0,0,0)", "rgba(230,120,40,0.16)", "rgba(200,40,40,0.20)")


def pair_figure(
    series: pl.DataFrame,
    y: str,
    x: str,
    entry: float,
    exit_band: float,
    spans: list[tuple[Any, Any, int]],
) -> go.Figure:
    """Four stacked panels sharing the date axis.

    1. both legs' closes, rebased to 100 at the first date;
    2. the spread (static hedge ratio);
    3. the z-score with the entry (``±entry``) and exit (``±exit_band``) bands;
    4. the hedge ratio: the scan's static one and the filtered Kalman one.

    Non-calm market regimes (``spans``, label > 0) shade every panel.
    """
    dates = series.get_column("date").cast(pl.String).to_list()
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=[0.28, 0.22, 0.28, 0.22],
        subplot_titles=(
            f"{y} and {x}, rebased to 100",
            "spread",
            "z-score and bands",
            "hedge ratio",
        ),
    )
    for column, name in (("y", y), ("x", x)):
        values = series.get_column(column)
        rebased = chart_values(values / values[0] * 100.0)
        fig.add_trace(go.Scatter(x=dates, y=rebased, name=name, mode="lines"), row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=dates, y=chart_values(series.get_column("spread")), name="spread", mode="lines"
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=dates, y=chart_values(series.get_column("zscore")), name="z-score", mode="lines"
        ),
        row=3,
        col=1,
    )
    for level, dash, label in (
        (entry, "dash", "entry"),
        (-entry, "dash", None),
        (exit_band, "dot", "exit"),
        (-exit_band, "dot", None),
    ):
        fig.add_trace(
            go.Scatter(
                x=[dates[0], dates[-1]],
                y=[level, level],
                mode="lines",
                name=f"{label} ±{abs(level):g}" if label else None,
                showlegend=label is not None,
                line={
                    "dash": dash,
                    "width": 1,
                    "color": "#c0392b" if dash == "dash" else "#7f8c8d",
                },
                hoverinfo="skip",
            ),
            row=3,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=dates, y=chart_values(series.get_column("beta_static")), name="static β", mode="lines"
        ),
        row=4,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=dates, y=chart_values(series.get_column("beta_kalman")), name="Kalman β", mode="lines"
        ),
        row=4,
        col=1,
    )
    # one shape per span across all panels (x of the shared date axis, y of the page)
    fig.update_layout(
        shapes=[
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": str(start),
                "x1": str(end),
                "y0": 0.0,
                "y1": 1.0,
                "fillcolor": REGIME_COLOURS[min(regime, len(REGIME_COLOURS) - 1)],
                "line": {"width": 0},
                "layer": "below",
            }
            for start, end, regime in spans
        ]
    )
    return style_figure(fig, f"{y} / {x}", height=860)
