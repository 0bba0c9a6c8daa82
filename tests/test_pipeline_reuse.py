"""A repeated pipeline run reuses the runs of unchanged steps and re-runs from the first
changed one: notebook, parameter, input file, store contents, another store, a failed
run and ``--fresh`` each decide it, on real kernels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import copy_store
from fixtures.cli_runs import run_titan as titan
from test_pipeline import FIXTURES, write_pipeline

from titan_lib.runner import PipelineResult, list_records, load_pipeline, load_results, run_pipeline
from titan_lib.runner.step_reuse import REUSE_REASON
from titan_lib.stores import open_store

pytestmark = pytest.mark.slow


def reader_notebook(path: Path) -> Path:
    """A notebook that reads the text file named by its ``source`` parameter."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "titan", "display_name": "TITAN", "language": "python"}
    parameters = nbformat.v4.new_code_cell('source: str = "data.txt"\nvalue: int = 0')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "from titan_lib.runner import save_results\n\n"
            "with open(source) as handle:\n"
            "    text = handle.read()\n"
            'save_results({"text": text, "value": value}, summary={"text": text})'
        ),
    ]
    nbformat.write(nb, path)
    return path


def run(file: Path, store: str) -> PipelineResult:
    pipeline = load_pipeline(file, root=file.parent)
    return run_pipeline(pipeline, store=store, progress=False, reports=False)


def reused(result: PipelineResult) -> list[bool]:
    return [step.reused for step in result.steps]


def run_ids(result: PipelineResult) -> list[str | None]:
    return [step.run_id for step in result.steps]


def test_unchanged_steps_reuse_their_runs_and_a_change_reruns_from_there(
    local_store: str, tmp_path: Path
) -> None:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    make = shutil.copy(FIXTURES / "sidecar.ipynb", notebooks / "make.ipynb")
    use = shutil.copy(FIXTURES / "consumer.ipynb", notebooks / "use.ipynb")
    reader_notebook(notebooks / "reader.ipynb")
    (notebooks / "data.txt").write_text("first")
    steps: list[dict] = [
        {"name": "make", "notebook": str(make), "parameters": {"x": 1.5, "n": 4}},
        {
            "name": "use",
            "notebook": str(use),
            "inputs": {"upstream_run_id": "make.run_id", "total": "make.total"},
        },
        {"name": "read", "notebook": str(notebooks / "reader.ipynb"), "parameters": {"value": 1}},
    ]
    file = write_pipeline(tmp_path, steps)

    first = run(file, local_store)
    assert first.status == "succeeded" and reused(first) == [False, False, False]

    again = run(file, local_store)
    assert again.status == "succeeded"
    assert reused(again) == [True, True, True]
    assert run_ids(again) == run_ids(first)  # the same records, nothing executed
    assert [s.summary for s in again.steps] == [s.summary for s in first.steps]
    assert [s.duration_s for s in again.steps] == [None, None, None]
    store = open_store(local_store)
    assert len(list_records(store)) == 3
    assert list_records(store, parent_id=again.pipeline_id) == []
    doc = json.loads(store.read_bytes(f"pipelines/{again.pipeline_id}/pipeline.json"))
    assert [s["reused"] for s in doc["steps"]] == [True, True, True]
    assert [s["run_id"] for s in doc["steps"]] == run_ids(first)
    consumer = load_results(again.steps[1].run_id or "", local_store)
    assert consumer.values == {"upstream_total": 9.0, "doubled": 18.0, "rows": 4}

    (notebooks / "data.txt").write_text("second")  # a file a parameter names
    changed_file = run(file, local_store)
    assert reused(changed_file) == [True, True, False]
    assert run_ids(changed_file)[:2] == run_ids(first)[:2]
    assert changed_file.steps[2].summary == {"text": "second"}

    steps[2]["parameters"] = {"value": 2}  # a parameter
    changed_parameter = run(write_pipeline(tmp_path, steps), local_store)
    assert reused(changed_parameter) == [True, True, False]
    assert load_results(changed_parameter.steps[2].run_id or "", local_store).values == {
        "text": "second",
        "value": 2,
    }

    nb = nbformat.read(use, as_version=4)  # the middle step's notebook
    nb.cells.append(nbformat.v4.new_code_cell('print("one more cell")'))
    nbformat.write(nb, use)
    changed_notebook = run(file, local_store)
    assert reused(changed_notebook) == [True, False, False]  # and every later step
    assert run_ids(changed_notebook)[0] == run_ids(first)[0]
    assert run_ids(changed_notebook)[1] not in run_ids(first)
    assert len(list_records(store)) == 3 + 1 + 1 + 2


def test_a_failed_step_is_never_reused(local_store: str, tmp_path: Path) -> None:
    reader = reader_notebook(tmp_path / "reader.ipynb")  # its data.txt does not exist
    first = {"name": "first", "notebook": str(FIXTURES / "empty.ipynb")}
    file = write_pipeline(tmp_path, [first, {"name": "broken", "notebook": str(reader)}])
    failed = run(file, local_store)
    assert [s.status for s in failed.steps] == ["succeeded", "failed"]
    assert "FileNotFoundError" in (failed.steps[1].error or "")
    again = run(file, local_store)
    assert [s.status for s in again.steps] == ["succeeded", "failed"]
    assert reused(again) == [True, False]
    assert again.steps[1].run_id != failed.steps[1].run_id  # executed again, failed again
    records = list_records(open_store(local_store), status="failed")
    assert [r.run_id for r in records] == [failed.steps[1].run_id, again.steps[1].run_id]


def test_fresh_a_changed_store_and_another_store_run_every_step(
    local_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write_pipeline(tmp_path, [{"name": "only", "notebook": str(FIXTURES / "empty.ipynb")}])
    command = ["pipeline", str(file), "--store", local_store, "--no-progress", "--no-reports"]
    code, out, err = titan(command, capsys)
    assert code == 0, err
    (record,) = list_records(open_store(local_store))

    code, out, err = titan(command, capsys)
    assert code == 0, err
    assert f"only         reused run {record.run_id} ({REUSE_REASON})" in out
    assert len(list_records(open_store(local_store))) == 1

    code, out, err = titan([*command, "--fresh"], capsys)
    assert code == 0, err
    assert "reused run" not in out
    assert len(list_records(open_store(local_store))) == 2

    copy = copy_store(local_store, tmp_path / "copy")  # the same content elsewhere
    elsewhere = run(file, copy)
    assert reused(elsewhere) == [False]
    assert reused(run(file, copy)) == [True]

    open_store(copy).write_bytes("prices/manifest.json", b"{}")  # changed between runs
    assert reused(run(file, copy)) == [False]
