"""Pipelines: steps in order, outputs passed on, stop at the first failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from titan_lib.exceptions import ParameterError
from titan_lib.runner import list_records, load_pipeline, load_results, run_pipeline
from titan_lib.stores import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"

pytestmark = pytest.mark.slow


def write_pipeline(folder: Path, steps: list[dict]) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "fixture", "steps": steps}))
    return path


def test_outputs_pass_between_steps(any_store: str, tmp_path: Path) -> None:
    file = write_pipeline(
        tmp_path,
        [
            {
                "name": "make",
                "notebook": str(FIXTURES / "sidecar.ipynb"),
                "parameters": {"x": 1.5, "n": 4},
            },
            {
                "name": "use",
                "notebook": str(FIXTURES / "consumer.ipynb"),
                "inputs": {"upstream_run_id": "make.run_id", "total": "make.total"},
            },
        ],
    )
    result = run_pipeline(load_pipeline(file, root=tmp_path), store=any_store, progress=False)
    assert result.status == "succeeded"
    assert [s.status for s in result.steps] == ["succeeded", "succeeded"]
    make, use = result.steps
    assert make.summary == {"total": pytest.approx(9.0)}
    assert use.run_id is not None
    consumer = load_results(use.run_id, any_store)
    assert consumer.values == {"upstream_total": 9.0, "doubled": 18.0, "rows": 4}

    store = open_store(any_store)
    records = list_records(store, parent_id=result.pipeline_id)
    assert [(r.step, r.status) for r in records] == [("make", "succeeded"), ("use", "succeeded")]
    assert records[1].parameters["upstream_run_id"] == make.run_id
    for record in records:
        assert "report.html" in record.files
    doc = json.loads(store.read_bytes(f"pipelines/{result.pipeline_id}/pipeline.json"))
    assert [s["run_id"] for s in doc["steps"]] == [make.run_id, use.run_id]


def test_pipeline_stops_at_first_failure_keeping_what_ran(local_store: str, tmp_path: Path) -> None:
    file = write_pipeline(
        tmp_path,
        [
            {"name": "first", "notebook": str(FIXTURES / "sidecar.ipynb")},
            {
                "name": "broken",
                "notebook": str(FIXTURES / "sidecar.ipynb"),
                "parameters": {"x": -3.0},
            },
            {
                "name": "never",
                "notebook": str(FIXTURES / "consumer.ipynb"),
                "inputs": {"upstream_run_id": "broken.run_id"},
            },
        ],
    )
    result = run_pipeline(
        load_pipeline(file, root=tmp_path), store=local_store, progress=False, reports=False
    )
    assert result.status == "failed"
    assert [s.status for s in result.steps] == ["succeeded", "failed", "not run"]
    assert result.failed_step is not None and result.failed_step.name == "broken"
    assert "ValueError: x must be non-negative, got -3.0" in (result.failed_step.error or "")
    records = list_records(open_store(local_store))
    assert [(r.step, r.status) for r in records] == [("first", "succeeded"), ("broken", "failed")]
    assert load_results(records[0].run_id, local_store).values["total"] == 3.0


def test_pipeline_is_checked_before_anything_runs(local_store: str, tmp_path: Path) -> None:
    bad_param = write_pipeline(
        tmp_path,
        [
            {"name": "a", "notebook": str(FIXTURES / "sidecar.ipynb")},
            {"name": "b", "notebook": str(FIXTURES / "sidecar.ipynb"), "parameters": {"n": "x"}},
        ],
    )
    with pytest.raises(ParameterError, match="pipeline step 'b': notebook sidecar: parameter 'n'"):
        load_pipeline(bad_param, root=tmp_path)

    later_ref = write_pipeline(
        tmp_path,
        [
            {
                "name": "use",
                "notebook": str(FIXTURES / "consumer.ipynb"),
                "inputs": {"upstream_run_id": "make.run_id"},
            },
            {"name": "make", "notebook": str(FIXTURES / "sidecar.ipynb")},
        ],
    )
    with pytest.raises(ParameterError, match="refers to step 'make', which is not an earlier"):
        load_pipeline(later_ref, root=tmp_path)

    missing_required = write_pipeline(
        tmp_path, [{"name": "use", "notebook": str(FIXTURES / "consumer.ipynb")}]
    )
    with pytest.raises(ParameterError, match="'upstream_run_id' is required"):
        load_pipeline(missing_required, root=tmp_path)
    assert open_store(local_store).list("") == []


def test_pipeline_command_runs_the_steps_and_prints_a_summary(
    local_store: str, tmp_path: Path
) -> None:
    """`titan pipeline FILE` (the main job's command) in a real process."""
    import subprocess
    import sys

    file = write_pipeline(
        tmp_path,
        [
            {
                "name": "make",
                "notebook": str(FIXTURES / "sidecar.ipynb"),
                "parameters": {"x": 2.0, "n": 3},
            },
            {
                "name": "use",
                "notebook": str(FIXTURES / "consumer.ipynb"),
                "inputs": {"upstream_run_id": "make.run_id", "total": "make.total"},
            },
        ],
    )
    titan = str(Path(sys.executable).with_name("titan"))
    done = subprocess.run(
        [titan, "pipeline", str(file), "--store", local_store, "--no-progress", "--no-reports"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    records = list_records(open_store(local_store))
    assert [(r.step, r.status) for r in records] == [("make", "succeeded"), ("use", "succeeded")]
    assert records[0].run_id in done.stdout and records[1].run_id in done.stdout
    assert load_results(records[1].run_id, local_store).values["doubled"] == 12.0
