"""Per-run overhead of the TITAN runner over plain papermill, on an empty notebook.

Both paths execute the same one-cell notebook on the same kernel, in this process, after
one warm-up run each (imports, kernel spec lookup). The runner adds parameter
inspection and validation, the kernel check, the run record (output notebook,
parameters, run.json written create-only to a local store) and the code/package
versions. Reference: ``papermill.execute_notebook`` alone. Target: ratio <= 1.2.

Usage: ``.venv/bin/python benchmarks/runner_overhead.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "notebooks" / "empty.ipynb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import papermill

    from titan_lib.runner import run_notebook

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "plain.ipynb"
        store = str(Path(folder) / "store")

        def plain() -> None:
            papermill.execute_notebook(
                str(NOTEBOOK), str(out), parameters={"value": 1}, progress_bar=False
            )

        def runner() -> None:
            run_notebook(NOTEBOOK, {"value": 1}, store=store, progress=False)

        plain()
        runner()
        plain_times: list[float] = []
        runner_times: list[float] = []
        for _ in range(args.repeats):  # interleaved, so load on the machine hits both alike
            for fn, times in ((plain, plain_times), (runner, runner_times)):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)

    plain_s = statistics.median(plain_times)
    runner_s = statistics.median(runner_times)
    print(f"notebook: {NOTEBOOK.name}, repeats: {args.repeats} (median per run)")
    print(f"plain papermill.execute_notebook: {plain_s:.3f} s")
    print(f"titan run_notebook (with record): {runner_s:.3f} s")
    print(f"overhead: {runner_s - plain_s:+.3f} s per run")
    print(f"ratio runner / papermill: {runner_s / plain_s:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
