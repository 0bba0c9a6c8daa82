"""The live-signals dashboard: served models, current signals, positions and P&L.

The table of signals has one row per served model (z-score, action, regime at the latest
serving prices); the chart shows the chosen model's z-score with its bands over the
serving history. Positions and P&L come from the order ledger. **Refresh** reads
everything again and shows the time of the read.

With a push endpoint (``titan dashboard --push-url``, ``TITAN_PUSH_URL``; the token from
``TITAN_PUSH_TOKEN``) the page subscribes to every served model's ``signals:<model_id>``
channel and to ``fills`` (:mod:`titan_lib.dashboards.live_feed`) and reads everything
again when an event is pushed, without Refresh; a line says whether the page is live
(connected, the last push) or not (no endpoint, disconnected and reconnecting).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import date
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects  # noqa: F401  (loaded before a visitor arrives)

from titan_lib.core.push.channels import signal_channel
from titan_lib.dashboards.catalog import DASHBOARDS
from titan_lib.dashboards.figures import new_output, show_figure
from titan_lib.dashboards.layout import (
    control,
    empty_store_notice,
    escape,
    format_value,
    guard_callback,
    guarded,
    html_table,
    mark_ready,
    notice,
    page,
)
from titan_lib.dashboards.live_data import LiveSnapshot, pair_name, read_snapshot, zscore_history
from titan_lib.dashboards.live_feed import (
    PUSH_URL_ENV,
    FeedStatus,
    PushEvent,
    PushFeed,
    PushSettings,
    clock,
    kernel_loop,
    run_in_kernel,
    stop_feed,
)
from titan_lib.dashboards.request import QUERY_ENV, PageRequest
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


PUSH_COALESCE_SECONDS = 0.2
"""Events pushed within this many seconds of each other (one per model after a price
update) lead to one read of the store."""
FEED_NAME = "live_signals"
NO_PUSH_ENDPOINT = (
    "no push endpoint configured (start the server with titan dashboard --push-url "
    f"ws://HOST:PORT/ws, or set {PUSH_URL_ENV})"
)
NEEDS_KERNEL = "live updates need a Jupyter kernel (Voilà or JupyterLab)"


def live_status_html(status: FeedStatus, last_push: str | None = None) -> str:
    """The line saying whether the page updates by itself (``data-state`` is the
    feed's state), with what was pushed last."""
    head, said, rest = status.describe().partition(": ")
    text = f"<b>{escape(head)}</b>: {escape(rest)}" if said else escape(head)
    if status.live or last_push:
        text += (
            f" Last push at <b>{clock(status.last_push)} UTC</b>: {escape(last_push)}."
            if last_push
            else " No push yet: a signal is pushed when it changes (checked every 5 minutes)."
        )
    word = "titan-live-on" if status.live else "titan-live-off"
    return f"<div class='titan-muted {word}' data-state='{status.state}'>{text}</div>"


def visit_known() -> bool:
    """Whether this page is built for a visitor: always, except in a preheated kernel
    before the visit (Voilà sets the request's ``QUERY_STRING`` when it arrives)."""
    return os.environ.get("VOILA_PREHEAT") != "True" or QUERY_ENV in os.environ


def pushed_summary(event: PushEvent, models: dict[str, Any]) -> str:
    """What an event says, in words: the model's pair, z-score, action and date for a
    signal; the pair and target for a fill."""
    data = event.data
    request = data.get("request")
    model_id = str(
        data.get("model_id") or (request.get("model_id") if isinstance(request, dict) else "")
    )
    model = models.get(model_id)
    name = pair_name(model) if model is not None else model_id[:12]
    if event.event == "signal":
        return (
            f"{name} signal: z-score {format_value(data.get('zscore'), 'zscore')}, "
            f"{data.get('action') or '-'}, as of {data.get('as_of') or '-'}"
        )
    if event.event == "fill":
        return f"{name} order filled (target {data.get('target_position', '-')})"
    return f"{event.event} on {event.channel}"


def follow_pushes(
    status_line: widgets.HTML,
    chart: widgets.Output,
    read: Callable[[], LiveSnapshot],
    show: Callable[[LiveSnapshot], None],
    current: Callable[[], LiveSnapshot],
) -> None:
    """Subscribe the page to pushed signals and fills when a push endpoint is set.

    A pushed event leads to one read of the store (``read``, in a worker thread, events
    that arrive together coalesced) whose snapshot is shown (``show``, on the kernel's
    main thread; a failure shows in ``chart`` as a Refresh would). Without an endpoint,
    or when it cannot be used, ``status_line`` says so and the page updates on Refresh.
    """
    from titan_lib.exceptions import TitanError

    stop_feed(FEED_NAME)
    try:
        settings = PushSettings.from_env()
    except TitanError as exc:
        status_line.value = live_status_html(FeedStatus("off", detail=exc.message))
        return
    if settings is None:
        status_line.value = live_status_html(FeedStatus("off", detail=NO_PUSH_ENDPOINT))
        return
    if not visit_known():
        # a preheated kernel's page is built again for its visitor, who gets the feed
        status_line.value = live_status_html(FeedStatus("connecting", url=settings.url))
        return
    if kernel_loop() is None:
        status_line.value = live_status_html(FeedStatus("off", detail=NEEDS_KERNEL))
        return
    last: dict[str, Any] = {"summary": None, "reading": False, "task": None, "state": None}

    def on_status(status: FeedStatus) -> None:
        status_line.value = live_status_html(status, last["summary"])
        if status.live and last["state"] not in (None, "live"):
            read_soon()  # back after a gap: what was pushed meanwhile is in the store
        if status.live or last["state"] is not None:
            last["state"] = status.state

    def read_soon() -> None:
        if not last["reading"]:
            last["reading"] = True
            last["task"] = asyncio.ensure_future(read_again())

    async def read_again() -> None:
        await asyncio.sleep(PUSH_COALESCE_SECONDS)
        last["reading"] = False
        reading = asyncio.get_running_loop().run_in_executor(None, read)
        await asyncio.wait([reading])
        guard_callback(chart, lambda: show(reading.result()))
        feed.want(signal_channel(m) for m in current().models)

    def on_event(event: PushEvent) -> None:
        last["summary"] = pushed_summary(event, current().models)
        on_status(feed.status)
        if event.event in ("signal", "fill"):
            read_soon()

    feed = PushFeed(settings, on_event=on_event, on_status=on_status)
    feed.want([*(signal_channel(m) for m in current().models), "fills"])
    if not run_in_kernel(FEED_NAME, feed):
        status_line.value = live_status_html(FeedStatus("off", detail=NEEDS_KERNEL))


def prepare() -> None:
    """Load what the first view needs (run by preheated kernels before a visitor
    arrives): plotly's JSON path. The signals and the chart's z-score path come from the
    standard-library serving evaluator, which needs no warming up."""
    from titan_lib.dashboards.figures import warm_up

    warm_up()


def build_live_signals(request: PageRequest) -> widgets.Widget:
    """The live-signals page (a model preselected with ``?model=<id prefix>``)."""
    return guarded(lambda: _build(request), TITLE, SUBTITLE)


def _build(request: PageRequest) -> widgets.Widget:
    from titan_lib.stores.objects import open_store

    store = open_store(request.store)
    snapshot = read_snapshot(store)
    if not snapshot.models:
        stop_feed(FEED_NAME)
        body = widgets.VBox([empty_store_notice("published models", store.uri)])
        return mark_ready(page(TITLE, SUBTITLE, [], body))

    refresh = control(widgets.Button(description="Refresh", button_style="primary"), "refresh")
    model_menu = control(
        widgets.Dropdown(description="Model", layout=widgets.Layout(width="420px")),
        "model-select",
    )
    status = widgets.HTML()
    status.add_class("titan-updated")
    live = widgets.HTML()
    live.add_class("titan-live-status")
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
    follow_pushes(live, chart, lambda: read_snapshot(store), show, lambda: state["snapshot"])
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
            live,
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
