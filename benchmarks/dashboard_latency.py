"""Time to interactive of each dashboard in headless Chromium, cold vs preheated kernels.

Usage: python benchmarks/dashboard_latency.py STORE [--loads N]

STORE must be filled by the main job (``titan pipeline parameters/pipelines/demo.yaml``).
For each dashboard, ``titan dashboard NAME`` is started twice: with ``--pool-size 0``
(cold: every page view starts and runs a kernel) and with the default preheated pool
(``--pool-size 1``, waiting until the pool is filled). Time to interactive is measured in
the browser from navigation start until the page carries ``titan-ready`` (data loaded,
controls wired) and, on dashboards with charts, plotly has drawn the first chart. The
browser cache is warm (one unmeasured load first), as for a returning visitor. Loads are
spaced so the pool can refill. Prints the median per dashboard and the preheated/cold
ratio, measured in the same run; the target is <= 3 s preheated on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

DASHBOARDS = ("index", "pair_explorer", "backtest_report", "live_signals")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
READY_JS = """(needsChart) => {
    if (!document.querySelector('.titan-dashboard.titan-ready')) return false;
    if (!needsChart) return true;
    const plots = document.querySelectorAll('.js-plotly-plot');
    return Array.from(plots).some(g => g.data && g.data.length);
}"""
CHARTED = {"pair_explorer", "backtest_report", "live_signals"}
"""Dashboards that draw at least one chart on a filled store: interactive once one is drawn."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, store: str, pool: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    titan = shutil.which("titan", path=str(Path(sys.executable).parent)) or "titan"
    port = free_port()
    proc = subprocess.Popen(
        [titan, "dashboard", name, "--store", store, "--port", str(port), "--pool-size", str(pool)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log.read_text()
        if ("is running at" in text and pool == 0) or "is filled with" in text:
            break
        time.sleep(0.2)
    time.sleep(2.0 if pool else 0.5)
    return proc, port


def time_to_interactive(context: object, url: str, needs_chart: bool) -> float:
    page = context.new_page()  # type: ignore[attr-defined]
    started = time.perf_counter()
    page.goto(url, wait_until="commit", timeout=180_000)
    page.wait_for_function(READY_JS, arg=needs_chart, timeout=180_000, polling=50)
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--loads", type=int, default=3, help="measured loads per setting")
    parser.add_argument(
        "--gap", type=float, default=15.0, help="seconds between loads (refill delay + preheat)"
    )
    args = parser.parse_args()
    os.environ.setdefault(
        "NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "numba")
    )
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / "titan-dashboard-bench"
    logs.mkdir(parents=True, exist_ok=True)
    print(f"time to interactive, median of {args.loads} loads (cpu count {os.cpu_count()})")
    print(f"{'dashboard':<16} {'cold s':>8} {'preheated s':>12} {'ratio':>7}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
        )
        for name in DASHBOARDS:
            medians = {}
            for label, pool in (("cold", 0), ("preheated", 1)):
                proc, port = start(name, args.store, pool, logs / f"{name}-{label}.log")
                url = f"http://127.0.0.1:{port}/voila/render/{name}.ipynb"
                context = browser.new_context()
                try:
                    charted = name in CHARTED
                    time_to_interactive(context, url, charted)  # warms the browser cache
                    samples = []
                    for _ in range(args.loads):
                        time.sleep(args.gap)
                        samples.append(time_to_interactive(context, url, charted))
                finally:
                    context.close()
                    proc.terminate()
                    proc.wait(timeout=30)
                medians[label] = statistics.median(samples)
            ratio = medians["preheated"] / medians["cold"]
            print(
                f"{name:<16} {medians['cold']:>8.2f} {medians['preheated']:>12.2f} {ratio:>7.2f}",
                flush=True,
            )
        browser.close()
    print("target: <= 3 s preheated on 2 cores")


if __name__ == "__main__":
    main()
