"""Showing plotly figures in a dashboard.

A figure is built as a plain ``go.Figure`` and shown in an ``ipywidgets.Output`` with the
``plotly_mimetype`` renderer: the browser draws it with the plotly.js bundled in the
``jupyterlab-plotly`` extension (served by Voilà, no CDN), and a new selection replaces
the figure. The chart's div (``.js-plotly-plot``) holds the drawn data as ``gd.data``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ipywidgets as widgets
    import plotly.graph_objects as go

PLOT_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}
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


def show_figure(output: widgets.Output, fig: go.Figure) -> None:
    """Replace what ``output`` shows with ``fig``."""
    output.clear_output(wait=True)
    with output:
        fig.show(renderer="plotly_mimetype", config=PLOT_CONFIG)
