"""The pair explorer dashboard: one pair of a scan in depth.

Controls: the scan run, the pair (best q-value first), the z-score window and the
entry/exit bands. The page shows the pair's statistics card and one chart of prices,
spread, z-score with bands and static vs Kalman hedge ratio, with market regimes shaded.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects  # noqa: F401  (loaded before a visitor arrives)
import polars as pl

from titan_lib.dashboards.catalog import DASHBOARDS
from titan_lib.dashboards.figures import new_output, show_figure
from titan_lib.dashboards.layout import (
    cards,
    control,
    empty_store_notice,
    format_value,
    guard_callback,
    guarded,
    mark_ready,
    notice,
    page,
)
from titan_lib.dashboards.pair_data import (
    market_regimes,
    pair_series,
    pair_stats,
    regime_spans,
    scan_pairs,
)
from titan_lib.dashboards.request import PageRequest
from titan_lib.dashboards.runs import preselect, successful_runs
from titan_lib.plots.formatting import column_label
from titan_lib.plots.pairs import pair_figure

TITLE = DASHBOARDS["pair_explorer"].title
SUBTITLE = (
    "Choose a pair scan and a pair: prices, spread, z-score with entry/exit bands, "
    "static vs Kalman hedge ratio; shaded periods are stressed market regimes."
)
Z_WINDOWS = (20, 60, 120, 250)
MAX_PAIRS = 200


def prepare() -> None:
    """Load and compile what the first view needs (run by preheated kernels before a
    visitor arrives): plotly's JSON path, the Kalman filter and the z-score."""
    import numpy as np

    from titan_lib.core.zscore import ZScoreSpec
    from titan_lib.dashboards.figures import warm_up
    from titan_lib.pairs import kalman_hedge_ratio
    from titan_lib.signals import zscores

    warm_up()
    legs = np.linspace(1.0, 2.0, 8)
    kalman_hedge_ratio(legs, legs[::-1])
    zscores(pl.Series(legs), ZScoreSpec.rolling(3))


PAIR_NOTES = (
    "<div class='titan-muted titan-pair-notes' style='margin:4px 0 8px 0;max-width:900px'>"
    "<b>Which number matters: the q-value.</b> The p-value is this pair's own "
    "cointegration test, but a scan tests hundreds of pairs, so some p-values are small by "
    "chance. The q-value corrects for that: among the pairs with a q-value below 0.05, at "
    "most about 5% are expected to be false discoveries. Rank and trust pairs by q-value. "
    "<b>Static vs Kalman β</b> (bottom panel): the static hedge ratio is one number fitted "
    "over the whole scan window and defines the spread shown; the Kalman hedge ratio is "
    "re-estimated each day from past prices only. When the two drift apart, the pair's "
    "relation is changing. Shaded periods are non-calm market regimes (see the legend)."
    "</div>"
)


def build_pair_explorer(request: PageRequest) -> widgets.Widget:
    """The pair explorer page for ``request`` (run and pair preselected from the URL)."""
    return guarded(lambda: _build(request), TITLE, SUBTITLE)


def _build(request: PageRequest) -> widgets.Widget:
    from titan_lib.stores.objects import open_store

    store = open_store(request.store)
    scans = successful_runs(store, ("scan",))
    chosen = preselect(scans, request.run)
    if chosen is None:
        return mark_ready(
            page(TITLE, SUBTITLE, [], widgets.VBox([empty_store_notice("pair scans", store.uri)]))
        )
    regime_runs = successful_runs(store, ("regimes",))
    regimes = market_regimes(store, regime_runs[0].run_id) if regime_runs else None

    run_menu = control(
        widgets.Dropdown(
            options=[(c.label, c.run_id) for c in scans],
            value=chosen.run_id,
            description="Scan run",
            layout=widgets.Layout(width="460px"),
        ),
        "run-select",
    )
    pair_menu = control(
        widgets.Dropdown(description="Pair", layout=widgets.Layout(width="300px")), "pair-select"
    )
    window_menu = control(
        widgets.Dropdown(
            options=list(Z_WINDOWS),
            value=60,
            description="z window",
            layout=widgets.Layout(width="170px"),
        ),
        "window-select",
    )
    entry = control(
        widgets.FloatSlider(value=2.0, min=0.5, max=4.0, step=0.25, description="entry ±"),
        "entry",
    )
    exit_band = control(
        widgets.FloatSlider(value=0.5, min=0.0, max=2.0, step=0.25, description="exit ±"),
        "exit",
    )
    messages = widgets.VBox()
    stats = widgets.HTML()
    stats.add_class("titan-stats")
    chart = new_output("pair-chart")
    state: dict[str, Any] = {}

    if request.run and chosen.run_id != request.run and not chosen.run_id.startswith(request.run):
        messages.children = [
            notice(
                f"Run {request.run} is not a successful scan in this store; "
                "showing the newest scan instead."
            )
        ]

    def load_scan(run_id: str, wanted_pair: str | None = None) -> None:
        scan = scan_pairs(store, run_id)
        state["scan"] = scan
        keys = scan.keys()[:MAX_PAIRS]
        labels = []
        for key, row in zip(keys, scan.pairs.head(MAX_PAIRS).iter_rows(named=True), strict=True):
            name = "qvalue" if "qvalue" in row else "pvalue"
            q = row.get(name)
            tag = (
                f"  ({column_label(name)} {format_value(q, name)})" if isinstance(q, float) else ""
            )
            labels.append((f"{key}{tag}", key))
        value = wanted_pair if wanted_pair in keys else keys[0]
        state["loading"] = True
        pair_menu.options = labels
        pair_menu.value = value
        state["loading"] = False
        draw_pair()

    def draw_pair() -> None:
        scan = state["scan"]
        row = scan.row(pair_menu.value)
        series = pair_series(store.uri, row, scan.transform, int(window_menu.value))
        state["series"], state["row"] = series, row
        stats.value = cards(pair_stats(row))
        draw_chart()

    def draw_chart() -> None:
        series: pl.DataFrame = state["series"]
        row = state["row"]
        first, last = series.get_column("date").min(), series.get_column("date").max()
        spans = regime_spans(regimes, first, last) if regimes is not None else []
        fig = pair_figure(
            series, str(row["y"]), str(row["x"]), float(entry.value), float(exit_band.value), spans
        )
        show_figure(chart, fig)

    def on_run(change: dict[str, Any]) -> None:
        guard_callback(chart, lambda: load_scan(change["new"]))

    def on_pair(change: dict[str, Any]) -> None:
        if not state.get("loading"):
            guard_callback(chart, draw_pair)

    def on_bands(change: dict[str, Any]) -> None:
        if exit_band.value >= entry.value:
            exit_band.value = max(0.0, entry.value - 0.25)
            return
        guard_callback(chart, draw_chart)

    load_scan(chosen.run_id, request.pair)
    if request.pair and pair_menu.value != request.pair:
        messages.children = (
            *messages.children,
            notice(
                f"Pair {request.pair} is not among this scan's {len(pair_menu.options)} best "
                f"pairs; showing {pair_menu.value} instead."
            ),
        )
    run_menu.observe(on_run, names="value")
    pair_menu.observe(on_pair, names="value")
    window_menu.observe(lambda _: guard_callback(chart, draw_pair), names="value")
    entry.observe(on_bands, names="value")
    exit_band.observe(on_bands, names="value")
    if regimes is None:
        messages.children = (
            *messages.children,
            notice("No regime run in this store yet: regimes are not shaded."),
        )
    body = widgets.VBox([messages, stats, widgets.HTML(PAIR_NOTES), chart])
    controls = [run_menu, pair_menu, window_menu, entry, exit_band]
    return mark_ready(page(TITLE, SUBTITLE, controls, body))
