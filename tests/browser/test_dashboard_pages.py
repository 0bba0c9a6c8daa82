"""Each dashboard in headless Chromium, served by `titan dashboard` on a pipeline-filled store.

Every test loads the page, waits for the widgets (the ``titan-ready`` class), changes a
selection and reads the change from the DOM or from plotly's ``gd.data``; console errors,
page errors and requests beyond 127.0.0.1 fail it (see ``harness.watched_page``).

The tests on the filled store share one server that preheats every dashboard (one kernel
each, replaced after a visit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import DashboardServer, DashboardServers, add_fill

pytest_plugins = ["harness"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

READY = ".titan-dashboard.titan-ready"
NO_REFILL = ("--refill-delay", "600")
"""Longer than a test: a kernel taken by a visit is not replaced while the test runs (for a
test that visits each dashboard once)."""


@pytest.fixture(scope="module")
def server(filled_store: str, module_servers: DashboardServers) -> DashboardServer:
    """One server of every dashboard on the filled store, shared by this module's tests."""
    return module_servers.start("--store", filled_store)


def chart_data(page: Any, hook: str) -> list[dict[str, Any]]:
    """Name, first x and point count of every trace of the plot inside ``.titan-<hook>``."""
    return page.evaluate(
        """(hook) => {
            const gd = document.querySelector(`.titan-${hook} .js-plotly-plot`);
            return gd ? gd.data.map(t => ({name: t.name ?? null, type: t.type,
                        n: (t.y || t.z || []).length, x0: t.x ? String(t.x[0]) : null,
                        y: t.y ? Array.from(t.y).slice(0, 50).map(String) : null,
                        x: t.x ? Array.from(t.x).slice(0, 50).map(String) : null})) : null;
        }""",
        hook,
    )


def wait_for_chart(page: Any, hook: str) -> list[dict[str, Any]]:
    """Block until plotly has drawn traces inside ``.titan-<hook>``; return them."""
    page.wait_for_function(
        """(hook) => {
            const gd = document.querySelector(`.titan-${hook} .js-plotly-plot`);
            return !!(gd && gd.data && gd.data.length);
        }""",
        arg=hook,
    )
    return chart_data(page, hook)


def wait_for_chart_change(page: Any, hook: str, before: list[dict[str, Any]]) -> list[dict]:
    """Block until the plot's traces differ from ``before`` (polled in the page)."""
    page.wait_for_function(
        """([hook, before]) => {
            const gd = document.querySelector(`.titan-${hook} .js-plotly-plot`);
            if (!gd || !gd.data) return false;
            const now = JSON.stringify(gd.data.map(t => [t.name ?? null,
                t.x ? Array.from(t.x).slice(0, 50).map(String) : null,
                t.y ? Array.from(t.y).slice(0, 50).map(String) : null]));
            return now !== before;
        }""",
        arg=[hook, _fingerprint(before)],
    )
    return chart_data(page, hook)


def _fingerprint(data: list[dict[str, Any]]) -> str:
    import json

    return json.dumps([[t["name"], t["x"], t["y"]] for t in data], separators=(",", ":"))


def table_rows(page: Any, hook: str) -> list[list[str]]:
    """Cell texts of the ``titan-table`` rows inside ``.titan-<hook>``."""
    return page.evaluate(
        """(hook) => Array.from(document.querySelectorAll(
                `.titan-${hook} table.titan-table tbody tr`))
              .map(r => Array.from(r.cells).map(c => c.textContent.trim()))""",
        hook,
    )


def options(page: Any, hook: str) -> list[str]:
    return page.eval_on_selector(
        f".titan-{hook} select", "s => Array.from(s.options).map(o => o.textContent)"
    )


def selected(page: Any, hook: str) -> str:
    return page.eval_on_selector(
        f".titan-{hook} select", "s => s.options[s.selectedIndex].textContent"
    )


def shoot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_landing_page_links_every_dashboard(
    server: DashboardServer, watched_page: Any, screenshot_folder: Path
) -> None:
    page, _ = watched_page
    page.goto(server.url("index"))
    page.wait_for_selector(READY)
    hrefs = page.eval_on_selector_all("a.titan-link", "links => links.map(a => a.href)")
    assert [h.rsplit("/", 1)[-1] for h in hrefs] == [
        "pair_explorer.ipynb",
        "backtest_report.ipynb",
        "live_signals.ipynb",
    ]
    summary = page.inner_text(".titan-dashboard")
    assert "1 pair scans" in summary and "published model" in summary
    assert page.query_selector(".titan-notice") is None
    for href in hrefs:
        assert href.startswith(server.base)
    shoot(page, screenshot_folder, "index")


def test_pair_explorer_follows_the_chosen_pair(
    server: DashboardServer, watched_page: Any, screenshot_folder: Path
) -> None:
    page, _ = watched_page
    page.goto(server.url("pair_explorer"))
    page.wait_for_selector(READY)
    first = wait_for_chart(page, "pair-chart")
    pairs = options(page, "pair-select")
    assert len(pairs) >= 2
    y, x = pairs[0].split()[0].split("/")
    names = [t["name"] for t in first]
    assert names[:2] == [y, x]
    assert {"spread", "z-score", "static β", "Kalman β"} <= set(names)
    stats_before = page.inner_text(".titan-stats")
    assert "q-value" in stats_before and "half-life" in stats_before

    page.select_option(".titan-pair-select select", index=1)
    y2, x2 = pairs[1].split()[0].split("/")
    page.wait_for_function(
        """([y, x]) => {
            const gd = document.querySelector('.titan-pair-chart .js-plotly-plot');
            return !!(gd && gd.data && gd.data.length > 1 && gd.data[0].name === y
                      && gd.data[1].name === x);
        }""",
        arg=[y2, x2],
    )
    after = chart_data(page, "pair-chart")
    assert [t["name"] for t in after][:2] == [y2, x2]
    assert (
        next(t for t in after if t["name"] == "spread")["y"]
        != next(t for t in first if t["name"] == "spread")["y"]
    )
    page.wait_for_function(
        "before => document.querySelector('.titan-stats').innerText !== before",
        arg=stats_before,
    )
    zscore = next(t for t in after if t["name"] == "z-score")
    assert zscore["n"] > 100
    shoot(page, screenshot_folder, "pair_explorer")


def test_pair_explorer_preselects_run_and_pair_from_the_url(
    filled_store: str, server: DashboardServer, watched_page: Any
) -> None:
    from titan_lib.dashboards.pair_data import scan_pairs
    from titan_lib.dashboards.runs import successful_runs
    from titan_lib.stores import open_store

    page, _ = watched_page
    store = open_store(filled_store)
    scan = successful_runs(store, ("scan",))[0]
    second = scan_pairs(store, scan.run_id).keys()[1]  # the menu's second pair, not its default
    page.goto(server.url("pair_explorer", f"run={scan.run_id}&pair={second}"))
    page.wait_for_selector(READY)
    assert selected(page, "pair-select").split()[0] == second
    assert scan.run_id[-6:] in selected(page, "run-select")
    data = wait_for_chart(page, "pair-chart")
    assert [t["name"] for t in data][:2] == second.split("/")


def test_backtest_report_follows_run_heatmap_axes_and_trade_order(
    server: DashboardServer, watched_page: Any, screenshot_folder: Path
) -> None:
    page, _ = watched_page
    page.goto(server.url("backtest_report"))
    page.wait_for_selector(READY)
    runs = options(page, "run-select")
    assert any("05_backtest" in r for r in runs) and any("06_walk_forward" in r for r in runs)
    page.select_option(
        ".titan-run-select select", label=next(r for r in runs if "05_backtest" in r)
    )
    equity = wait_for_chart(page, "equity-chart")
    page.wait_for_function(
        "() => !!document.querySelector('.titan-equity-chart .js-plotly-plot')"
        "?.layout?.title?.text?.includes('05_backtest')"
    )
    equity = chart_data(page, "equity-chart")
    assert [t["name"] for t in equity] == ["equity", "drawdown %"]
    metrics = page.inner_text(".titan-metrics")
    assert "Sharpe" in metrics and "max drawdown" in metrics

    heat = wait_for_chart(page, "heatmap")
    axes = options(page, "heat-x")
    assert len(axes) >= 2
    before_x = heat[0]["x"]
    new_x = next(a for a in axes if a != selected(page, "heat-x") and a != selected(page, "heat-y"))
    page.select_option(".titan-heat-x select", label=new_x)
    heat_after = wait_for_chart_change(page, "heatmap", heat)
    assert heat_after[0]["x"] != before_x

    rows = table_rows(page, "trades")
    assert len(rows) >= 2
    page.click(".titan-trade-order button:has-text('ascending')")
    page.wait_for_function(
        """first => {
            const row = document.querySelector('.titan-trades table.titan-table tbody tr');
            return !!row && Array.from(row.cells).map(c => c.textContent.trim()).join('|')
                !== first;
        }""",
        arg="|".join(rows[0]),
    )
    assert table_rows(page, "trades")[0] != rows[0]
    assert sorted(map(tuple, table_rows(page, "trades"))) == sorted(map(tuple, rows))

    walk = next(r for r in runs if "06_walk_forward" in r)
    page.select_option(".titan-run-select select", label=walk)
    after = wait_for_chart_change(page, "equity-chart", equity)
    assert after[0]["n"] != equity[0]["n"] or after[0]["x0"] != equity[0]["x0"]
    in_out = wait_for_chart(page, "in-out-chart")
    assert {t["name"] for t in in_out} == {"in-sample", "out-of-sample"}
    shoot(page, screenshot_folder, "backtest_report")


def test_live_signals_shows_models_positions_and_refreshes(
    filled_store: str, server: DashboardServer, watched_page: Any, screenshot_folder: Path
) -> None:
    from titan_lib.core import latest_prices, list_models
    from titan_lib.core.execution import open_ledger
    from titan_lib.stores import open_store

    page, _ = watched_page
    store = open_store(filled_store)
    models = [m.model for m in list_models(store)]
    page.goto(server.url("live_signals"))
    page.wait_for_selector(READY)
    signals = table_rows(page, "signals")
    assert sorted(r[0] for r in signals) == sorted(m.model_id[:12] for m in models)
    assert all(r[4] in {"enter_long", "enter_short", "exit", "stop", "hold"} for r in signals)
    positions = table_rows(page, "positions")
    assert len(positions) == 2 * len(models)
    chart = wait_for_chart(page, "zscore-chart")
    if len(models) > 1:
        page.select_option(".titan-model-select select", index=1)
        chart = wait_for_chart_change(page, "zscore-chart", chart)

    read_at = page.inner_text(".titan-updated")
    positions_text = page.inner_text(".titan-positions")
    model = models[0]
    ledger = open_ledger(str(Path(filled_store) / "ledger.sqlite"))
    held = next(
        p for p in ledger.positions() if p.model_id == model.model_id and p.symbol == model.y
    )
    side = -1 if held.quantity > 0 else 1
    prices = (latest_prices(store, model.y).last_close, latest_prices(store, model.x).last_close)
    add_fill(ledger, model, "refresh-test", side=side, prices=prices)
    page.click(".titan-refresh")
    page.wait_for_function(
        "before => document.querySelector('.titan-updated').innerText !== before", arg=read_at
    )
    page.wait_for_function(
        "before => document.querySelector('.titan-positions').innerText !== before",
        arg=positions_text,
    )
    after = table_rows(page, "positions")
    assert after != positions
    quantity = {r[1]: float(r[2].replace(",", "")) for r in after}
    net = {p.symbol: p.quantity for p in ledger.positions() if p.model_id == model.model_id}
    for symbol, value in quantity.items():
        assert value == pytest.approx(net[symbol], rel=1e-3)
    shoot(page, screenshot_folder, "live_signals")


def test_empty_store_gives_a_friendly_message_on_every_dashboard(
    tmp_path: Path, serve_dashboard: Any, watched_page: Any, screenshot_folder: Path
) -> None:
    page, _ = watched_page
    server = serve_dashboard("--store", str(tmp_path / "empty"), *NO_REFILL)
    for name in ("index", "pair_explorer", "backtest_report", "live_signals"):
        page.goto(server.url(name))
        page.wait_for_selector(READY)
        text = page.inner_text(".titan-dashboard")
        assert "titan pipeline parameters/pipelines/demo.yaml" in text, name
        assert "Traceback" not in page.content()
        assert page.query_selector(".js-plotly-plot") is None
        if name == "pair_explorer":
            shoot(page, screenshot_folder, "empty_store")
