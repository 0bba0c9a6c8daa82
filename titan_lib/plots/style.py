"""The common look of TITAN's charts and the conversion of columns into trace values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go
    import polars as pl

TEMPLATE = "plotly_white"


def chart_values(values: pl.Series) -> list[float | None]:
    """A numeric column for a trace: floats, ``None`` (a gap in the line) where missing.

    Plain JSON numbers, so ``gd.data`` in the browser holds the values themselves (plotly
    keeps base64 typed arrays encoded there).
    """
    import polars as pl

    return values.cast(pl.Float64).fill_nan(None).to_list()


def line_trace(dates: list[str], values: pl.Series, name: str, **style: Any) -> go.Scatter:
    """A line of ``values`` over ``dates`` (ISO text), with gaps where values are missing;
    ``style`` goes to ``go.Scatter`` (``line``, ``fill``, ...)."""
    import plotly.graph_objects as go

    return go.Scatter(x=dates, y=chart_values(values), name=name, mode="lines", **style)


def style_figure(fig: go.Figure, title: str, height: int) -> go.Figure:
    """Common look: white template, title, fixed height (pixels), width following the page."""
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.01, "font": {"size": 15}},
        height=height,
        autosize=True,
        margin={"l": 60, "r": 20, "t": 44, "b": 36},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        hovermode="x unified",
    )
    return fig
