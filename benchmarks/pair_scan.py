"""Benchmark: every pair of a universe, both directions, store -> ranked table -> store.

For each universe size (``--scaling`` sizes, then ``--symbols``), measured in this run:

- the whole scan (prices read from the store, Engle-Granger of every pair in both directions
  with exact AIC lag search, q-values over every pair, spread statistics of the pairs that
  can be selected, the ranked table written to the store in Parquet row groups): seconds,
  tests per second, and the peak memory (maximum resident set) of the process that ran it;
  its CPU seconds (all threads) and the wall and CPU seconds of each phase (read, panel,
  plan, BLAS products, Engle-Granger kernel, p/q-values and ranking, statistics, table,
  write), with the load average, so a run on a busy machine can be read; the time to load
  (or compile) the kernels is paid before the timing and printed apart;
- the same scan with spread statistics for every tested pair (the default of ``scan``);
- statsmodels ``coint`` on a seeded sample of pairs in both directions: time per test, the
  ratio to ours, and the largest |t| and |p| differences.

Each size runs in a fresh process (a store prepared by another process), so the memory
figure is the scan's own. Then the same scan on a Dask ``LocalCluster`` with 1 and 2 worker
processes of one thread each (``--dask-symbols``): seconds, the speed-up over one worker,
equality with the in-process table, and the peak memory of each worker.

Run: ``NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/pair_scan.py --symbols 3000``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

STATISTICS_QVALUE = 0.05
"""Spread statistics only for pairs with q <= this (what walk-forward selection can keep)."""


PHASES = (
    ("titan_lib.data", "load_prices", "read"),
    ("titan_lib.pairs.scan", "price_panel", "panel"),
    ("titan_lib.pairs.scan", "plan_batch", "plan"),
    ("titan_lib.pairs.eg_batch", "_lagged_cross_products", "BLAS products"),
    ("titan_lib.pairs.eg_kernel", "engle_granger_dense", "EG kernel"),
    ("titan_lib.pairs.scan", "collect_results", "all tasks"),
    ("titan_lib.pairs.scan", "rank_arrays", "p/q/rank"),
    ("titan_lib.pairs.scan", "spread_statistics", "statistics"),
    ("titan_lib.pairs.scan", "ranked_table", "table"),
    ("titan_lib.pairs.scan", "_write_scan", "write"),
)
"""Functions timed inside one scan (module, name, label); ``all tasks`` includes the BLAS
products and the kernel, which run on every core."""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def _phase_timer(phases: dict[str, list[float]]) -> Iterator[None]:
    """Accumulate wall and CPU seconds (all threads) of each function in :data:`PHASES`."""
    import importlib

    saved = []
    for module_name, name, label in PHASES:
        module = importlib.import_module(module_name)
        original = getattr(module, name)

        def timed(*args: Any, _f: Any = original, _label: str = label, **kw: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return _f(*args, **kw)
            finally:
                acc = phases.setdefault(_label, [0.0, 0.0])
                acc[0] += time.perf_counter() - wall
                acc[1] += time.process_time() - cpu

        setattr(module, name, timed)
        saved.append((module, name, original))
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _warm() -> None:
    """Compile (or load from NUMBA_CACHE_DIR) every kernel and import every module of the
    scan path (store read, tests, statistics, Parquet and document writes) outside the
    timings."""
    from titan_lib.data import ingest_frame
    from titan_lib.data.synthetic import make_universe
    from titan_lib.pairs.scan import scan

    with tempfile.TemporaryDirectory() as store:
        ingest_frame(make_universe(24, 300, n_pairs=2, seed=1).prices, store=store)
        scan(store=store, min_obs=100, progress=False)
        scan(store=store, min_obs=100, progress=False, statistics_qvalue=0.05, write=False)


def prepare(symbols: int, days: int, store: str) -> None:
    """Write the seeded universe into ``store`` (run in its own process)."""
    from titan_lib.data import ingest_frame
    from titan_lib.data.synthetic import make_universe

    ingest_frame(make_universe(symbols, days, n_pairs=10, seed=2024).prices, store=store)


def run_scan(store: str, sample: int, repeat: int, full_statistics: bool) -> dict[str, Any]:
    """Time the whole scan on ``store``; compare a sample with statsmodels."""
    from statsmodels.tsa.stattools import coint
    from threadpoolctl import threadpool_limits

    from titan_lib.data import load_prices
    from titan_lib.pairs import price_panel
    from titan_lib.pairs.scan import load_scan, scan

    started = time.perf_counter()
    _warm()
    warm_s = time.perf_counter() - started
    times, cpu_times = [], []
    phases: dict[str, list[float]] = {}
    for k in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        if k == 0:
            with _phase_timer(phases):
                result = scan(store=store, progress=False, statistics_qvalue=STATISTICS_QVALUE)
        else:
            result = scan(store=store, progress=False, statistics_qvalue=STATISTICS_QVALUE)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
    load = os.getloadavg()
    peak_mb = _peak_mb()
    stored = load_scan(result.scan_id, store=store).pairs
    assert stored.equals(result.pairs), "the stored table differs from the returned one"
    del stored
    full_s = None
    if full_statistics:
        started = time.perf_counter()
        full = scan(store=store, progress=False, write=False).pairs
        full_s = time.perf_counter() - started
        assert full.select("rank", "y", "x", "qvalue").equals(
            result.pairs.select("rank", "y", "x", "qvalue")
        ), "statistics_qvalue changed the ranking"
        del full
    n_pairs = result.pairs.height
    with_stats = int(result.pairs.get_column("half_life").is_not_null().sum())

    panel = price_panel(load_prices(None, None, None, store), transform="log")
    rng = np.random.default_rng(7)
    rows = np.sort(rng.choice(n_pairs, size=min(sample, n_pairs), replace=False))
    picked = result.pairs[rows.tolist()]
    ours_t, ours_p, ref_t, ref_p = [], [], [], []
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        for rec in picked.iter_rows(named=True):
            y, x = panel.column(rec["y"]), panel.column(rec["x"])
            for leg_y, leg_x, t_name, p_name in (
                (y, x, "tstat", "pvalue_yx"),
                (x, y, "tstat_xy", "pvalue_xy"),
            ):
                t, p, _ = coint(leg_y, leg_x, trend="c", autolag="aic")
                ref_t.append(t)
                ref_p.append(p)
                ours_t.append(rec[t_name])
                ours_p.append(rec[p_name])
        sm_s = time.perf_counter() - started
    return {
        "symbols": len(result.meta["universe"]),
        "days": int(panel.dates.shape[0]),
        "pairs": n_pairs,
        "tests": 2 * n_pairs,
        "scan_s": sorted(times)[len(times) // 2],
        "scan_range": [min(times), max(times)],
        "scan_cpu_s": sorted(cpu_times)[len(cpu_times) // 2],
        "warm_s": warm_s,
        "phases": phases,
        "load_during_scan": list(load),
        "full_stats_s": full_s,
        "with_stats": with_stats,
        "tradable": result.meta["counts"]["tradable"],
        "peak_mb": peak_mb,
        "peak_mb_after_full": _peak_mb(),
        "sm_tests": len(ref_t),
        "sm_s": sm_s,
        "dt": float(np.max(np.abs(np.array(ours_t) - np.array(ref_t)))),
        "dp": float(np.max(np.abs(np.array(ours_p) - np.array(ref_p)))),
        "load": os.getloadavg()[0],
    }


def run_dask(store: str, workers: list[int]) -> dict[str, Any]:
    """The scan in this process and on LocalClusters of ``workers`` processes."""
    from dask.distributed import Client, LocalCluster

    from titan_lib.pairs.scan import scan

    _warm()
    settings: dict[str, Any] = {
        "store": store,
        "progress": False,
        "write": False,
        "statistics_qvalue": STATISTICS_QVALUE,
    }
    started = time.perf_counter()
    local = scan(**settings).pairs
    out: dict[str, Any] = {"local_s": time.perf_counter() - started, "runs": []}
    for k in workers:
        with (
            LocalCluster(
                n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(_warm)
            started = time.perf_counter()
            table = scan(scheduler=cluster.scheduler_address, **settings).pairs
            seconds = time.perf_counter() - started
            worker_mb = sorted(client.run(_peak_mb).values())
        out["runs"].append(
            {
                "workers": k,
                "seconds": seconds,
                "identical": table.equals(local),
                "worker_peak_mb": worker_mb,
                "load": os.getloadavg()[0],
            }
        )
    out["pairs"] = local.height
    return out


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--scaling", default="500,1500", help="smaller sizes run first")
    parser.add_argument("--sample", type=int, default=25, help="pairs checked in statsmodels")
    parser.add_argument("--repeat", type=int, default=1, help="timed scans (median printed)")
    parser.add_argument("--dask-symbols", type=int, default=1500, help="0: no Dask run")
    parser.add_argument(
        "--full-statistics-upto",
        type=int,
        default=1500,
        help="also time the scan with statistics for every tested pair up to this size",
    )
    parser.add_argument("--dask-workers", default="1,2")
    parser.add_argument("--child", choices=("prepare", "scan", "dask"), help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "prepare":
        prepare(args.symbols, args.days, args.store)
        print(json.dumps({"ok": True}))
        return
    if args.child == "scan":
        full = args.symbols <= args.full_statistics_upto
        print(json.dumps(run_scan(args.store, args.sample, args.repeat, full)))
        return
    if args.child == "dask":
        workers = [int(w) for w in args.dask_workers.split(",")]
        print(json.dumps(run_dask(args.store, workers)))
        return

    sizes = sorted({int(s) for s in args.scaling.split(",") if s} | {args.symbols})
    sizes = [s for s in sizes if s <= args.symbols]
    print(
        f"pair_scan: {args.days} days, every pair tested both ways (direction=symmetric), "
        f"log prices, trend=c, autolag=aic (exact lag search), {os.cpu_count()} cores; "
        f"spread statistics for q <= {STATISTICS_QVALUE}"
    )
    stores: dict[int, str] = {}
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            stores[n] = os.path.join(tmp, f"u{n}")
            _child("--child", "prepare", "--symbols", str(n), "--days", str(args.days),
                   "--store", stores[n])  # fmt: skip
            r = _child("--child", "scan", "--store", stores[n], "--sample", str(args.sample),
                       "--repeat", str(args.repeat), "--symbols", str(n),
                       "--full-statistics-upto", str(args.full_statistics_upto))  # fmt: skip
            per_test = r["scan_s"] / r["tests"]
            sm_per_test = r["sm_s"] / r["sm_tests"]
            print(
                f"{r['symbols']:>5} symbols, {r['pairs']:>9,} pairs ({r['tests']:,} tests): "
                f"whole scan {r['scan_s']:6.2f} s ({r['tests'] / r['scan_s']:,.0f} tests/s; "
                f"statistics for {r['with_stats']:,} pairs), peak memory {r['peak_mb']:,.0f} MB"
                f"  [load avg {r['load_during_scan'][0]:.2f}]"
            )
            print(
                f"       CPU {r['scan_cpu_s']:.2f} s (all threads); kernels loaded/compiled "
                f"before timing in {r['warm_s']:.2f} s; phases wall/CPU s: "
                + ", ".join(f"{k} {w:.2f}/{c:.2f}" for k, (w, c) in r["phases"].items())
            )
            if r["full_stats_s"] is not None:
                print(
                    "       statistics for every tested pair (scan default, no write): "
                    f"{r['full_stats_s']:.2f} s "
                    f"(peak memory then {r['peak_mb_after_full']:,.0f} MB)"
                )
            print(
                f"       statsmodels coint: {r['sm_tests']} tests in {r['sm_s']:.2f} s = "
                f"{sm_per_test * 1e3:.1f} ms/test; ours {per_test * 1e6:.2f} us/test (whole "
                f"scan); ratio per test {sm_per_test / per_test:,.0f}x; max |dt| {r['dt']:.2e},"
                f" max |dp| {r['dp']:.2e}"
            )
        if args.dask_symbols:
            n = args.dask_symbols
            if n not in stores:
                stores[n] = os.path.join(tmp, f"u{n}")
                _child("--child", "prepare", "--symbols", str(n), "--days", str(args.days),
                       "--store", stores[n])  # fmt: skip
            d = _child("--child", "dask", "--store", stores[n], "--dask-workers",
                       args.dask_workers)  # fmt: skip
            print(
                f"Dask LocalCluster, {n} symbols ({d['pairs']:,} pairs), workers of one "
                f"thread each on {os.cpu_count()} cores: in-process (every core) "
                f"{d['local_s']:.2f} s"
            )
            base = d["runs"][0]
            for run in d["runs"]:
                print(
                    f"  {run['workers']} worker process(es): {run['seconds']:.2f} s, "
                    f"speed-up {base['seconds'] / run['seconds']:.2f}x of {base['workers']}, "
                    f"identical to in-process: {run['identical']}, peak memory per worker "
                    f"{', '.join(f'{mb:,.0f}' for mb in run['worker_peak_mb'])} MB"
                    f"  [load avg {run['load']:.2f}]"
                )


if __name__ == "__main__":
    main()
