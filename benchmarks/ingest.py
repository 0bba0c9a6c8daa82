"""Benchmark: ingest N symbols x 2520 days from one wide CSV, then query two symbols.

Prints the ingest time and rows/s, against a reference measured in the same run: the raw
I/O floor (polars reads the same CSV and writes one Parquet file, no validation, no
per-symbol files, no manifest). The ingest runs in a fresh process, so its peak memory
(maximum resident set of that process, imports included) is the ingest's own; the seconds
of each phase are printed (read, validate, data files + manifest, serving tails, serving
documents, summary). Then the query time of ``load_prices`` for two symbols over 10
years, against a reference full scan of every stored file with a filter.

Then the panel read of a full-universe scan: every stored symbol straight from the Parquet
files (one lazy multi-file scan, no per-symbol Python loop) into the dates x symbols matrix.

Targets on 2 cores: the whole ingest <= 5 s for 500 symbols and <= 30 s for 3,000 symbols
(7.5 M rows); the query of two symbols <= 50 ms. The load average is printed next to each
figure (other processes on the machine slow it down).

Usage: python benchmarks/ingest.py [--symbols 500] [--days 2520]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from titan_lib.data import ingest, load_prices
from titan_lib.data.synthetic import make_universe


def ingest_twice(csv: str, store: str) -> dict[str, Any]:
    """Ingest ``csv`` into an empty ``store``, then again (nothing changes): seconds, the
    first ingest's phases, the load average and the peak memory of this process."""
    t0 = time.perf_counter()
    report = ingest(csv, store=store)
    ingest_s = time.perf_counter() - t0
    load = os.getloadavg()[0]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    again = ingest(csv, store=store)
    reingest_s = time.perf_counter() - t0
    return {
        "ingest_s": ingest_s,
        "phases": report.phases,
        "rows_added": report.rows_added,
        "load": load,
        "peak_mb": peak_mb,
        "reingest_s": reingest_s,
        "reingest_added": again.rows_added,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--child-ingest", nargs=2, metavar=("CSV", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_ingest:
        print(json.dumps(ingest_twice(*args.child_ingest)))
        return
    from titan_lib.pairs import price_panel

    universe = make_universe(args.symbols, args.days, n_pairs=10, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "universe.csv"
        universe.wide().write_csv(csv)
        rows = args.symbols * args.days
        size_mb = csv.stat().st_size / 1e6
        print(
            f"input: {args.symbols} symbols x {args.days} days = {rows:,} prices, "
            f"wide CSV {size_mb:.1f} MB"
        )

        t0 = time.perf_counter()
        raw = pl.read_csv(csv)
        raw.write_parquet(Path(tmp) / "floor.parquet")
        floor_s = time.perf_counter() - t0
        del raw

        store = str(Path(tmp) / "store")
        done = subprocess.run(
            [sys.executable, __file__, "--child-ingest", str(csv), store],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise SystemExit(f"the ingest failed:\n{done.stderr}")
        run = json.loads(done.stdout.strip().splitlines()[-1])
        assert run["rows_added"] == rows and run["reingest_added"] == 0, run
        ingest_s, reingest_s = run["ingest_s"], run["reingest_s"]

        a, b = universe.symbols[0], universe.symbols[1]
        first = universe.prices.get_column("date").min()
        end = universe.prices.get_column("date").max()
        start = end.replace(year=end.year - 10) if end.year - 10 >= first.year else first
        query_times = []
        for _ in range(20):
            t0 = time.perf_counter()
            frame = load_prices([a, b], start=start, end=end, store=store)
            query_times.append(time.perf_counter() - t0)
        query_s = statistics.median(query_times)

        scan_times = []
        files = [str(p) for p in (Path(store) / "prices" / "data").rglob("*.parquet")]
        for _ in range(5):
            t0 = time.perf_counter()
            pl.scan_parquet(files).filter(
                pl.col("symbol").is_in([a, b]) & pl.col("date").is_between(start, end)
            ).collect()
            scan_times.append(time.perf_counter() - t0)
        scan_s = statistics.median(scan_times)
        query_load = os.getloadavg()[0]

        t0 = time.perf_counter()
        panel = price_panel(load_prices(store=store), transform="log")
        panel_s = time.perf_counter() - t0
        panel_load = os.getloadavg()[0]

    target = 5 if args.symbols <= 500 else 30
    print(
        f"ingest:   {ingest_s:.3f} s  {rows / ingest_s:,.0f} rows/s  (target <= {target} s; raw "
        f"read+write floor {floor_s:.3f} s, ratio {ingest_s / floor_s:.1f}x)  "
        f"[load avg {run['load']:.2f}]"
    )
    phases = ", ".join(f"{name} {seconds:.2f}" for name, seconds in run["phases"].items())
    print(f"  phases (s): {phases}")
    print(f"  peak memory of the ingest process: {run['peak_mb']:,.0f} MB")
    print(f"re-ingest (no change): {reingest_s:.3f} s")
    print(
        f"query:    {query_s * 1e3:.1f} ms median of 20 for 2 symbols, {frame.height} rows, "
        f"{start} to {end} (target <= 50 ms; full-scan reference {scan_s * 1e3:.1f} ms, "
        f"ratio {query_s / scan_s:.2f}x)  [load avg {query_load:.2f}]"
    )
    print(
        f"panel read, all {len(panel.symbols)} symbols (store -> dates x symbols matrix): "
        f"{panel_s:.3f} s, {panel.values.shape[0]} dates  [load avg {panel_load:.2f}]"
    )


if __name__ == "__main__":
    main()
