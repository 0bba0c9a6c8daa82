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


def test_sweep_rejects_a_bad_set_before_starting(local_store: str, tmp_path: Path) -> None:
    from titan_lib.runner import run_sweep

    with pytest.raises(
        ParameterError, match="parameter set 2 of 2: notebook sidecar: parameter 'n'"
    ):
        run_sweep(FIXTURES / "sidecar.ipynb", [{"n": 1}, {"n": "two"}], store=local_store)
    assert open_store(local_store).list("") == []
