"""Every research notebook executed through the runner (quick profile), checked by its sidecar.

The demo pipeline runs the seven notebooks in order on the bundled data in a fresh store;
the tests then read what each step published, as the next step and the dashboards do.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import copy_store

from titan_lib.core.model_registry import get_model, list_models
from titan_lib.exceptions import RunFailedError
from titan_lib.runner import (
    PipelineResult,
    collect_parameters,
    list_records,
    load_results,
    run_notebook,
)
from titan_lib.runner.parameter_files import resolve_notebook
from titan_lib.runner.result_schemas import RESULT_SCHEMAS
from titan_lib.runner.results import validate_results
from titan_lib.stores import open_store

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(
    demo_pipeline: tuple[PipelineResult, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[PipelineResult, str]:
    """The session's demo pipeline run, on a copy of its store (these tests add runs)."""
    result, store = demo_pipeline
    return result, copy_store(store, tmp_path_factory.mktemp("demo-copy") / "store")


def step_results(demo: tuple[PipelineResult, str], name: str):  # type: ignore[no-untyped-def]
    result, store = demo
    (step,) = [s for s in result.steps if s.name == name]
    assert step.run_id is not None
    return load_results(step.run_id, store)


def test_demo_pipeline_runs_every_notebook(demo: tuple[PipelineResult, str]) -> None:
    result, store = demo
    failures = [(s.name, s.error) for s in result.steps if s.status != "succeeded"]
    assert result.status == "succeeded", failures
    records = list_records(open_store(store), parent_id=result.pipeline_id)
    assert [r.notebook for r in records] == [
        "01_ingest",
        "02_pair_scan",
        "03_pair_analysis",
        "04_regimes",
        "05_backtest",
        "06_walk_forward",
        "07_publish",
    ]
    for record in records:
        assert record.succeeded and "results.json" in record.files and "report.html" in record.files
        assert record.parameters  # the quick profile's values were injected and recorded


def test_every_steps_results_fit_its_notebooks_schema(demo: tuple[PipelineResult, str]) -> None:
    """What each notebook saves holds every table, column, value and summary key that the
    next steps and the dashboards read (:mod:`titan_lib.runner.result_schemas`)."""
    result, store = demo
    checked = []
    for step in result.steps:
        assert step.run_id is not None, step.name
        results = load_results(step.run_id, store)
        schema = validate_results(results)  # raises, naming the notebook and what is missing
        assert schema.notebook == results.notebook
        assert set(results.tables) >= {t.name for t in schema.tables}
        checked.append(schema.notebook)
    assert checked == list(RESULT_SCHEMAS)


def test_ingest_and_scan_sidecars(demo: tuple[PipelineResult, str]) -> None:
    ingest = step_results(demo, "ingest")
    assert len(ingest.values["symbols"]) == 21 and "SP500" in ingest.values["symbols"]
    assert ingest.values["rows"] == ingest.table("coverage")["rows"].sum()

    scan = step_results(demo, "scan")
    assert "SP500" not in scan.values["universe"] and len(scan.values["universe"]) == 20
    assert scan.values["pairs_tested"] == 20 * 19 // 2
    top_pairs = scan.values["top_pairs"]
    assert top_pairs and scan.values["top_pair"] == top_pairs[0]
    qvalues = [p["qvalue"] for p in top_pairs]
    assert qvalues == sorted(qvalues)
    assert all(1.0 <= p["half_life"] <= 126.0 for p in top_pairs)
    table = scan.table("pairs")
    best = table.filter(table["reason"].is_null()).sort("qvalue").row(0, named=True)
    assert best["qvalue"] <= top_pairs[0]["qvalue"]


def test_analysis_regimes_and_backtest_follow_the_scans_top_pair(
    demo: tuple[PipelineResult, str],
) -> None:
    top = step_results(demo, "scan").values["top_pair"]
    analysis = step_results(demo, "analysis")
    regimes = step_results(demo, "regimes")
    backtest = step_results(demo, "backtest")
    for results in (analysis, regimes, backtest):
        assert results.values["pair"] == top["pair"]
        assert results.values["scan_run_id"] == step_results(demo, "scan").run_id
    assert analysis.values["hedge_ratio"] == pytest.approx(top["hedge_ratio"])
    assert analysis.values["spread_stats"]["half_life"] == pytest.approx(top["half_life"], rel=0.2)
    assert len(analysis.values["subperiods"]) == 3  # the quick profile's n_subperiods

    per_regime = regimes.values["per_regime"]
    assert [r["regime"] for r in per_regime] == [0, 1]
    assert sum(r["share_of_days"] for r in per_regime) == pytest.approx(1.0)

    trades = backtest.table("trades")
    assert backtest.values["stats"]["n_trades"] == trades.height
    assert backtest.table("equity")["equity"][-1] == pytest.approx(
        backtest.values["stats"]["final_equity"]
    )
    sweep = backtest.table("sweep")
    assert sweep.height == 3 * 2 * 2  # quick grid: entry x exit x window
    assert backtest.values["best"]["sharpe"] == pytest.approx(sweep["sharpe"].fill_nan(None).max())
    # out of sample by construction: the hedge saw only days before the first traded day
    fit = backtest.values["hedge_fit"]
    assert backtest.values["sample"] == "out-of-sample" and fit["method"] == "ols-formation"
    assert fit["formation_end"] < str(backtest.table("equity")["date"][0])
    assert backtest.values["best_sample"] == "in-sample"
    assert 0.0 <= backtest.values["overfitting"]["deflated_sharpe"] <= 1.0
    assert regimes.values["fit"] == "walk-forward" and regimes.values["sample"] == "out-of-sample"


def test_walk_forward_sidecar(demo: tuple[PipelineResult, str]) -> None:
    wf = step_results(demo, "walk_forward")
    windows = wf.table("windows")
    assert wf.values["n_windows"] == windows.height >= 2
    assert wf.table("equity")["window"].n_unique() <= windows.height
    chosen = {row["pair"] for row in wf.values["pairs_selected"]}
    assert chosen == set(wf.table("selections")["pair"].to_list())


def test_publish_runs_the_gate_and_labels_any_override(
    demo: tuple[PipelineResult, str],
) -> None:
    _, store = demo
    top = step_results(demo, "scan").values["top_pair"]
    best = step_results(demo, "backtest").values["best"]
    publish = step_results(demo, "publish")
    assert publish.values["model_ids"], "the demo publishes a model"
    judged = {c["pair"]: c for c in publish.values["candidates"]}
    assert top["pair"] in judged
    for c in judged.values():
        names = [k["name"] for k in c["criteria"]]
        assert names[:3] == ["qvalue", "hedge_ratio", "half_life"] and "pbo" in names
        assert c["failed"] == [k["name"] for k in c["criteria"] if not k["passed"]]
        assert c["details"]["walk_forward"]["sample"] == "out-of-sample"
        assert "supports_gate" in c["details"]["regime_gate"]  # the quick profile gates
    summary = publish.values["gate_summary"]
    for entry in publish.values["models"]:
        model = get_model(entry["model_id"], store)
        assert model.approval is not None and model.approval.status == entry["approval"]
        assert model.provenance.run_id == publish.run_id
        assert [c.name for c in model.approval.failed] == judged[entry["pair"]]["failed"]
        if model.approval.status == "override":
            assert model.approval.override is not None
            assert "demo on the bundled sample data" in model.approval.override.reason
            assert "published under override" in summary
    if not publish.values["passed"]:
        # no pair passes on the bundled data: the best candidate, under a recorded override
        assert summary.startswith("no candidate of") and publish.values["override"]["pairs"]
        (entry,) = publish.values["models"]
        assert entry["pair"] == top["pair"] and entry["approval"] == "override"
        model = get_model(entry["model_id"], store)
        assert (model.y, model.x) == (top["y"], top["x"])
        assert model.beta == pytest.approx(top["hedge_ratio"])
        assert (model.rules.entry, model.rules.exit, model.zscore.window) == (
            best["entry"],
            best["exit"],
            best["window"],
        )
    else:
        assert all(e["approval"] == "passed" for e in publish.values["models"])
    served = {m.model.model_id for m in list_models(store)}
    assert set(publish.values["model_ids"]) <= served


def test_publish_without_override_publishes_only_what_passes(
    demo: tuple[PipelineResult, str],
) -> None:
    """Run All with the notebook's defaults: a failing candidate is refused, not published."""
    _, store = demo
    before = {m.model.model_id for m in list_models(store)}
    notebook = resolve_notebook("07_publish", root=REPO)
    values = collect_parameters(
        notebook,
        profile="quick",
        root=REPO,
        values={
            "scan_run_id": step_results(demo, "scan").run_id,
            "backtest_run_id": step_results(demo, "backtest").run_id,
            "override_reason": "",
            "gate": "none",
        },
    )
    record = run_notebook(notebook, values, store=store, progress=False)
    results = load_results(record.run_id, store)
    assert results.values["override"] is None
    assert all(m["approval"] == "passed" for m in results.values["models"])
    assert set(results.values["approved"]) == set(results.values["passed"])
    for c in results.values["candidates"]:
        assert c["criteria"][-1] == {
            "name": "regime_gate", "value": None, "threshold": "no gate, or a gate that helps",
            "passed": True,
        }  # fmt: skip
    if not results.values["passed"]:
        assert results.values["models"] == [] and results.values["gate_summary"].startswith("no")
        assert {m.model.model_id for m in list_models(store)} == before


def test_html_report_shows_charts_without_code(demo: tuple[PipelineResult, str]) -> None:
    result, store = demo
    backtest = next(s for s in result.steps if s.name == "backtest")
    html = open_store(store).read_bytes(f"runs/{backtest.run_id}/report.html").decode()
    assert 'class="plotly-graph-div"' in html
    assert "05 · Backtest one pair, with costs" in html
    assert "backtest_pair(prices" not in html


def test_raising_cell_publishes_nothing(demo: tuple[PipelineResult, str]) -> None:
    _, store = demo
    before = {m.model.model_id for m in list_models(store)}
    runs_before = len(list_records(open_store(store)))
    notebook = resolve_notebook("07_publish", root=REPO)
    scan_id = step_results(demo, "scan").run_id
    values = collect_parameters(
        notebook,
        profile="quick",
        root=REPO,
        values={"scan_run_id": scan_id, "gate": "none", "time_stop_half_lives": -1.0},
    )
    with pytest.raises(RunFailedError, match="time_stop_half_lives must be > 0"):
        run_notebook(notebook, values, store=store, progress=False)
    records = list_records(open_store(store))
    assert len(records) == runs_before + 1
    failed = records[-1]
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.ename == "ParameterError"
    output = json.loads(open_store(store).read_bytes(f"runs/{failed.run_id}/output.ipynb"))
    assert any(
        o.get("ename") == "ParameterError" for c in output["cells"] for o in c.get("outputs", [])
    )
    assert {m.model.model_id for m in list_models(store)} == before
    with pytest.raises(RunFailedError):
        load_results(failed.run_id, store)


def test_ingest_notebook_on_s3(s3_store: str) -> None:
    notebook = resolve_notebook("01_ingest", root=REPO)
    values = collect_parameters(notebook, profile="quick", root=REPO)
    record = run_notebook(notebook, values, store=s3_store, progress=False)
    assert record.store == s3_store
    store = open_store(s3_store)
    assert [r.run_id for r in list_records(store)] == [record.run_id]
    results = load_results(record.run_id, s3_store)
    assert len(results.values["symbols"]) == 21
    assert store.exists("prices/latest/KO.json")  # the kernel ingested into the same bucket
