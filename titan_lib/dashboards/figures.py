"""Showing plotly figures in a dashboard.

A figure is built by :mod:`titan_lib.plots` (the same charts the notebooks draw) and shown
in an ``ipywidgets.Output`` as an HTML output: a ``div`` and a small script that draws the
figure's JSON with the partial plotly.js bundle the page template loads
(``window.titanPlotly``, see :mod:`titan_lib.dashboards.plotly_bundle`); a new selection
replaces the output. The chart's div (``.js-plotly-plot``) then holds the drawn data as
``gd.data``. Output widgets are trusted, so the script runs; opened outside
``titan dashboard`` (no loader on the page) the output says where the chart is drawn
instead.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from titan_lib.plots.style import style_figure

if TYPE_CHECKING:
    import ipywidgets as widgets
    import plotly.graph_objects as go

PLOT_CONFIG: dict[str, Any] = {"displaylogo": False}
"""Not ``responsive``: a responsive chart takes its container's height, which an output
area does not have; the layout's height and the page width (``autosize``) size it."""


def new_output(name: str) -> widgets.Output:
    """An empty output area for one chart, tagged ``titan-<name>``, full page width."""
    import ipywidgets as widgets

    out = widgets.Output(layout=widgets.Layout(width="100%"))
    out.add_class(f"titan-{name}")
    return out


def figure_json(fig: go.Figure) -> str:
    """The figure's data, layout and the page's plot config as one JSON text."""
    layout_and_data = fig.to_json()
    return f'{layout_and_data[:-1]}, "config": {json.dumps(PLOT_CONFIG)}}}'


def figure_html(fig: go.Figure) -> str:
    """HTML that draws ``fig`` with the page's plotly.js (one div, one script).

    A chart in view is drawn at once; one below the fold is drawn when it scrolls into
    view or when the page is next idle, whichever comes first, so the charts a visitor
    sees first do not wait for the others.
    """
    chart_id = f"titan-chart-{uuid.uuid4().hex}"
    # "</" would end the script element early; "<\\/" is the same JSON string
    payload = figure_json(fig).replace("</", "<\\/")
    return (
        f'<div id="{chart_id}" class="titan-chart"><div class="titan-muted">'
        "Charts are drawn when this notebook is served by <code>titan dashboard</code>."
        "</div></div>"
        f"<script>(function () {{ var el = document.getElementById({json.dumps(chart_id)});"
        " if (!window.titanPlotly) { return; }"
        f" var fig = {payload};"
        " var drawn = false;"
        " function draw() { if (drawn) { return; } drawn = true;"
        " window.titanPlotly().then(function (Plotly) { el.textContent = '';"
        " return Plotly.newPlot(el, fig.data, fig.layout, fig.config); }); }"
        " var seen = new IntersectionObserver(function (entries) {"
        " if (entries.some(function (e) { return e.isIntersecting; })) {"
        " seen.disconnect(); draw(); } });"
        " seen.observe(el);"
        " requestIdleCallback(function () { seen.disconnect(); draw(); }, {timeout: 4000});"
        " })();</script>"
    )


def show_figure(output: widgets.Output, fig: go.Figure) -> None:
    """Replace what ``output`` shows with ``fig``.

    The figure is set as the output area's state (its ``outputs``), not captured from a
    ``display`` call: Voila's server then has no captured output to relay while it
    renders the page, which stalled its rendering of large figures.
    """
    output.outputs = (
        {"output_type": "display_data", "data": {"text/html": figure_html(fig)}, "metadata": {}},
    )


def warm_up() -> None:
    """Load what drawing a first figure needs, before a visitor arrives (preheated kernels)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True)
    fig.add_trace(go.Scatter(x=["2020-01-01", "2020-01-02"], y=[1.0, 2.0]), row=1, col=1)
    figure_html(style_figure(fig, "warm-up", height=100))
