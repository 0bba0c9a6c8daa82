"""No kernel leak: preheated pool plus idle-kernel culling keep the kernel count bounded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["harness"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POOL_SIZE = 1
CULL_IDLE = 20
"""Longer than a page takes to connect its kernel on a busy machine: a kernel is culled only
once its page is gone (or never connected) for this long."""
CULL_INTERVAL = 2
LOADS = 20


def test_twenty_page_loads_leave_only_the_pool(
    tmp_path: Path, serve_dashboard: Any, browser: Any
) -> None:
    server = serve_dashboard(
        "index",
        "--store",
        str(tmp_path / "store"),
        "--pool-size",
        str(POOL_SIZE),
        "--cull-idle-timeout",
        str(CULL_IDLE),
        "--cull-interval",
        str(CULL_INTERVAL),
    )
    assert server.kernel_count() == POOL_SIZE
    context = browser.new_context()
    peak = 0
    for _ in range(LOADS):
        page = context.new_page()
        page.goto(server.url("index"), timeout=120_000)
        page.wait_for_selector(".titan-dashboard.titan-ready", timeout=120_000)
        # Closing without `beforeunload` sends no shutdown request: only culling frees it.
        page.close(run_before_unload=False)
        peak = max(peak, server.kernel_count())
    context.close()
    assert peak >= POOL_SIZE
    deadline = time.monotonic() + CULL_IDLE + 10 * CULL_INTERVAL + 60
    live = server.kernel_count()
    while live > POOL_SIZE and time.monotonic() < deadline:
        time.sleep(CULL_INTERVAL)
        live = server.kernel_count()
    assert live <= POOL_SIZE, f"{live} kernels still alive after {LOADS} page loads"
    assert peak <= POOL_SIZE + 1 or "Culling '" in server.log.read_text()
