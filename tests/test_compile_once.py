"""Kernels compiled once per machine: the first call of a group waits for the group's lock.

Real processes on an empty numba cache: while one holds the lock, another that reaches the
same kernel waits, then loads what the first compiled instead of compiling it again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from titan_lib import compile_once
from titan_lib.compile_once import compiling_once
from titan_lib.exceptions import ParameterError

CALLER = """
import json, sys, time
from pathlib import Path

import numba
import numpy as np

from titan_lib.compile_once import compiling_once


@numba.njit(cache=True)
def sum_of_squares(x):
    total = 0.0
    for v in x:
        total += v * v
    return total


signals = Path(sys.argv[1])
name = sys.argv[2]
(signals / f"{name}.trying").touch()
with compiling_once("test-kernel"):
    (signals / f"{name}.entered").touch()
    while not (signals / f"{name}.go").exists():
        time.sleep(0.02)
    value = sum_of_squares(np.arange(4.0))
stats = sum_of_squares.stats
print(json.dumps({"value": value, "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""
SECONDS = 60.0


def wait_for(path: Path, seconds: float = SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def test_a_second_process_waits_and_loads_what_the_first_compiled(tmp_path: Path) -> None:
    code = tmp_path / "kernels"
    code.mkdir()
    (code / "caller.py").write_text(CALLER)
    signals = tmp_path / "signals"
    signals.mkdir()
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"),
        "PYTHONPATH": str(code),
    }

    def start(name: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(code / "caller.py"), str(signals), name],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start("first")
    wait_for(signals / "first.entered")  # holds the lock, has not compiled yet
    second = start("second")
    (signals / "second.go").touch()  # it may compile as soon as it has the lock
    wait_for(signals / "second.trying")
    time.sleep(1.0)
    assert not (signals / "second.entered").exists(), "entered while the first held the lock"
    (signals / "first.go").touch()
    results = []
    for process in (first, second):
        out, err = process.communicate(timeout=SECONDS)
        assert process.returncode == 0, err
        results.append(json.loads(out))
    assert [r["value"] for r in results] == [14.0, 14.0]
    assert (results[0]["misses"], results[0]["hits"]) == (1, 0), results[0]  # compiled
    assert (results[1]["misses"], results[1]["hits"]) == (0, 1), results[1]  # loaded


def hold_lock_in_another_process(folder: Path, group: str) -> subprocess.Popen[str]:
    """A process that holds ``group``'s lock until its stdin closes."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom titan_lib.compile_once import compiling_once\n"
            f"with compiling_once({group!r}):\n    print('held', flush=True)\n"
            "    sys.stdin.read()\n",
        ],
        env={**os.environ, "NUMBA_CACHE_DIR": str(folder)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def finishes(block: Callable[[], None], seconds: float = 2.0) -> bool:
    """Whether calling ``block`` returns within ``seconds`` (run in a thread)."""
    done = threading.Event()

    def run() -> None:
        block()
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


def test_a_group_passed_once_never_waits_again_and_nested_groups_take_no_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))

    def enter(group: str) -> None:
        with compiling_once(group):
            pass

    enter("passed-group")
    holder = hold_lock_in_another_process(tmp_path, "passed-group")
    try:
        assert finishes(lambda: enter("passed-group")), "waited for a group already passed"
    finally:
        holder.communicate("")
    holder = hold_lock_in_another_process(tmp_path, "inner-group")
    try:
        assert not finishes(lambda: enter("inner-group"), 1.0), "the lock did not hold"

        def nested() -> None:
            with compiling_once("outer-group"), compiling_once("inner-group"):
                pass

        assert finishes(nested), "a nested group waited for its own lock"
    finally:
        holder.communicate("")


def test_an_unwritable_lock_folder_runs_without_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocked / "cache"))
    ran = []
    with compiling_once("no-folder"):
        ran.append(True)
    assert ran == [True]
    assert "no-folder" not in compile_once._passed  # it will try the lock again next time


def test_group_names_are_checked() -> None:
    with pytest.raises(ParameterError, match="compile group"), compiling_once("../escape"):
        pass
