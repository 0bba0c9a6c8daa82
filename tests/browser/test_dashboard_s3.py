"""Live signals on an S3 store (moto over HTTP), loaded many times in quick succession.

Every load must show the whole page: the table of signals and the chart, with no widget
that failed to render ("Click to show javascript error", "widget model not found"),
whether the visit took a preheated kernel (page rebuilt for the visit) or a fresh one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures.lambda_world import copy_store_to, world_store

pytest_plugins = ["harness"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOADS = 20
READY = ".titan-dashboard.titan-ready"
BROKEN_WIDGET = ("Click to show javascript error", "widget model not found")


def test_live_signals_on_s3_renders_whole_on_every_load(
    tmp_path: Path, s3_store: str, serve_dashboard: Any, watched_page: Any
) -> None:
    from titan_lib.core import list_models
    from titan_lib.stores.objects import open_store

    local, _ = world_store(tmp_path)  # ingested prices and published models
    copy_store_to(local, s3_store)
    models = list_models(open_store(s3_store))
    assert models
    page, problems = watched_page
    server = serve_dashboard(
        "live_signals", "--store", s3_store, "--pool-size", "2", "--refill-delay", "0"
    )  # a kernel taken by a load is replaced at once: the next loads need not wait for it
    for load in range(LOADS):
        page.goto(server.url("live_signals"))
        page.wait_for_selector(READY)
        page.wait_for_selector(".titan-zscore-chart .js-plotly-plot")
        text = page.inner_text("body")
        broken = [phrase for phrase in BROKEN_WIDGET if phrase in text]
        assert not broken, f"load {load + 1}: {broken}"
        rows = page.locator(".titan-signals table.titan-table tbody tr").count()
        assert rows == len(models), f"load {load + 1}: {rows} signal rows"
        assert not problems.console and not problems.errors, f"load {load + 1}"
