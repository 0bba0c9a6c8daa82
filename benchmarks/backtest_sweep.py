"""Benchmark of the parameter sweep on 10 years of one real pair (KO/PEP, 2010-2019).

Prints, all measured in this run:
- the warm time of a 1,000-combination grid (best of 3 calls in this process);
- the first call in a fresh process with an empty numba cache (compiles) and again with
  that cache filled, plus each fresh process's peak resident memory;
- the time of looping ``backtest_pair`` (vectorbt engine) over 20 combinations, and the
  ratio of its per-combination cost to the sweep's.

Run: ``NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/backtest_sweep.py``
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GRID = {
    "entry": [float(v) for v in np.linspace(1.5, 3.3, 10)],
    "exit": [0.0, 0.25, 0.5, 0.75, 1.0],
    "stop": [3.5, 4.0, 5.0, float("inf")],
    "window": [20, 40, 60, 90, 120],
}
SETTINGS = {"beta": 1.0, "start": "2010-01-01", "end": "2019-12-31", "target_weight": 1.0}

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from titan_lib.backtest import Costs, sweep
from titan_lib.data import sample_prices
grid, settings = json.loads(sys.argv[1])
prices = sample_prices(["KO", "PEP"])
t1 = time.perf_counter()
table = sweep(prices, "KO", "PEP", grid=grid, costs=Costs(2, 1, 2, 50), **settings)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_call": t2 - t1, "rows": table.height,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def fresh_process(cache_dir: str) -> dict[str, float]:
    """Import and first sweep in a new interpreter using ``cache_dir`` as numba cache."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([GRID, SETTINGS])],
        env=env, cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from titan_lib.backtest import Costs, backtest_pair, sweep
    from titan_lib.data import sample_prices

    n_combos = int(np.prod([len(v) for v in GRID.values()]))
    with tempfile.TemporaryDirectory() as cache:
        cold = fresh_process(cache)
        warm_cache = fresh_process(cache)
    print(f"grid: {n_combos} combinations, KO/PEP 2010-01-01..2019-12-31")
    print(
        f"fresh process, empty numba cache: first call {cold['first_call']:.2f} s "
        f"(imports {cold['import']:.2f} s), peak RSS {cold['peak_mb']:.0f} MB"
    )
    print(
        f"fresh process, warm numba cache:  first call {warm_cache['first_call']:.2f} s "
        f"(imports {warm_cache['import']:.2f} s), peak RSS {warm_cache['peak_mb']:.0f} MB"
    )

    prices = sample_prices(["KO", "PEP"])
    costs = Costs(2, 1, 2, 50)
    table = sweep(prices, "KO", "PEP", grid=GRID, costs=costs, **SETTINGS)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        table = sweep(prices, "KO", "PEP", grid=GRID, costs=costs, **SETTINGS)
        times.append(time.perf_counter() - t)
    warm = min(times)
    print(f"warm 1,000-grid sweep: {warm:.3f} s (best of 3; {table.height} rows)")

    rows = table.head(20).iter_rows(named=True)
    combos = [(r["entry"], r["exit"], r["stop"], r["window"]) for r in rows]
    backtest_pair(prices, "KO", "PEP", costs=costs, **SETTINGS)  # vectorbt import + compile
    t = time.perf_counter()
    for entry, exit_, stop, window in combos:
        backtest_pair(prices, "KO", "PEP", entry=entry, exit=exit_, stop=stop, window=window,
                      costs=costs, engine="vectorbt", **SETTINGS)  # fmt: skip
    loop = time.perf_counter() - t
    per_combo_loop = loop / len(combos)
    per_combo_sweep = warm / n_combos
    print(f"backtest_pair (vectorbt) loop over 20 combinations: {loop:.3f} s "
          f"({per_combo_loop * 1e3:.1f} ms each)")  # fmt: skip
    ratio = per_combo_loop / per_combo_sweep
    print(f"ratio per combination, backtest_pair loop / sweep: {ratio:.0f}x")
    print(f"peak RSS of this process (includes vectorbt): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
