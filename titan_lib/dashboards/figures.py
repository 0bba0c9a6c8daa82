"""Showing plotly figures in a dashboard.

A figure is built as a plain ``go.Figure`` and shown in an ``ipywidgets.Output`` as
plotly's MIME bundle (``application/vnd.plotly.v1+json``): the browser draws it with the
plotly.js bundled in the ``jupyterlab-plotly`` extension (served by Voilà, no CDN), and a
new selection replaces the figure. The chart's div (``.js-plotly-plot``) holds the drawn
data as ``gd.data``. The bundle is written directly rather than through ``fig.show()``,
whose renderer machinery takes seconds to import.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipywidgets as widgets
    import plotly.graph_objects as go

PLOT_CONFIG: dict[str, Any] = {"displaylogo": False}
"""Not ``responsive``: a responsive chart takes its container's height, which an output
area does not have; the layout's height and the page width (``autosize``) size it."""
PLOTLY_MIME = "application/vnd.plotly.v1+json"
TEMPLATE = "plotly_white"


def new_output(name: str) -> widgets.Output:
    """An empty output area for one chart, tagged ``titan-<name>``, full page width."""
    import ipywidgets as widgets

    out = widgets.Output(layout=widgets.Layout(width="100%"))
    out.add_class(f"titan-{name}")
    return out


def style_figure(fig: go.Figure, title: str, height: int) -> go.Figure:
    """Common look: white template, title, fixed height, width following the page."""
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


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """The MIME bundle that draws ``fig`` (data, layout and the page's plot config)."""
    return {PLOTLY_MIME: {**json.loads(fig.to_json()), "config": PLOT_CONFIG}}


def show_figure(output: widgets.Output, fig: go.Figure) -> None:
    """Replace what ``output`` shows with ``fig``.

    The figure is set as the output area's state (its ``outputs``), not captured from a
    ``display`` call: Voila's server then has no captured output to relay while it
    renders the page, which stalled its rendering of large figures.
    """
    output.outputs = ({"output_type": "display_data", "data": figure_bundle(fig), "metadata": {}},)


def warm_up() -> None:
    """Load what drawing a first figure needs, before a visitor arrives (preheated kernels)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True)
    fig.add_trace(go.Scatter(x=["2020-01-01", "2020-01-02"], y=[1.0, 2.0]), row=1, col=1)
    figure_bundle(style_figure(fig, "warm-up", height=100))
