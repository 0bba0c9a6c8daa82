"""No kernel leak: a page's kernel is shut down as soon as the page closes.

Culling is set far beyond the test's length, so only the page's own shutdown request
(Voila's unload beacon, which must pass the server's XSRF check) can free a kernel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["harness"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POOL_SIZE = 1
CULL_IDLE = 3600
"""Longer than the test: a kernel freed during it was shut down by its page, not culled."""
SHUTDOWN_SECONDS = 15.0
"""A closed page's kernel is gone within this long (the server waits for the kernel to
exit after asking it to shut down)."""
POLL_SECONDS = 0.25
LOADS = 4
KERNEL_OF_PAGE = (
    "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"
)
"""The id of the kernel serving a Voilà page, from the page's configuration."""


def wait_until(done: Callable[[], bool], seconds: float) -> None:
    """Poll ``done`` until it holds or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)


def test_closed_pages_shut_their_kernels_down(
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
        "--refill-delay",
        "0",
    )  # a visit's kernel is replaced at once: the next load need not start one
    assert server.kernel_count() == POOL_SIZE
    context = browser.new_context()
    refused: list[str] = []
    context.on(
        "requestfinished",
        lambda request: (
            refused.append(request.url)
            if "/voila/api/shutdown/" in request.url
            and (response := request.response()) is not None
            and response.status >= 400
            else None
        ),
    )
    for load in range(LOADS):
        page = context.new_page()
        page.goto(server.url("index"), timeout=120_000)
        page.wait_for_selector(".titan-dashboard.titan-ready", timeout=120_000)
        own = page.evaluate(KERNEL_OF_PAGE)
        assert own in server.kernel_ids()
        # the page in use plus the pool's replacement
        assert server.kernel_count() <= POOL_SIZE + 1
        page.close(run_before_unload=True)
        # the page's own kernel goes when the page does
        wait_until(lambda own=own: own not in server.kernel_ids(), SHUTDOWN_SECONDS)
        assert own not in server.kernel_ids(), f"load {load + 1}: the page's kernel lives on"
        live = server.kernel_count()
        assert live <= POOL_SIZE + 1, f"load {load + 1}: {live} kernels after the page closed"
    context.close()
    wait_until(lambda: server.kernel_count() <= POOL_SIZE, SHUTDOWN_SECONDS)
    live = server.kernel_count()
    log = server.log.read_text()
    assert not refused, f"shutdown requests refused: {refused}"
    assert "_xsrf" not in log, "the server refused a page's shutdown request"
    assert "Culling '" not in log
    assert live == POOL_SIZE, f"{live} kernels alive right after {LOADS} pages closed"
