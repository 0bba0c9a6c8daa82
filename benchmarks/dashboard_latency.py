"""Time to interactive of each dashboard in headless Chromium, cold vs preheated kernels.

Usage: python benchmarks/dashboard_latency.py STORE [--loads N]

STORE must be filled by the main job (``titan pipeline parameters/pipelines/demo.yaml``).
For each dashboard, ``titan dashboard NAME`` is started twice: with ``--pool-size 0``
(cold: every page view starts and runs a kernel) and with one preheated kernel
(``--pool-size 1``, waiting until the pool is filled). Time to interactive is measured in
the browser from navigation start until the page carries ``titan-ready`` (data loaded,
controls wired) and, on dashboards with charts, plotly has drawn the first chart. The
browser cache is warm (one unmeasured load first), as for a returning visitor. Loads are
spaced so the pool can refill. Prints the median per dashboard and the preheated/cold
ratio, measured in the same run; the target is <= 3 s preheated on 2 cores.

Then three visitors arrive back to back on one dashboard (``--team``), on a server with a
pool of 1 (the reference) and with the team-sized default pool
(:data:`titan_lib.dashboards.serve.TEAM_POOL`); ``--team-only`` measures only that.
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

from titan_lib.dashboards.serve import TEAM_POOL

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
VISITORS = 3
"""Visitors arriving back to back in the team measurement."""
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


def back_to_back(
    browser: object, name: str, store: str, pool: int, logs: Path, gap: float
) -> list[float]:
    """Time to interactive of ``VISITORS`` visitors arriving one right after the other
    (each opens the page as soon as the previous one can use it), on a server with
    ``pool`` preheated kernels that had time to fill."""
    proc, port = start(name, store, pool, logs / f"{name}-team-{pool}.log")
    url = f"http://127.0.0.1:{port}/voila/render/{name}.ipynb"
    charted = name in CHARTED
    contexts = [browser.new_context() for _ in range(VISITORS)]  # type: ignore[attr-defined]
    try:
        for context in contexts:  # each visitor's browser cache is warm
            time_to_interactive(context, url, charted)
            time.sleep(gap)
        return [time_to_interactive(context, url, charted) for context in contexts]
    finally:
        for context in contexts:
            context.close()
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--loads", type=int, default=3, help="measured loads per setting")
    parser.add_argument(
        "--gap", type=float, default=15.0, help="seconds between loads (refill delay + preheat)"
    )
    parser.add_argument(
        "--team",
        default="pair_explorer",
        help="dashboard for the back-to-back visitors measurement",
    )
    parser.add_argument(
        "--team-only", action="store_true", help="measure only the back-to-back visitors"
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
        for name in () if args.team_only else DASHBOARDS:
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
        print(f"\n{VISITORS} visitors back to back on {args.team}, time to interactive (s)")
        print(
            f"{'pool size':<10} " + " ".join(f"{f'visitor {i + 1}':>10}" for i in range(VISITORS))
        )
        team: dict[int, list[float]] = {}
        for pool in (1, TEAM_POOL):
            team[pool] = back_to_back(browser, args.team, args.store, pool, logs, args.gap)
            print(f"{pool:<10} " + " ".join(f"{t:>10.2f}" for t in team[pool]), flush=True)
        slowest = {pool: max(times) for pool, times in team.items()}
        print(
            f"slowest visitor, pool {TEAM_POOL} / pool 1 (reference): "
            f"{slowest[TEAM_POOL]:.2f} / {slowest[1]:.2f} = {slowest[TEAM_POOL] / slowest[1]:.2f}"
        )
        browser.close()
    print("target: <= 3 s preheated on 2 cores, for every one of the visitors")


if __name__ == "__main__":
    main()
