"""Addresses a visitor may type or follow: the server root, unknown dashboards and other
unknown addresses, unknown pairs and models in the query string; the way home from every
page; tab titles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from titan_lib.dashboards.catalog import DASHBOARDS
from titan_lib.dashboards.layout import main_job_command

pytest_plugins = ["harness"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

READY = ".titan-dashboard.titan-ready"


def link(page: Any, selector: str) -> str:
    """The address a click on the link ``selector`` goes to (its resolved href)."""
    return str(page.eval_on_selector(selector, "a => a.href"))


def test_root_unknown_pages_titles_and_the_way_home(
    tmp_path: Path, serve_dashboard: Any, browser: Any
) -> None:
    empty = str(tmp_path / "empty")
    server = serve_dashboard("--store", empty, "--pool-size", "0")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(120_000)
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(("data:", server.base)) else None,
    )

    page.goto(server.base + "/")
    page.wait_for_selector(READY)  # the root is the landing page, not a file list
    assert page.url == server.url("index")
    assert page.title() == DASHBOARDS["index"].title
    page.set_viewport_size({"width": 1280, "height": 300})  # shorter than the page
    whole = page.evaluate(
        """() => {
            const bottom = document.querySelector('.titan-dashboard')
                .getBoundingClientRect().bottom + window.scrollY;
            const boxes = Array.from(document.querySelectorAll('*')).filter(e =>
                ['auto', 'scroll'].includes(getComputedStyle(e).overflowY)
                && e.scrollHeight > e.clientHeight + 2);
            return {fits: document.documentElement.scrollHeight >= bottom, boxes: boxes.length};
        }"""
    )
    assert whole == {"fits": True, "boxes": 0}  # prints and screenshots whole
    page.set_viewport_size({"width": 1280, "height": 900})

    for name in ("pair_explorer", "backtest_report", "live_signals"):
        if name == "live_signals":  # reached through "Did you mean Live signals?"
            page.goto(server.base + "/voila/render/live_signals")
            assert link(page, "a.titan-suggestion") == server.url(name)
            page.click("a.titan-suggestion")
        else:
            page.goto(server.url(name))
        page.wait_for_selector(READY)
        assert page.url == server.url(name)
        assert page.title() == DASHBOARDS[name].title
        text = page.inner_text(".titan-dashboard")
        assert main_job_command(empty) in text, name  # the command for this store
        assert "--store" in main_job_command(empty)
        assert link(page, "a.titan-home") == server.url("index"), name
        if name == "pair_explorer":  # the home links all lead there: follow one
            page.click("a.titan-home")
            page.wait_for_selector(READY)
            assert page.url == server.url("index")

    unknown = (
        server.url("no_such_dashboard"),
        server.base + "/nope",
        server.base + "/voila/render/live_signals",  # a dashboard without .ipynb
        server.base + "/deep/unknown/path/page.html",
    )
    for address in unknown:  # the TITAN page, not tornado's bare 404 or Voila's 403
        response = page.goto(address)
        assert response is not None and response.status == 404, address
        assert "There is no such page" in page.inner_text("body"), address
        assert page.title() == "Page not found · TITAN dashboards", address
        assert page.get_attribute("a.titan-home", "href") == "/voila/render/index.ipynb"
    context.close()
    assert not outside, f"requests beyond this server: {outside}"


def test_unknown_pair_and_model_get_a_notice(
    filled_store: str, serve_dashboard: Any, watched_page: Any
) -> None:
    page, _ = watched_page
    server = serve_dashboard("--store", filled_store, "--pool-size", "0")
    page.goto(server.url("pair_explorer", "pair=NOPE/NADA"))
    page.wait_for_selector(READY)
    notices = page.inner_text(".titan-dashboard")
    assert "Pair NOPE/NADA is not among this scan's" in notices
    assert page.query_selector(".titan-pair-chart") is not None

    page.goto(server.url("live_signals", "model=ffffffffffff"))
    page.wait_for_selector(READY)
    assert "Model ffffffffffff is not a published model in this store" in page.inner_text(
        ".titan-dashboard"
    )


def test_a_token_protected_server_signs_visitors_in_on_a_titan_page(
    tmp_path: Path, serve_dashboard: Any, watched_page: Any
) -> None:
    page, _ = watched_page
    server = serve_dashboard(
        "index", "--store", str(tmp_path / "empty"), "--pool-size", "0", "--token", "s3cret"
    )
    page.goto(server.url("index"))
    text = page.inner_text("body")
    assert "TITAN dashboards" in text and "Access token" in text
    assert "jupyter server list" not in text.lower()
    page.fill("#password_input", "s3cret")
    page.click("button[type=submit]")
    page.wait_for_selector(READY)
    assert page.url == server.url("index")
