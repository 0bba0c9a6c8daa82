"""Charts of one pair: prices, spread, z-score with bands and hedge ratios, regimes shaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from titan_lib.plots.style import line_trace, style_figure

REGIME_COLOURS = ("rgba(0,0,0,0)", "rgba(230,120,40,0.16)", "rgba(200,40,40,0.20)")
"""Shading of regime 0 (none), 1 and 2 and above."""
REGIME_NAMES = ("calm regime", "regime 1 (shaded)", "regime 2+ (shaded darker)")
"""Legend entries of the shadings."""
AXIS_TITLES = (
    "price (first day = 100)",
    "spread (y − β·x − α)",
    "z-score (std. devs)",
    "β (x units per y unit)",
)
"""Y-axis titles of the four panels, with their units."""


def pair_figure(
    series: pl.DataFrame,
    y: str,
    x: str,
    entry: float,
    exit_band: float,
    spans: Sequence[tuple[Any, Any, int]] = (),
) -> go.Figure:
    """Four stacked panels sharing the date axis.

    1. both legs' closes, rebased to 100 at the first date;
    2. the spread (static hedge ratio);
    3. the z-score with the entry (``±entry``) and exit (``±exit_band``) bands;
    4. the hedge ratio: the scan's static one and the filtered Kalman one.

    ``series`` holds ``date``, ``y`` and ``x`` (closes), ``spread``, ``zscore``,
    ``beta_static`` and ``beta_kalman``. Non-calm market regimes (``spans``: first date,
    last date and label > 0) shade every panel, and each shading has a legend entry.
    Every panel's y axis names its unit.
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
        fig.add_trace(line_trace(dates, values / values[0] * 100.0, name), row=1, col=1)
    fig.add_trace(line_trace(dates, series.get_column("spread"), "spread"), row=2, col=1)
    fig.add_trace(line_trace(dates, series.get_column("zscore"), "z-score"), row=3, col=1)
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
    for column, name in (("beta_static", "static β"), ("beta_kalman", "Kalman β")):
        fig.add_trace(line_trace(dates, series.get_column(column), name), row=4, col=1)
    for regime in sorted({min(r, len(REGIME_COLOURS) - 1) for _, _, r in spans if r > 0}):
        # a shaded area has no legend entry of its own: a square of its colour stands in
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"symbol": "square", "size": 14, "color": REGIME_COLOURS[regime]},
                name=REGIME_NAMES[regime],
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    for row, title in enumerate(AXIS_TITLES, start=1):
        fig.update_yaxes(title_text=title, row=row, col=1)
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
