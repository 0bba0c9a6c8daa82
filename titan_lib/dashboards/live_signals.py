"""The live-signals dashboard: served models, current signals, positions and P&L.

The table of signals has one row per served model (z-score, action, regime at the latest
serving prices); the chart shows the chosen model's z-score with its bands over the
serving history. Positions and P&L come from the order ledger. **Refresh** reads
everything again and shows the time of the read.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl

from titan_lib.dashboards.catalog import DASHBOARDS
from titan_lib.dashboards.figures import chart_values, new_output, show_figure, style_figure
from titan_lib.dashboards.layout import (
    control,
    empty_store_notice,
    escape,
    guard_callback,
    guarded,
    html_table,
    mark_ready,
    page,
)
from titan_lib.dashboards.live_data import LiveSnapshot, pair_name, read_snapshot, zscore_history
from titan_lib.dashboards.request import PageRequest

TITLE = DASHBOARDS["live_signals"].title
SUBTITLE = (
    "Published models and what each would do now (z-score, action, regime), with open "
    "positions and P&L from the order ledger."
)


def prepare() -> None:
    """Load and compile what the first view needs (run by preheated kernels before a
    visitor arrives): plotly's JSON path and the vectorised signal rules."""
    from datetime import date, timedelta

    from titan_lib.core import SignalRules
    from titan_lib.core.zscore import ZScoreSpec
    from titan_lib.dashboards.figures import warm_up
    from titan_lib.signals import positions

    warm_up()
    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(8)]
    legs = pl.DataFrame({"date": days, "A": [1.0, 1.1, 1.3, 1.2, 1.0, 1.1, 1.4, 1.2], "B": 1.0})
    positions(
        legs,
        y="A",
        x="B",
        beta=1.0,
        zscore=ZScoreSpec.rolling(3),
        rules=SignalRules(entry=1.0, exit=0.2),
    )


def build_live_signals(request: PageRequest) -> widgets.Widget:
    """The live-signals page (a model preselected with ``?model=<id prefix>``)."""
    return guarded(lambda: _build(request), TITLE, SUBTITLE)


def zscore_figure(history: pl.DataFrame, title: str, entry: float, exit_band: float) -> go.Figure:
    """A model's z-score over its serving history with the entry and exit bands."""
    dates = history.get_column("date").cast(pl.String).to_list()
    fig = go.Figure(
        go.Scatter(
            x=dates,
            y=chart_values(history.get_column("z")),
            name="z-score",
            mode="lines",
        )
    )
    for level, dash in ((entry, "dash"), (-entry, "dash"), (exit_band, "dot"), (-exit_band, "dot")):
        fig.add_hline(y=level, line_dash=dash, line_width=1, line_color="#888")
    return style_figure(fig, title, height=340)


def _build(request: PageRequest) -> widgets.Widget:
    from titan_lib.stores.objects import open_store

    store = open_store(request.store)
    snapshot = read_snapshot(store)
    if not snapshot.models:
        body = widgets.VBox([empty_store_notice("published models", store.uri)])
        return mark_ready(page(TITLE, SUBTITLE, [], body))

    refresh = control(widgets.Button(description="Refresh", button_style="primary"), "refresh")
    model_menu = control(
        widgets.Dropdown(description="Model", layout=widgets.Layout(width="420px")),
        "model-select",
    )
    status = widgets.HTML()
    status.add_class("titan-updated")
    signals = widgets.HTML()
    signals.add_class("titan-signals")
    positions = widgets.HTML()
    positions.add_class("titan-positions")
    pnl = widgets.HTML()
    pnl.add_class("titan-pnl")
    chart = new_output("zscore-chart")
    state: dict[str, Any] = {"snapshot": snapshot, "quiet": False}

    def show(snap: LiveSnapshot) -> None:
        state["snapshot"] = snap
        status.value = (
            f"<div class='titan-muted'>Read at <b>{escape(snap.read_at)}</b> · prices updated "
            f"{escape(snap.prices_updated or 'never')} · ledger: {escape(snap.ledger)}</div>"
        )
        signals.value = html_table(snap.signals)
        positions.value = (
            html_table(snap.positions)
            if snap.positions.height
            else "<div class='titan-muted'>No open positions.</div>"
        )
        pnl.value = (
            html_table(snap.pnl)
            if snap.pnl.height
            else "<div class='titan-muted'>No fills in the ledger yet.</div>"
        )
        options = [
            (f"{pair_name(m)} · {model_id[:12]}", model_id) for model_id, m in snap.models.items()
        ]
        current = model_menu.value
        state["quiet"] = True
        model_menu.options = options
        ids = [v for _, v in options]
        wanted = next((i for i in ids if request.model and i.startswith(request.model)), None)
        model_menu.value = current if current in ids else wanted or ids[0]
        state["quiet"] = False
        draw_model()

    def draw_model() -> None:
        model = state["snapshot"].models[model_menu.value]
        history = zscore_history(store, model)
        title = f"{pair_name(model)} z-score ({model.model_id[:12]})"
        show_figure(chart, zscore_figure(history, title, model.rules.entry, model.rules.exit))

    def on_model(_: Any) -> None:
        if not state["quiet"]:
            guard_callback(chart, draw_model)

    def on_refresh(_: Any) -> None:
        guard_callback(chart, lambda: show(read_snapshot(store)))

    show(snapshot)
    model_menu.observe(on_model, "value")
    refresh.on_click(on_refresh)
    body = widgets.VBox(
        [
            status,
            widgets.HTML("<h3 style='margin:10px 0 4px 0'>Current signals</h3>"),
            signals,
            chart,
            widgets.HTML("<h3 style='margin:14px 0 4px 0'>Open positions</h3>"),
            positions,
            widgets.HTML("<h3 style='margin:14px 0 4px 0'>P&amp;L per model</h3>"),
            pnl,
        ]
    )
    return mark_ready(page(TITLE, SUBTITLE, [model_menu, refresh], body))
