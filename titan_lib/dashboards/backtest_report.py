"""The backtest report dashboard: one backtest or walk-forward run.

Controls: the run; the sweep heatmap's axes and metric; the trade list's sort column and
direction. The page shows the metrics, equity and drawdown, in-sample vs out-of-sample
per walk-forward window, the sweep heatmap and the trade list.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects  # noqa: F401  (loaded before a visitor arrives)
import polars as pl

from titan_lib.dashboards.backtest_data import (
    BacktestView,
    backtest_view,
    sort_trades,
    sweep_axes,
)
from titan_lib.dashboards.catalog import DASHBOARDS
from titan_lib.dashboards.figures import new_output, show_figure
from titan_lib.dashboards.layout import (
    cards,
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
from titan_lib.dashboards.request import PageRequest
from titan_lib.dashboards.runs import preselect, successful_runs
from titan_lib.plots.backtest import equity_figure, in_out_figure, sweep_figure
from titan_lib.plots.formatting import Kind, column_kind, column_label, format_number

TITLE = DASHBOARDS["backtest_report"].title
SUBTITLE = (
    "Choose a backtest or walk-forward run: metrics, equity and drawdown, in-sample vs "
    "out-of-sample, the parameter sweep and every trade."
)
TRADE_COLUMNS = (
    "window",
    "pair",
    "side",
    "entry_date",
    "exit_date",
    "holding_days",
    "pnl",
    "exit_reason",
    "status",
)


def prepare() -> None:
    """Load what the first view needs (run by preheated kernels before a visitor arrives)."""
    from titan_lib.dashboards.figures import warm_up

    warm_up()


def build_backtest_report(request: PageRequest) -> widgets.Widget:
    """The backtest report page for ``request`` (run preselected from the URL)."""
    return guarded(lambda: _build(request), TITLE, SUBTITLE)


def _section(title: str) -> widgets.HTML:
    return widgets.HTML(f"<h3 style='margin:14px 0 4px 0'>{title}</h3>")


def _build(request: PageRequest) -> widgets.Widget:
    from titan_lib.stores.objects import open_store

    store = open_store(request.store)
    runs = successful_runs(store, ("backtest", "walk_forward"))
    chosen = preselect(runs, request.run, kind="backtest")
    if chosen is None:
        body = widgets.VBox([empty_store_notice("backtest or walk-forward runs", store.uri)])
        return mark_ready(page(TITLE, SUBTITLE, [], body))

    run_menu = control(
        widgets.Dropdown(
            options=[(c.label, c.run_id) for c in runs],
            value=chosen.run_id,
            description="Run",
            layout=widgets.Layout(width="520px"),
        ),
        "run-select",
    )
    metrics = widgets.HTML()
    metrics.add_class("titan-metrics")
    equity_chart = new_output("equity-chart")
    in_out_chart = new_output("in-out-chart")
    in_out_metric = control(widgets.Dropdown(description="compare"), "in-out-metric")
    heat_x = control(widgets.Dropdown(description="x axis"), "heat-x")
    heat_y = control(widgets.Dropdown(description="y axis"), "heat-y")
    heat_metric = control(widgets.Dropdown(description="metric"), "heat-metric")
    heatmap = new_output("heatmap")
    heat_note = widgets.HTML()
    in_out_note = widgets.HTML()
    in_out_note.add_class("titan-idle-windows")
    sort_by = control(widgets.Dropdown(description="sort by"), "trade-sort")
    descending = control(
        widgets.ToggleButtons(options=[("descending", True), ("ascending", False)], value=True),
        "trade-order",
    )
    trades = widgets.HTML()
    trades.add_class("titan-trades")
    trade_notes = widgets.Output()
    messages = widgets.VBox()
    state: dict[str, Any] = {"quiet": False}

    def show_run(run_id: str) -> None:
        view = backtest_view(store, run_id)
        state["view"] = view
        state["quiet"] = True
        try:
            fill_menus(view)
        finally:
            state["quiet"] = False
        metrics.value = cards({"sample": view.sample} | dict(view.metrics) | _degradation(view))
        if view.equity is not None:
            show_figure(equity_chart, equity_figure(view.equity, _equity_title(view)))
        else:
            _say(equity_chart, "This run saved no equity curve.")
        draw_in_out()
        draw_heatmap()
        draw_trades()

    def fill_menus(view: BacktestView) -> None:
        if view.windows is not None:
            compared = [
                c[3:]
                for c in view.windows.columns
                if c.startswith("is_") and f"oos_{c[3:]}" in view.windows.columns
            ]
            in_out_metric.options = [(column_label(c), c) for c in compared]
            in_out_metric.value = compared[0] if compared else None
        else:
            in_out_metric.options = []
        if view.sweep is not None:
            params, stats = sweep_axes(view.sweep)
            worded = [(column_label(p), p) for p in params]
            heat_x.options, heat_y.options = worded, list(worded)
            heat_metric.options = [(column_label(m), m) for m in stats]
            if len(params) >= 2:
                heat_x.value, heat_y.value = params[0], params[1]
            heat_metric.value = "sharpe" if "sharpe" in stats else (stats[0] if stats else None)
        else:
            heat_x.options = heat_y.options = heat_metric.options = []
        if view.trades is not None:
            columns = [c for c in TRADE_COLUMNS if c in view.trades.columns]
            sort_by.options = [(column_label(c), c) for c in columns]
            sort_by.value = "pnl" if "pnl" in columns else columns[0]

    def draw_in_out() -> None:
        view: BacktestView = state["view"]
        in_out_note.value = idle_windows_note(view.windows)
        if view.windows is None or not in_out_metric.value:
            _say(
                in_out_chart,
                "In-sample vs out-of-sample compares walk-forward windows: choose a "
                "walk-forward run to see it.",
            )
            return
        show_figure(in_out_chart, in_out_figure(view.windows, str(in_out_metric.value)))

    def draw_heatmap() -> None:
        view: BacktestView = state["view"]
        x, y, metric = heat_x.value, heat_y.value, heat_metric.value
        if view.sweep is None or not (x and y and metric):
            _say(heatmap, "This run saved no parameter sweep with two varying parameters.")
            return
        if x == y:
            _say(heatmap, "Choose two different parameters for the axes.")
            return
        hidden = [p for p in sweep_axes(view.sweep)[0] if p not in (x, y)]
        metric_words = escape(column_label(str(metric)))
        hidden_words = escape(", ".join(column_label(p) for p in hidden))
        plural = "s" * (len(hidden) != 1)
        heat_note.value = (
            f"<div class='titan-muted'>Each cell shows the best {metric_words} over "
            f"{hidden_words}, the parameter{plural} not on the axes.</div>"
            if hidden
            else ""
        )
        show_figure(heatmap, sweep_figure(view.sweep, str(x), str(y), str(metric)))

    def draw_trades() -> None:
        view: BacktestView = state["view"]
        if view.trades is None or view.trades.height == 0 or not sort_by.value:
            trades.value = "<div class='titan-muted'>No trades in this run.</div>"
            return
        table = sort_trades(view.trades, str(sort_by.value), bool(descending.value))
        shown = table.select([c for c in TRADE_COLUMNS if c in table.columns])
        trades.value = f"<div class='titan-muted'>{table.height} trades</div>" + html_table(shown)

    def when_ready(action: Any, output: widgets.Output) -> Any:
        def handler(_: Any) -> None:
            if not state["quiet"]:
                guard_callback(output, action)

        return handler

    show_run(chosen.run_id)
    run_menu.observe(lambda ch: guard_callback(equity_chart, lambda: show_run(ch["new"])), "value")
    in_out_metric.observe(when_ready(draw_in_out, in_out_chart), "value")
    for menu in (heat_x, heat_y, heat_metric):
        menu.observe(when_ready(draw_heatmap, heatmap), "value")
    sort_by.observe(when_ready(draw_trades, trade_notes), "value")
    descending.observe(when_ready(draw_trades, trade_notes), "value")
    if request.run and not chosen.run_id.startswith(request.run):
        messages.children = [
            notice(
                f"Run {request.run} is not a successful backtest in this store; "
                f"showing {chosen.label} instead."
            )
        ]
    body = widgets.VBox(
        [
            messages,
            metrics,
            equity_chart,
            _section("In-sample vs out-of-sample"),
            in_out_metric,
            in_out_chart,
            in_out_note,
            _section(
                "Parameter sweep (in-sample: each cell is scored on the data it is chosen on)"
            ),
            widgets.HBox(
                [heat_x, heat_y, heat_metric], layout=widgets.Layout(flex_flow="row wrap")
            ),
            heat_note,
            heatmap,
            _section("Trades"),
            widgets.HBox([sort_by, descending], layout=widgets.Layout(flex_flow="row wrap")),
            trade_notes,
            trades,
        ]
    )
    return mark_ready(page(TITLE, SUBTITLE, [run_menu], body))


def _equity_title(view: BacktestView) -> str:
    kind = "equity (walk-forward)" if view.windows is not None else "equity"
    return f"{view.sample} {kind} · {view.notebook} · {view.run_id[-6:]}"


DEGRADATION_LABELS = {
    "in_sample": "in-sample {}",
    "out_of_sample": "out-of-sample {}",
    "is_minus_oos": "in-sample minus out-of-sample {}",
    "oos_over_is": "out-of-sample / in-sample {}",
    "windows": "windows that traded",
}
"""Walk-forward degradation figures in words (``{}`` is the objective, e.g. Sharpe)."""


def _degradation(view: BacktestView) -> dict[str, Any]:
    """Walk-forward degradation figures as card entries, labelled and written out (means
    over the windows that traded)."""
    objective = str(view.degradation.get("objective") or "")
    words = column_label(objective) if objective else "objective"
    cards: dict[str, Any] = {}
    for key, value in view.degradation.items():
        if key not in DEGRADATION_LABELS or not isinstance(value, int | float):
            continue
        kind: Kind = (
            "count"
            if key == "windows"
            else "ratio"
            if key == "oos_over_is"
            else column_kind(objective)
        )
        written = format_number(value, kind)
        cards[DEGRADATION_LABELS[key].format(words)] = written
    return cards


def _say(output: widgets.Output, message: str) -> None:
    from IPython.display import display

    output.clear_output(wait=True)
    with output:
        display(notice(message))


def idle_windows_note(windows: pl.DataFrame | None) -> str:
    """A sentence on the walk-forward test windows without trades (empty when none)."""
    if windows is None or "oos_n_trades" not in windows.columns or windows.height == 0:
        return ""
    idle = windows.filter(pl.col("oos_n_trades").fill_null(0) == 0).height
    if idle == 0:
        return ""
    return (
        f"<div class='titan-muted'>{idle} of {windows.height} test windows had no trades: "
        "the spread never moved past the entry band there, so the window earned nothing and "
        "ratios such as Sharpe are undefined (no bar is drawn).</div>"
    )
