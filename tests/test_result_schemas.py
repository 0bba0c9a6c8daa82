"""The result schemas: what each notebook saves, checked by name, and read by name.

Runs are written as notebooks write them (``save_results`` in a run's staging folder) and
published through the runner's publisher into a local store; the dashboards' readers then
read them back. ``tests/test_notebooks_run.py`` checks the real notebooks' results.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from titan_lib.dashboards.backtest_data import backtest_view
from titan_lib.dashboards.pair_data import market_regimes, scan_pairs
from titan_lib.dashboards.runs import KIND_FRAGMENTS
from titan_lib.exceptions import DataValidationError, NotFoundError
from titan_lib.runner import load_results, save_results
from titan_lib.runner.record import RunRecord, new_run_id, publish_record
from titan_lib.runner.result_schemas import (
    DEGRADATION_VALUE,
    EQUITY_TABLE,
    REGIMES_TABLE,
    RESULT_SCHEMAS,
    SAMPLE_VALUE,
    SCAN_TABLE,
    STATS_VALUE,
    SWEEP_TABLE,
    TRADES_TABLE,
    WINDOWS_TABLE,
    ResultSchema,
    ResultSchemaError,
    TableSchema,
    result_schema,
)
from titan_lib.runner.results import validate_results
from titan_lib.stores.objects import ObjectStore, open_store

DAYS = [date(2021, 1, 4) + timedelta(days=i) for i in range(6)]
STATS = {"sharpe": 1.25, "total_return": 0.1, "max_drawdown": 0.05, "commission_paid": 3.0}


def publish_run(
    store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    notebook: str,
    values: dict[str, Any],
    tables: dict[str, pl.DataFrame],
    summary: dict[str, Any],
    saved_by: str | None = None,
) -> str:
    """Save results as a notebook run does, then publish the run record (of ``notebook``;
    ``saved_by`` names the notebook ``save_results`` is told it runs in, if another)."""
    run_id = new_run_id()
    run_dir = tmp_path / run_id
    monkeypatch.setenv("TITAN_RUN_DIR", str(run_dir))
    monkeypatch.setenv("TITAN_RUN_ID", run_id)
    monkeypatch.setenv("TITAN_NOTEBOOK", saved_by or notebook)
    save_results(values, tables=tables, summary=summary)
    files = {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}
    record = RunRecord(
        run_id=run_id,
        notebook=notebook,
        status="succeeded",
        started_at="2026-11-30T07:00:00+00:00",
        ended_at="2026-11-30T07:00:02+00:00",
        duration_s=2.0,
        parameters={"objective": "sharpe"},
        code_version="titan-lib==test",
        packages={},
        host="test",
        python="3.11",
        store=store.uri,
        files=sorted(files),
    )
    publish_record(store, record, files)
    return run_id


def backtest_results() -> tuple[dict[str, Any], dict[str, pl.DataFrame], dict[str, Any]]:
    """What ``05_backtest`` saves, on six days."""
    equity = pl.DataFrame(
        {"date": DAYS, "equity": [100.0, 101, 99, 102, 104, 103], "drawdown": 0.0}
    )
    trades = pl.DataFrame(
        {
            "pair": ["KO/PEP"] * 2,
            "side": [1, -1],
            "signal_date": DAYS[:2],
            "entry_date": DAYS[1:3],
            "exit_date": DAYS[3:5],
            "holding_days": [2, 2],
            "pnl": [1.5, -0.5],
            "exit_reason": ["exit", "stop"],
        }
    )
    sweep = pl.DataFrame(
        {
            "entry": [1.5, 2.0, 1.5, 2.0],
            "exit": [0.0, 0.0, 0.5, 0.5],
            "stop": 4.0,
            "window": 20,
            "sharpe": [0.1, 0.2, 0.3, 0.4],
        }
    )
    schema = RESULT_SCHEMAS["05_backtest"]
    values: dict[str, Any] = dict.fromkeys(schema.values, "x")
    values |= {STATS_VALUE: STATS, SAMPLE_VALUE: "out-of-sample", "hedge_fit": {"beta": 1.0}}
    summary = {k.replace("{objective}", "sharpe"): 1.0 for k in schema.summary}
    return values, {EQUITY_TABLE: equity, TRADES_TABLE: trades, SWEEP_TABLE: sweep}, summary


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return open_store(str(tmp_path / "store"))


def test_problems_name_every_missing_table_column_value_and_summary_key() -> None:
    schema = ResultSchema(
        "09_demo",
        tables=(TableSchema("equity", ("date", "equity")), TableSchema("trades", ("pnl",))),
        values=("stats", "sample"),
        summary=("out-of-sample {objective}", "windows"),
    )
    fitting = {"equity": (["date", "equity", "extra"], 3), "trades": (["pnl"], 1)}
    values = {"stats": {}, "sample": "in-sample", "more": 1}
    summary = {"out-of-sample sortino": 1.0, "windows": 3}
    assert schema.problems(values, summary, fitting) == []
    assert schema.problems(values, {"out-of-sample ": 1.0, "windows": 3}, fitting) == [
        "no summary key 'out-of-sample {objective}'"
    ]
    broken = {"equity": (["date"], 3)}
    assert schema.problems({"stats": {}}, {"windows": 1}, broken) == [
        "table 'equity' lacks column(s) equity",
        "no table 'trades'",
        "no value 'sample'",
        "no summary key 'out-of-sample {objective}'",
    ]
    # tables without rows, e.g. frames built from an empty list, need not have the columns
    empty: dict[str, tuple[list[str], int]] = {"equity": ([], 0), "trades": ([], 0)}
    assert schema.problems(values, summary, empty) == []
    with pytest.raises(ResultSchemaError, match=r"results of 09_demo \(run r1\) do not fit"):
        schema.check({}, {}, broken, run_id="r1")


def test_a_published_run_is_validated_by_its_notebooks_schema(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values, tables, summary = backtest_results()
    run_id = publish_run(store, tmp_path, monkeypatch, "05_backtest", values, tables, summary)
    assert validate_results(load_results(run_id, store)) is RESULT_SCHEMAS["05_backtest"]

    del tables[SWEEP_TABLE]
    values.pop("best")
    tables[TRADES_TABLE] = tables[TRADES_TABLE].drop("pnl")
    broken = publish_run(
        store, tmp_path, monkeypatch, "05_backtest", values, tables, summary, "scratch"
    )
    with pytest.raises(ResultSchemaError) as raised:
        validate_results(load_results(broken, store))
    message = str(raised.value)
    assert f"05_backtest (run {broken})" in message
    assert "table 'trades' lacks column(s) pnl" in message
    assert "no table 'sweep'" in message and "no value 'best'" in message
    assert isinstance(raised.value, DataValidationError)
    assert raised.value.details["problems"] == [
        "table 'trades' lacks column(s) pnl",
        "no table 'sweep'",
        "no value 'best'",
    ]


def test_save_results_refuses_a_declared_table_without_its_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values, tables, _ = backtest_results()
    monkeypatch.setenv("TITAN_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("TITAN_NOTEBOOK", "05_backtest")
    equity = tables[EQUITY_TABLE]
    with pytest.raises(ResultSchemaError, match=r"05_backtest cannot save its results: "
                       r"table 'equity' lacks column\(s\) drawdown"):  # fmt: skip
        save_results(values, tables={"notes": equity, EQUITY_TABLE: equity.drop("drawdown")})
    assert not (tmp_path / "run").exists()  # nothing is written
    # tables are saved one call at a time: the others are checked once all are saved
    path = save_results(values, tables={EQUITY_TABLE: equity, "notes": equity.drop("equity")})
    assert path is not None
    assert json.loads(path.read_text())["tables"] == {
        "equity": "equity.parquet",
        "notes": "notes.parquet",
    }
    empty = pl.DataFrame()
    assert save_results(tables={TRADES_TABLE: empty}) == path  # no rows, no columns needed


def test_a_notebook_without_a_schema_is_named() -> None:
    with pytest.raises(NotFoundError, match="no result schema for notebook '09_mine'"):
        result_schema("09_mine")
    with pytest.raises(NotFoundError, match="05_backtest saves no table 'windows'"):
        RESULT_SCHEMAS["05_backtest"].table(WINDOWS_TABLE)


def test_the_backtest_report_reads_its_tables_and_values_by_name(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values, tables, summary = backtest_results()
    run_id = publish_run(store, tmp_path, monkeypatch, "05_backtest", values, tables, summary)
    view = backtest_view(store, run_id)
    assert view.equity is not None and view.equity["equity"].to_list() == [
        100.0, 101, 99, 102, 104, 103
    ]  # fmt: skip
    assert view.trades is not None and view.trades["pnl"].to_list() == [1.5, -0.5]
    assert view.sweep is not None and view.sweep.height == 4
    assert view.windows is None and view.degradation == {}
    # the statistics a report shows, in the labels' order; the cost parts are left out
    assert view.metrics == {"total_return": 0.1, "sharpe": 1.25, "max_drawdown": 0.05}
    assert view.sample == "out-of-sample"

    # a table is found by its name, not by its columns
    renamed = {"curve": tables[EQUITY_TABLE], "grid": tables[SWEEP_TABLE]}
    other = publish_run(store, tmp_path, monkeypatch, "05_backtest", values, renamed, summary)
    view = backtest_view(store, other)
    assert view.equity is None and view.sweep is None and view.trades is None


def test_the_dashboards_read_only_names_the_schemas_hold() -> None:
    kinds = {
        "backtest": "05_backtest",
        "walk_forward": "06_walk_forward",
        "scan": "02_pair_scan",
        "regimes": "04_regimes",
    }
    assert set(kinds) <= set(KIND_FRAGMENTS)
    for kind, notebook in kinds.items():
        assert KIND_FRAGMENTS[kind] in notebook
    for notebook in ("05_backtest", "06_walk_forward"):
        schema = RESULT_SCHEMAS[notebook]
        assert {EQUITY_TABLE, TRADES_TABLE} <= {t.name for t in schema.tables}
        assert {STATS_VALUE, SAMPLE_VALUE} <= set(schema.values)
        assert {"date", "equity"} <= set(schema.table(EQUITY_TABLE).columns)
    assert SWEEP_TABLE in {t.name for t in RESULT_SCHEMAS["05_backtest"].tables}
    walk_forward = RESULT_SCHEMAS["06_walk_forward"]
    assert {"train_start", "test_start"} <= set(walk_forward.table(WINDOWS_TABLE).columns)
    assert DEGRADATION_VALUE in walk_forward.values
    scan = RESULT_SCHEMAS["02_pair_scan"].table(SCAN_TABLE)
    assert {"y", "x", "hedge_ratio", "intercept", "qvalue"} <= set(scan.columns)
    regimes = RESULT_SCHEMAS["04_regimes"].table(REGIMES_TABLE)
    assert {"date", "regime"} <= set(regimes.columns)


def test_the_pair_explorer_reads_the_scan_and_regime_tables_by_name(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = pl.DataFrame(
        {
            "y": ["KO", "XOM"],
            "x": ["PEP", "CVX"],
            "hedge_ratio": [0.9, 1.1],
            "intercept": [0.1, 0.0],
            "qvalue": [0.2, 0.01],
        }
    )
    # a few of a scan's columns: what the explorer reads (save_results would want them all)
    scan_id = publish_run(
        store, tmp_path, monkeypatch, "02_pair_scan", {}, {"pairs": pairs}, {}, "scratch"
    )
    assert scan_pairs(store, scan_id).keys() == ["XOM/CVX", "KO/PEP"]
    regimes = pl.DataFrame({"date": DAYS, "regime": [0, 0, 1, 1, 0, None], "prob_0": 0.5})
    regime_id = publish_run(
        store, tmp_path, monkeypatch, "04_regimes", {}, {"regimes": regimes}, {}
    )
    labels = market_regimes(store, regime_id)
    assert labels is not None and labels["regime"].to_list() == [0, 0, 1, 1, 0]
    other = publish_run(store, tmp_path, monkeypatch, "04_regimes", {}, {"labels": regimes}, {})
    assert market_regimes(store, other) is None
    assert json.loads(store.read_bytes(f"runs/{other}/results.json"))["tables"] == {
        "labels": "labels.parquet"
    }
