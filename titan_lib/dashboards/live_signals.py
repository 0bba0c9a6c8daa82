"""The live-signals dashboard: served models, current signals, positions and P&L.

The table of signals has one row per served model (z-score, action, regime at the latest
serving prices); the chart shows the chosen model's z-score with its bands over the
serving history. Positions and P&L come from the order ledger. **Refresh** reads
everything again and shows the time of the read.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects  # noqa: F401  (loaded before a visitor arrives)
import polars as pl

from titan_lib.dashboards.catalog import DASHBOARDS
from titan_lib.dashboards.figures import new_output, show_figure
from titan_lib.dashboards.layout import (
    control,
    empty_store_notice,
    escape,
    guard_callback,
    guarded,
    html_table,
    mark_ready,
    notice,
    page,
)
from titan_lib.dashboards.live_data import LiveSnapshot, pair_name, read_snapshot, zscore_history
from titan_lib.dashboards.request import PageRequest
from titan_lib.plots.backtest import zscore_figure

TITLE = DASHBOARDS["live_signals"].title
SUBTITLE = (
    "Published models and what each would do now (z-score, action, regime), with open "
    "positions and P&L from the order ledger."
)


STALE_AFTER_DAYS = 4
"""Prices older than this many calendar days are called stale (a long weekend is not)."""
SIGNALS_LEGEND = (
    "<div class='titan-muted' style='margin:4px 0 10px 0;max-width:900px'>"
    "<b>z-score</b>: how far the pair's spread is from its recent mean, in standard "
    "deviations. <b>Action</b>: what the model's rules say at the latest close (enter long "
    "or short the spread, exit, stop out, or hold). <b>Target position</b>: where the rules "
    "want the pair to be: +1 long the spread (buy the first leg, sell the second), -1 short "
    "it, 0 flat. <b>Held now</b>: the position the order ledger holds (different from the "
    "target until an order fills). <b>Regime</b>: the market state the model's regime fit "
    "assigns to the latest close, numbered as in the pair explorer's shading.</div>"
)


def freshness_html(snap: LiveSnapshot, today: date) -> str:
    """When the page was read, how old its prices are (stale ones said plainly), and
    whether positions come from an order ledger (never a server path)."""
    dates = [d for d in snap.signals.get_column("as_of").to_list() if d]
    latest = max(dates) if dates else None
    age = (today - date.fromisoformat(str(latest)[:10])).days if latest else None
    if not snap.ledger.startswith("no ledger"):
        ledger = "positions from the order ledger"
    elif "configured" in snap.ledger:
        ledger = "no order ledger configured for this store (set TITAN_LEDGER)"
    else:
        ledger = "no orders placed yet"
    line = (
        f"<div class='titan-muted'>Read at <b>{escape(snap.read_at[:23].replace('T', ' '))} "
        f"UTC</b> · prices as of <b>{escape(latest or 'never')}</b> · {escape(ledger)}</div>"
    )
    if age is None or age <= STALE_AFTER_DAYS:
        return line
    return line + (
        "<div class='titan-notice titan-stale'>These prices are <b>stale</b>: the latest "
        f"close is from {escape(latest)}, {age:,} days ago. The signals below are what the "
        "models would have done then, not now; they become live once the serving prices "
        "are updated (the daily run).</div>"
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
    health = widgets.HTML()
    health.add_class("titan-health")
    chart = new_output("zscore-chart")
    state: dict[str, Any] = {"snapshot": snapshot, "quiet": False}

    def show(snap: LiveSnapshot) -> None:
        state["snapshot"] = snap
        status.value = freshness_html(snap, date.today())
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
        health.value = (
            html_table(snap.health)
            if snap.health.height
            else "<div class='titan-muted'>No health checks yet "
            "(<code>titan models monitor</code> or the daily run).</div>"
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
    messages: list[widgets.Widget] = []
    if request.model and not any(i.startswith(request.model) for i in snapshot.models):
        messages.append(
            notice(
                f"Model {request.model} is not a published model in this store; "
                f"showing {pair_name(snapshot.models[model_menu.value])} instead."
            )
        )
    model_menu.observe(on_model, "value")
    refresh.on_click(on_refresh)
    body = widgets.VBox(
        [
            *messages,
            status,
            widgets.HTML("<h3 style='margin:10px 0 4px 0'>Current signals</h3>"),
            signals,
            widgets.HTML(SIGNALS_LEGEND),
            chart,
            widgets.HTML("<h3 style='margin:14px 0 4px 0'>Open positions</h3>"),
            positions,
            widgets.HTML("<h3 style='margin:14px 0 4px 0'>P&amp;L per model</h3>"),
            pnl,
            widgets.HTML("<h3 style='margin:14px 0 4px 0'>Model health</h3>"),
            health,
        ]
    )
    return mark_ready(page(TITLE, SUBTITLE, [model_menu, refresh], body))
