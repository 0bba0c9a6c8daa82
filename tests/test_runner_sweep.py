"""`titan sweep` on a real Dask LocalCluster: one record per parameter set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from titan_lib.cli import main
from titan_lib.exceptions import ParameterError
from titan_lib.runner import list_records, load_results
from titan_lib.runner.sweep import expand_grid
from titan_lib.stores import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"

pytestmark = pytest.mark.slow


def test_grid_expansion() -> None:
    sets = expand_grid(
        {
            "parameters": {"n": 2},
            "grid": {"x": [1.0, 2.0], "name": ["a", "b"]},
            "runs": [{"x": 9.0}],
        }
    )
    assert sets == [
        {"n": 2, "x": 1.0, "name": "a"},
        {"n": 2, "x": 1.0, "name": "b"},
        {"n": 2, "x": 2.0, "name": "a"},
        {"n": 2, "x": 2.0, "name": "b"},
        {"n": 2, "x": 9.0},
    ]
    with pytest.raises(ParameterError, match="grid entry 'x' must be a non-empty list"):
        expand_grid({"grid": {"x": 1.0}})
    with pytest.raises(ParameterError, match="unknown keys"):
        expand_grid({"grdi": {}})


def test_sweep_on_local_cluster_records_each_set_and_lists_failures(
    local_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump({"parameters": {"n": 3}, "grid": {"x": [1.0, 2.0, -1.0, 4.0]}}))
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(FIXTURES / "sidecar.ipynb"), "-f", str(grid), "--store", local_store])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 1
    assert "1 of 4 runs of the sweep failed" in err

    records = list_records(open_store(local_store))
    assert len(records) == 4
    by_status = {s: [r for r in records if r.status == s] for s in ("succeeded", "failed")}
    assert len(by_status["succeeded"]) == 3 and len(by_status["failed"]) == 1
    (failed,) = by_status["failed"]
    assert failed.parameters["x"] == -1.0
    assert failed.error is not None and failed.error.ename == "ValueError"
    assert len({r.parent_id for r in records}) == 1 and records[0].parent_id
    totals = sorted(
        load_results(r.run_id, local_store).values["total"] for r in by_status["succeeded"]
    )
    assert totals == [3.0, 6.0, 12.0]  # x * (0 + 1 + 2)

    assert "3 succeeded, 1 failed" in out
    assert "failed set 3 (n=3, x=-1): " in out and "ValueError" in out
    sweep_id = records[0].parent_id
    doc = json.loads(open_store(local_store).read_bytes(f"sweeps/{sweep_id}/sweep.json"))
    assert [r["status"] for r in doc["runs"]] == ["succeeded", "succeeded", "failed", "succeeded"]
    assert f"compare the runs: titan sweeps {sweep_id} --store {local_store}" in out

    with pytest.raises(SystemExit) as done:
        main(["sweeps", "--store", local_store])
    assert done.value.code == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["sweep", "id", "notebook", "runs", "failed", "seconds"]
    assert listing[1].split()[:4] == [sweep_id, "sidecar", "4", "1"]

    with pytest.raises(SystemExit) as done:
        main(["sweeps", sweep_id[:-2], "--store", local_store])  # a unique start of the id
    assert done.value.code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith(f"sweep {sweep_id}: notebook sidecar, 4 runs, 1 failed")
    header = table[1].split()
    assert header[:4] == ["set", "x", "status", "total"]  # n is the same in every set
    rows = {int(line.split()[0]): line.split() for line in table[2:]}
    assert rows[1][1:4] == ["1", "succeeded", "3"] and rows[2][1:4] == ["2", "succeeded", "6"]
    assert rows[3][1:4] == ["-1", "failed", "-"] and rows[4][1:4] == ["4", "succeeded", "12"]


def test_sweep_rejects_a_bad_set_before_starting(local_store: str, tmp_path: Path) -> None:
    from titan_lib.runner import run_sweep

    with pytest.raises(
        ParameterError, match="parameter set 2 of 2: notebook sidecar: parameter 'n'"
    ):
        run_sweep(FIXTURES / "sidecar.ipynb", [{"n": 1}, {"n": "two"}], store=local_store)
    assert open_store(local_store).list("") == []


def test_sweep_on_a_worker_with_two_threads_loses_no_run(local_store: str) -> None:
    """Runs sharing a worker process share no working directory (papermill's chdir is
    process-wide: two runs in two threads used to delete each other's folder)."""
    from dask.distributed import LocalCluster

    from titan_lib.runner import run_sweep

    sets = [{"x": float(x), "n": 2} for x in range(1, 7)]
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    ) as cluster:
        result = run_sweep(
            FIXTURES / "sidecar.ipynb", sets, store=local_store, scheduler=cluster.scheduler_address
        )
    assert [run.error for run in result.runs] == [None] * 6
    records = list_records(open_store(local_store), parent_id=result.sweep_id)
    assert sorted(r.parameters["x"] for r in records if r.succeeded) == [
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
        6.0,
    ]
    totals = sorted(load_results(r.run_id, local_store).values["total"] for r in records)
    assert totals == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # x * (0 + 1)
