"""The notebook runner: parameter checks, papermill execution, immutable run records."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from titan_lib.exceptions import ConflictError, NotFoundError, ParameterError, RunFailedError
from titan_lib.runner import (
    inspect_parameters,
    list_records,
    load_results,
    read_record,
    run_notebook,
    validate_parameters,
)
from titan_lib.runner.record import publish_record, run_key
from titan_lib.stores import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
SIDECAR = FIXTURES / "sidecar.ipynb"
CONSUMER = FIXTURES / "consumer.ipynb"
KILLER = FIXTURES / "kernel_killer.ipynb"

pytestmark = pytest.mark.slow


def test_inspection_reads_declared_types_defaults_and_required() -> None:
    params = inspect_parameters(SIDECAR)
    assert list(params) == ["x", "n", "name", "tags"]
    assert params["x"].type_name == "float"
    assert params["x"].default == "1.0"
    assert params["x"].help == "multiplier"
    assert params["tags"].type_name == "list[str]"
    assert not any(p.required for p in params.values())
    assert inspect_parameters(CONSUMER)["upstream_run_id"].required


def test_validation_names_every_problem_and_lists_real_parameters() -> None:
    with pytest.raises(ParameterError) as info:
        validate_parameters(SIDECAR, {"bogus": 1, "n": 2.5, "tags": ["a", 3]})
    message = info.value.message
    assert "unknown parameter 'bogus'" in message
    assert "parameter 'n' must be int, got float 2.5" in message
    assert "parameter 'tags' must be list[str]" in message
    for line in ("x: float = 1.0  # multiplier", "n: int = 3", 'name: str = "demo"'):
        assert line in message
    assert set(info.value.details["problems"]) == {
        "unknown parameter 'bogus'",
        "parameter 'n' must be int, got float 2.5",
        "parameter 'tags' must be list[str], got list ['a', 3]",
    }


def test_validation_of_required_values_and_normalisation() -> None:
    with pytest.raises(ParameterError, match="'upstream_run_id' is required and was not given"):
        validate_parameters(CONSUMER, {"total": 1.0})
    with pytest.raises(ParameterError, match="must be int, got bool"):
        validate_parameters(SIDECAR, {"n": True})
    values = validate_parameters(SIDECAR, {"x": 2, "name": dt.date(2020, 1, 2)})
    assert values == {"x": 2.0, "name": "2020-01-02"}
    assert isinstance(values["x"], float)


def test_bad_parameter_is_rejected_before_a_kernel_starts(
    local_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jupyter_client.manager

    started: list[str] = []
    original = jupyter_client.manager.KernelManager.start_kernel

    def spy(self, **kw):  # type: ignore[no-untyped-def]
        started.append(self.kernel_name)
        return original(self, **kw)

    monkeypatch.setattr(jupyter_client.manager.KernelManager, "start_kernel", spy)
    with pytest.raises(ParameterError, match="parameter 'x' must be float, got str"):
        run_notebook(SIDECAR, {"x": "large"}, store=local_store, progress=False)
    assert started == []
    assert open_store(local_store).list("runs") == []


def test_run_leaves_a_complete_record_local_and_s3(any_store: str) -> None:
    record = run_notebook(
        SIDECAR, {"x": 2.5, "n": 4, "tags": ["p", "q"]}, store=any_store, progress=False
    )
    store = open_store(any_store)
    assert record.status == "succeeded"
    assert record.notebook == "sidecar"
    assert record.parameters == {"x": 2.5, "n": 4, "tags": ["p", "q"]}
    assert record.duration_s > 0
    assert record.started_at < record.ended_at
    assert record.code_version
    assert record.packages["papermill"] == "2.7.0"
    assert record.host
    assert set(record.files) == {
        "output.ipynb",
        "parameters.yaml",
        "results.json",
        "series.parquet",
    }

    # listed and read back from the store, not from memory
    listed = list_records(store)
    assert [r.run_id for r in listed] == [record.run_id]
    assert read_record(store, record.run_id) == record
    assert yaml.safe_load(store.read_bytes(run_key(record.run_id, "parameters.yaml"))) == {
        "x": 2.5,
        "n": 4,
        "tags": ["p", "q"],
    }
    output = json.loads(store.read_bytes(run_key(record.run_id, "output.ipynb")))
    injected = [
        c for c in output["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
    ]
    assert len(injected) == 1 and "x = 2.5" in "".join(injected[0]["source"])

    results = load_results(record.run_id, store)
    assert results.values["total"] == pytest.approx(2.5 * (0 + 1 + 2 + 3))
    assert results.values["tags"] == ["p", "q"]
    assert results.value("nested.first") == 0.0
    assert results.summary == {"total": pytest.approx(15.0)}
    # the kernel was pointed at the same store the record went to
    expected_uri = any_store if any_store.startswith("s3://") else str(Path(any_store).resolve())
    assert results.values["store"] == expected_uri
    table = results.table("series")
    assert table.columns == ["i", "value"]
    assert table["value"].to_list() == [0.0, 2.5, 5.0, 7.5]

    # records are immutable: a second publish under the same id is refused
    with pytest.raises(ConflictError, match="records are immutable"):
        publish_record(store, record, {"output.ipynb": b"{}"})
    with pytest.raises(NotFoundError, match="no table 'missing'"):
        results.table("missing")
    with pytest.raises(NotFoundError, match=r"no result 'nested\.absent'"):
        results.value("nested.absent")


def test_raising_cell_is_recorded_as_failed_with_output_and_no_results(local_store: str) -> None:
    with pytest.raises(RunFailedError) as info:
        run_notebook(SIDECAR, {"x": -1.0}, store=local_store, progress=False)
    assert "ValueError: x must be non-negative, got -1.0" in info.value.message
    assert "In [" in info.value.message and "if x < 0:" in info.value.message

    store = open_store(local_store)
    (record,) = list_records(store)
    assert record.status == "failed"
    assert record.error is not None
    assert record.error.ename == "ValueError"
    assert record.error.cell_index is not None
    assert "results.json" not in record.files and "series.parquet" not in record.files
    assert not store.exists(run_key(record.run_id, "results.json"))
    output = json.loads(store.read_bytes(run_key(record.run_id, "output.ipynb")))
    errors = [
        o for c in output["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    assert errors and errors[0]["ename"] == "ValueError"
    with pytest.raises(RunFailedError, match="failed, it has no results"):
        load_results(record.run_id, store)


def test_killed_kernel_is_recorded_as_failed(local_store: str) -> None:
    record = run_notebook(KILLER, {}, store=local_store, progress=False, check=False)
    assert record.status == "failed"
    assert record.error is not None
    assert "kernel died" in record.error.message
    assert "import os, signal" in record.error.message
    store = open_store(local_store)
    stored = read_record(store, record.run_id)
    assert stored.status == "failed"
    assert "output.ipynb" in stored.files
    output = json.loads(store.read_bytes(run_key(record.run_id, "output.ipynb")))
    dying = output["cells"][record.error.cell_index]
    assert "os.kill" in "".join(dying["source"])
    assert [o["ename"] for o in dying["outputs"] if o["output_type"] == "error"] == [
        "DeadKernelError"
    ]


def test_missing_run_and_unknown_notebook_give_clear_errors(local_store: str) -> None:
    from titan_lib.runner import resolve_notebook

    with pytest.raises(NotFoundError, match="run 'nope' not found"):
        read_record(open_store(local_store), "nope")
    with pytest.raises(NotFoundError, match="notebook 'no_such_notebook' not found"):
        resolve_notebook("no_such_notebook", root=FIXTURES.parent)


def test_a_mistyped_profile_names_the_profiles_that_exist(tmp_path: Path) -> None:
    from titan_lib.runner import collect_parameters, load_pipeline

    params = tmp_path / "params.yaml"
    params.write_text("x: 3\nprofiles:\n  quick: {n: 2}\n  full: {n: 9}\n")
    assert collect_parameters(SIDECAR, profile="quick", files=[params]) == {"x": 3, "n": 2}
    with pytest.raises(ParameterError) as info:
        collect_parameters(SIDECAR, profile="quik", files=[params])
    assert "unknown profile 'quik' for notebook sidecar" in info.value.message
    assert info.value.message.endswith("full, quick")

    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump({"profile": "quik", "steps": [{"notebook": str(SIDECAR)}]}))
    with pytest.raises(ParameterError, match="unknown profile 'quik'; the steps' parameter"):
        load_pipeline(pipeline, root=tmp_path)


def test_an_unwritable_store_stops_a_pipeline_before_anything_runs(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jupyter_client.manager

    from titan_lib.exceptions import StoreError
    from titan_lib.runner import load_pipeline, run_pipeline, run_sweep

    started: list[str] = []
    monkeypatch.setattr(
        jupyter_client.manager.KernelManager,
        "start_kernel",
        lambda self, **kw: started.append(self.kernel_name),
    )
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump({"steps": [{"notebook": str(SIDECAR)}]}))
    loaded = load_pipeline(pipeline, root=tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match=r"store .*a-file/store cannot be written, so nothing"):
        run_pipeline(loaded, store=str(blocker / "store"), progress=False)
    with pytest.raises(StoreError, match="no-such-bucket-titan"):
        run_pipeline(loaded, store="s3://no-such-bucket-titan/store", progress=False)
    with pytest.raises(StoreError, match="cannot be written, so nothing was run"):
        run_sweep(SIDECAR, [{"x": 1.0}], store=str(blocker / "store"))
    assert started == []


def test_runs_that_cannot_start_leave_a_failed_record(local_store: str, tmp_path: Path) -> None:
    from titan_lib.runner import load_pipeline, run_pipeline

    doc = json.loads(SIDECAR.read_text())
    doc["metadata"]["kernelspec"]["name"] = "no-such-kernel"
    orphan = tmp_path / "orphan.ipynb"
    orphan.write_text(json.dumps(doc))
    with pytest.raises(NotFoundError, match="Jupyter kernel 'no-such-kernel' is not installed"):
        run_notebook(orphan, {"x": 2.0}, store=local_store, progress=False)
    (record,) = list_records(open_store(local_store))
    assert record.status == "failed" and record.notebook == "orphan"
    assert record.parameters == {"x": 2.0}
    assert record.error is not None and "did not start" in record.error.message

    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        yaml.safe_dump(
            {
                "steps": [
                    {"name": "make", "notebook": str(SIDECAR)},
                    {
                        "name": "use",
                        "notebook": str(CONSUMER),
                        "inputs": {"upstream_run_id": "make.run_id", "total": "make.absent"},
                    },
                ]
            }
        )
    )
    result = run_pipeline(load_pipeline(pipeline, root=tmp_path), store=local_store, progress=False)
    assert [s.status for s in result.steps] == ["succeeded", "failed"]
    failed = read_record(open_store(local_store), result.steps[1].run_id or "")
    assert failed.step == "use" and failed.parent_id == result.pipeline_id
    assert failed.error is not None
    assert "step use did not start: " in failed.error.message
    assert "no result 'absent'" in failed.error.message


def test_kernels_talk_over_unix_sockets_in_the_notebook_folder(
    local_store: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """No plain-TCP warning from the kernel between progress bars; nothing shared."""
    import os

    doc = json.loads(SIDECAR.read_text())
    doc["cells"].append(
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "report-cwd",
            "metadata": {},
            "outputs": [],
            "source": "from titan_lib.runner import save_results\n"
            "save_results({'cwd': os.getcwd()})",
        }
    )
    copy = tmp_path / "where" / "sidecar.ipynb"
    copy.parent.mkdir()
    copy.write_text(json.dumps(doc))
    before = os.getcwd()
    record = run_notebook(copy, {}, store=local_store, progress=True, progress_label="step one")
    assert os.getcwd() == before
    assert load_results(record.run_id, local_store).values["cwd"] == str(copy.parent)
    err = capfd.readouterr().err
    assert "without encryption" not in err
    assert "step one" in err  # the progress bar carries the step's name
