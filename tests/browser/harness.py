"""Browser test harness: a store filled by the quick pipeline, `titan dashboard` servers and
headless Debian Chromium driven by Playwright. Test modules load it as a plugin
(``pytest_plugins = ["harness"]``), so session fixtures are shared between them.

- ``filled_store``: a copy of the session's quick pipeline store (``demo_pipeline`` in
  conftest, one real run per session), plus an
  order ledger with fills on the published models (through the ledger's own interface).
- ``serve_dashboard``: starts ``titan dashboard NAME --store ...`` on a free port and
  stops it at the end of the test; ``module_servers`` starts servers that the tests of a
  module share (the same options) and stops them after the module.
- ``watched_page``: a page that records console errors, page errors and any request that
  leaves 127.0.0.1; the test fails on any of them at teardown.
- Screenshots go to ``$TITAN_ARTIFACTS/screenshots`` (default ``<repo>/artifacts``); the
  folder is printed in the pytest terminal summary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_store, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
"""The main job (quick profile): the store every browser test reads."""
FILLED_STORE_ENV = "TITAN_DASHBOARD_TEST_STORE"
"""A store already filled by the quick pipeline (reused instead of running it again)."""
FAILED_RESOURCE = "Failed to load resource"
"""Chromium's console line for every failed response; those are judged by their response
(URL and status) instead."""
PAGE_TIMEOUT_MS = 120_000


def screenshots_dir() -> Path:
    """``$TITAN_ARTIFACTS/screenshots`` (default ``<repo>/artifacts/screenshots``)."""
    root = Path(os.environ.get("TITAN_ARTIFACTS") or REPO / "artifacts")
    folder = root / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Name the screenshot folder (a CI artefact) in the pytest terminal summary."""
    folder = screenshots_dir()
    shots = sorted(folder.glob("*.png"))
    terminalreporter.write_sep("-", "dashboard screenshots")
    terminalreporter.write_line(f"{len(shots)} screenshots in {folder}")


@pytest.fixture(scope="session")
def screenshot_folder() -> Path:
    """Where the tests save their screenshots."""
    return screenshots_dir()


def titan_executable() -> str:
    found = shutil.which("titan", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("the titan command is not installed in this environment")
    return found


def fill_ledger(store: str) -> None:
    """Record one filled order per published model in the store's SQLite ledger.

    Goes through the ledger interface (claim, then fill), as the execution service does;
    the fills are priced at the serving closes 20 bars before the last one, so the
    positions carry a P&L.
    """
    from titan_lib.core import latest_prices, list_models
    from titan_lib.core.execution import open_ledger
    from titan_lib.stores import open_store

    opened = open_store(store)
    ledger = open_ledger(str(Path(store) / "ledger.sqlite"))
    for n, published in enumerate(list_models(opened)):
        model = published.model
        y_close = latest_prices(opened, model.y).close[-20]
        x_close = latest_prices(opened, model.x).close[-20]
        add_fill(
            ledger, model, f"seed-{n}", side=1 if n % 2 == 0 else -1, prices=(y_close, x_close)
        )


def add_fill(ledger: Any, model: Any, key: str, side: int, prices: tuple[float, float]) -> None:
    """Claim an order for ``model`` to ``side`` and record its fill at ``prices``."""
    from titan_lib.core.execution import Fill, FillLeg, Order, OrderLeg, OrderRequest
    from titan_lib.core.execution.ledger import fill_id_for, order_id_for, utc_now_iso

    request = OrderRequest(model_id=model.model_id, notional=100_000.0, target_position=side)
    order_id, client_id = order_id_for("dashboard-tests", key)
    legs = model.leg_quantities(100_000.0, prices[0], prices[1], side=side)
    now = utc_now_iso()
    order = Order(
        order_id=order_id,
        client_order_id=client_id,
        principal="dashboard-tests",
        request=request,
        request_hash=request.fingerprint(),
        status="pending",
        created_at=now,
        updated_at=now,
        target_position=side,
        legs=(OrderLeg(model.y, legs.y_quantity), OrderLeg(model.x, legs.x_quantity)),
    )
    ledger.claim_order(order)
    ledger.record_fill(
        Fill(
            fill_id=fill_id_for(order_id),
            order_id=order_id,
            model_id=model.model_id,
            legs=(
                FillLeg(model.y, legs.y_quantity, prices[0]),
                FillLeg(model.x, legs.x_quantity, prices[1]),
            ),
            filled_at=now,
            broker="paper",
        )
    )


@pytest.fixture(scope="session")
def filled_store(demo_pipeline: tuple[Any, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of the session's quick pipeline store, plus fills in its order ledger."""
    given = os.environ.get(FILLED_STORE_ENV)
    if given:
        return given
    _, source = demo_pipeline
    store = copy_store(source, tmp_path_factory.mktemp("dashboard-store") / "store")
    fill_ledger(store)
    return store


@dataclass
class DashboardServer:
    """A running ``titan dashboard``: its process and base URL."""

    process: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str, query: str = "") -> str:
        return f"{self.base}/voila/render/{name}.ipynb" + (f"?{query}" if query else "")

    def kernel_ids(self) -> set[str]:
        """Ids of the live kernel processes started by this server (from the connection
        file, ``kernel-<id>.json``, on each kernel's command line)."""
        import psutil

        ids = set()
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                command = " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                continue
            if "ipykernel_launcher" in command:
                found = re.search(r"kernel-([0-9a-f-]+)\.json", command)
                ids.add(found.group(1) if found else f"pid-{child.pid}")
        return ids

    def kernel_count(self) -> int:
        """Live kernel processes started by this server."""
        return len(self.kernel_ids())


class DashboardServers:
    """Starts ``titan dashboard`` servers (arguments as for the CLI) and stops them all."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[DashboardServer] = []

    def start(self, *args: str, wait_for_pool: bool = True) -> DashboardServer:
        """Start a server; with ``wait_for_pool``, return once a preheated pool is filled
        (at once when ``--pool-size 0``)."""
        if "--pool-size" not in args:
            args = (*args, "--pool-size", "1")  # the machine running the tests is small
        pooled = args[args.index("--pool-size") + 1] != "0"
        port = free_port()
        log = self.logs / f"voila-{port}.log"
        process = subprocess.Popen(
            [titan_executable(), "dashboard", *args, "--port", str(port)],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env={**os.environ, "NUMBA_CACHE_DIR": str(REPO / ".cache" / "numba")},
        )
        server = DashboardServer(process, port, log)
        self.running.append(server)
        wait_for_port(port, timeout=60)
        if wait_for_pool and pooled:  # no pool to wait for without preheated kernels
            deadline = time.monotonic() + 120
            while "is filled with" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        return server

    def stop_all(self) -> None:
        for server in self.running:
            server.process.terminate()
        for server in self.running:
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)
        self.running.clear()


@pytest.fixture()
def serve_dashboard(tmp_path: Path) -> Iterator[Callable[..., DashboardServer]]:
    """Start ``titan dashboard`` (arguments as for the CLI); stopped after the test."""
    servers = DashboardServers(tmp_path)
    yield servers.start
    servers.stop_all()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServers]:
    """Servers shared by the tests of one module (started on first use, stopped after the
    module's last test): for tests that need the same server options."""
    servers = DashboardServers(tmp_path_factory.mktemp("dashboard-servers"))
    yield servers
    servers.stop_all()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@dataclass
class PageProblems:
    """What went wrong on a page: console errors, page errors, off-host requests."""

    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.errors, f"page errors: {self.errors}"
        assert not self.console, f"console errors: {self.console}"
        assert not self.external, f"requests beyond 127.0.0.1: {self.external}"
        assert not self.failed, f"failed responses: {self.failed}"


@pytest.fixture()
def watched_page(browser: Any) -> Iterator[tuple[Any, PageProblems]]:
    """A fresh page (1280x900) whose console errors, page errors and non-local requests
    fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    problems = PageProblems()

    def on_console(message: Any) -> None:
        # a failed resource is judged by its response (URL and status), below
        if message.type == "error" and not message.text.startswith(FAILED_RESOURCE):
            problems.console.append(message.text)

    def on_response(response: Any) -> None:
        if response.status >= 400:
            problems.failed.append((response.status, response.url))

    def on_request(request: Any) -> None:
        url = request.url
        if url.startswith(("http://", "https://", "ws://", "wss://")) and not url.split("/")[
            2
        ].startswith("127.0.0.1"):
            problems.external.append(url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.errors.append(str(error)))
    page.on("request", on_request)
    page.on("response", on_response)
    yield page, problems
    context.close()
    problems.assert_clean()
