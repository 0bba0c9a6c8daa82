"""Benchmark: walk-forward over a 500-symbol universe, pair selection by a scan per window.

Each of the ``--windows`` training windows (``--train`` bars, rolling) is scanned in full
(every pair, both directions, q-values over the window's universe); the best pairs pass the
q-value and half-life filters, their rule parameters are swept in sample and traded on the
next ``--test`` bars. Prints the whole walk-forward time (kernels compiled beforehand), the
part spent in the scans, pairs scanned per second, the pairs chosen per window, and a
reference measured in this run: one scan of a training window timed on its own.

Target on 2 cores: 500 symbols, 10 windows in <= 60 s.

Run: ``NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/walk_forward_universe.py``
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import polars as pl

GRID = {"entry": [1.5, 2.0], "exit": [0.0, 0.5], "window": [20, 40]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--train", type=int, default=504)
    parser.add_argument("--test", type=int, default=126)
    args = parser.parse_args()

    from titan_lib.backtest import selection as selection_module
    from titan_lib.backtest import walk_forward
    from titan_lib.data.synthetic import make_universe
    from titan_lib.pairs.scan import rank_pairs

    days = args.train + args.windows * args.test
    universe = make_universe(args.symbols, days, n_pairs=20, seed=2024, phi=0.9)
    prices = universe.prices

    small = make_universe(12, 300, n_pairs=2, seed=1, phi=0.9).prices  # compile everything
    walk_forward(small, grid=GRID, train=200, test=50, half_life=(1.0, 60.0))

    scan_seconds: list[float] = []
    engine = selection_module.engine_selector

    def timed_selector(train: pl.DataFrame) -> pl.DataFrame:
        started = time.perf_counter()
        chosen = engine(train)
        scan_seconds.append(time.perf_counter() - started)
        return chosen

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = walk_forward(
        prices,
        grid=GRID,
        train=args.train,
        test=args.test,
        max_pairs=5,
        max_qvalue=0.05,
        half_life=(1.0, 60.0),
        selector=timed_selector,
    )
    total_s = time.perf_counter() - started
    load_after = os.getloadavg()[0]

    first_dates = prices.get_column("date").unique().sort().head(args.train)
    window = prices.filter(pl.col("date").is_in(first_dates.implode()))
    started = time.perf_counter()
    one = rank_pairs(window, min_obs=252)
    one_s = time.perf_counter() - started

    n_pairs = args.symbols * (args.symbols - 1) // 2
    windows = result.windows
    planted = {(p.y, p.x) for p in universe.pairs} | {(p.x, p.y) for p in universe.pairs}
    chosen = result.selections
    hits = (
        sum((y, x) in planted for y, x in chosen.select("y", "x").iter_rows())
        if chosen.height
        else 0
    )
    print(
        f"walk_forward_universe: {args.symbols} symbols x {days} days, {windows.height} windows "
        f"(train {args.train}, test {args.test}, rolling), {n_pairs:,} pairs per window scanned "
        f"both ways, {len(next(iter(GRID.values()))) ** len(GRID)} rule combinations per pair"
    )
    print(
        f"whole walk-forward: {total_s:.2f} s (target <= 60 s on 2 cores); scans "
        f"{sum(scan_seconds):.2f} s over {len(scan_seconds)} windows "
        f"({len(scan_seconds) * n_pairs * 2 / sum(scan_seconds):,.0f} tests/s); rest "
        f"(sweeps, backtests, stitching) {total_s - sum(scan_seconds):.2f} s  "
        f"[load avg {load_before:.2f} -> {load_after:.2f}]"
    )
    print(
        f"reference, one training-window scan on its own: {one_s:.2f} s for {one.height:,} "
        f"pairs; walk-forward / (windows x one scan) = "
        f"{total_s / (windows.height * one_s):.2f}"
    )
    print(
        f"pairs chosen per window: {windows.get_column('n_pairs').to_list()} "
        f"({hits} of {chosen.height} are planted pairs); out-of-sample total return "
        f"{result.stats.get('total_return', float('nan')):.4f}"
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
