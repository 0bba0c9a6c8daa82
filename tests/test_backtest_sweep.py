"""sweep: equal to vectorbt per combination, chunked, on a Dask cluster, bad grids."""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
import pytest

from titan_lib.backtest import Costs, backtest_pair
from titan_lib.backtest.overfitting import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from titan_lib.backtest.stats import STAT_NAMES
from titan_lib.backtest.sweep import (
    best_params,
    rank,
    sweep,
    sweep_overfitting,
    sweep_trials,
)
from titan_lib.data import sample_prices
from titan_lib.exceptions import ParameterError

GRID = {
    "entry": [1.5, 2.0, 2.5],
    "exit": [0.0, 0.5, 1.0],
    "stop": [3.0, math.inf],
    "window": [20, 60],
}
COMMON = dict(
    beta=0.9,
    target_weight=0.8,
    costs=Costs(commission_bps=2.0, commission_fixed=1.0, slippage_bps=3.0, borrow_bps=80.0),
    start="2012-01-01",
    end="2019-12-31",
)


@pytest.fixture(scope="module")
def prices() -> pl.DataFrame:
    return sample_prices(["KO", "PEP"])


@pytest.fixture(scope="module")
def table(prices: pl.DataFrame) -> pl.DataFrame:
    return sweep(prices, "KO", "PEP", grid=GRID, base=None, **COMMON)


def test_table_is_tidy(table: pl.DataFrame) -> None:
    assert table.height == 3 * 3 * 2 * 2
    assert table.columns == ["entry", "exit", "stop", "max_hold", "window", *STAT_NAMES]
    combos = table.select("entry", "exit", "stop", "window").unique()
    assert combos.height == table.height
    assert table["n_trades"].min() >= 1


def test_total_returns_equal_vectorbt_on_every_combination(
    prices: pl.DataFrame, table: pl.DataFrame
) -> None:
    worst = 0.0
    for row in table.iter_rows(named=True):
        result = backtest_pair(
            prices,
            "KO",
            "PEP",
            entry=row["entry"],
            exit=row["exit"],
            stop=row["stop"],
            window=row["window"],
            engine="vectorbt",
            **COMMON,
        )
        assert result.settings["engine"] == "vectorbt"
        worst = max(worst, abs(result.stats["total_return"] - row["total_return"]))
        assert result.stats["n_trades"] == row["n_trades"]
        for name in ("sharpe", "max_drawdown", "costs_paid", "hit_rate"):
            a, b = result.stats[name], row[name]
            assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-7)
    assert worst <= 1e-9


def test_chunks_and_top_k(prices: pl.DataFrame, table: pl.DataFrame) -> None:
    chunked = sweep(prices, "KO", "PEP", grid=GRID, chunk_size=7, **COMMON)
    assert chunked.equals(table)
    top = sweep(prices, "KO", "PEP", grid=GRID, chunk_size=5, objective="sharpe", top=4, **COMMON)
    assert top.equals(rank(table, "sharpe").head(4))
    best = best_params(table, "sharpe")
    assert best["sharpe"] == table["sharpe"].max()


def test_invalid_combinations_dropped_on_request(prices: pl.DataFrame) -> None:
    grid = {"entry": [1.0, 2.0], "exit": [0.5, 1.5], "stop": [1.8, 4.0], "window": [30]}
    with pytest.raises(ParameterError, match=re.escape("exit 1.5 >= entry 1")):
        sweep(prices, "KO", "PEP", grid=grid, **COMMON)
    kept = sweep(prices, "KO", "PEP", grid=grid, invalid="drop", **COMMON)
    expected = {
        (e, x, s) for e in grid["entry"] for x in grid["exit"] for s in grid["stop"] if x < e < s
    }
    assert set(kept.select("entry", "exit", "stop").iter_rows()) == expected


@pytest.mark.slow
def test_dask_cluster_gives_the_same_table(prices: pl.DataFrame, table: pl.DataFrame) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        spread = sweep(prices, "KO", "PEP", grid=GRID, chunk_size=9, scheduler=client, **COMMON)
        workers = client.run(lambda: 1)
    assert len(workers) == 2
    assert spread.equals(table)


def test_bad_grids_rejected_before_running() -> None:
    junk = pl.DataFrame({"nothing": [1]})
    cases = [
        ({}, "empty"),
        ({"entry": []}, "empty"),
        ({"entry": [2.0], "exit": [2.5]}, "exit 2.5 >= entry 2"),
        ({"entry": [2.0], "stop": [1.0]}, "stop 1 <= entry 2"),
        ({"threshold": [1.0]}, "unknown grid parameter"),
        ({"entry": [2.0], "window": [1]}, "window"),
        ({"window": [20], "halflife": [5.0]}, "not both"),
    ]
    for grid, message in cases:
        with pytest.raises(ParameterError, match=re.escape(message)):
            sweep(junk, "A", "B", beta=1.0, grid=grid)
    with pytest.raises(ParameterError, match="unknown objective 'alpha'"):
        sweep(junk, "A", "B", beta=1.0, grid={"entry": [2.0]}, objective="alpha", top=3)
    with pytest.raises(ParameterError, match="commission_bps"):
        sweep(junk, "A", "B", beta=1.0, grid={"entry": [2.0]}, costs=Costs(commission_bps=-2))


def test_planted_pair_trades_profitably_without_costs() -> None:
    """Seeded ground truth: on a planted mean-reverting pair with its true beta, the rule
    makes money at zero cost for every combination of a sensible grid."""
    from titan_lib.data.synthetic import make_universe

    universe = make_universe(n_symbols=4, n_days=1500, n_pairs=1, seed=21, phi=0.9)
    pair = universe.pairs[0]
    out = sweep(
        universe.prices,
        pair.y,
        pair.x,
        beta=pair.beta,
        alpha=pair.alpha,
        grid={"entry": [1.5, 2.0], "exit": [0.0, 0.5], "window": [40, 80]},
    )
    assert (out["total_return"] > 0).all()
    assert (np.asarray(out["hit_rate"]) > 0.6).all()


def test_trial_returns_are_each_combinations_equity_returns(
    prices: pl.DataFrame, table: pl.DataFrame
) -> None:
    trials = sweep_trials(prices, "KO", "PEP", grid=GRID, chunk_size=7, **COMMON)
    assert trials.table.equals(table)
    assert trials.returns.shape == (trials.dates.shape[0], table.height)
    growth = np.prod(1.0 + trials.returns, axis=0) - 1.0
    np.testing.assert_allclose(growth, table["total_return"].to_numpy(), rtol=1e-9, atol=1e-12)
    row = table.row(5, named=True)
    single = backtest_pair(
        prices, "KO", "PEP", entry=row["entry"], exit=row["exit"], stop=row["stop"],
        window=row["window"], engine="numba", **COMMON,
    )  # fmt: skip
    np.testing.assert_allclose(
        trials.returns[:, 5], single.equity["returns"].to_numpy()[1:], rtol=1e-9, atol=1e-15
    )
    assert str(trials.dates[0]) == str(single.equity["date"][1])


def test_sweep_reports_deflated_sharpe_and_pbo_of_its_best_combination(
    prices: pl.DataFrame,
) -> None:
    trials = sweep_trials(prices, "KO", "PEP", grid=GRID, risk_free=0.02, **COMMON)
    report = sweep_overfitting(trials, "sharpe", n_pairs=190)
    best = best_params(trials.table, "sharpe")
    assert report.best == best and trials.table.row(report.best_index, named=True) == best
    excess = trials.returns - 0.02 / 252
    assert report.n_trials == 36 * 190 and report.n_combinations == 36
    assert report.dsr == deflated_sharpe_ratio(excess, report.best_index, n_trials=36 * 190)
    assert report.pbo == probability_of_backtest_overfitting(excess, n_splits=16)
    assert report.deflated.sharpe * math.sqrt(252) == pytest.approx(best["sharpe"], rel=1e-9)
    alone = sweep_overfitting(trials, "sharpe")
    assert alone.n_trials == 36 and alone.dsr > report.dsr  # more pairs considered deflate more
    summary = report.to_dict()
    assert summary["sample"] == "in-sample" and summary["n_pairs"] == 190
    assert summary["pbo_splits"] == 16 and 0.0 <= summary["pbo"] <= 1.0
    with pytest.raises(ParameterError, match="n_pairs"):
        sweep_overfitting(trials, "sharpe", n_pairs=0)
    with pytest.raises(ParameterError, match="unknown objective"):
        sweep_overfitting(trials, "alpha")  # type: ignore[arg-type]


def test_short_history_uses_fewer_pbo_blocks(prices: pl.DataFrame) -> None:
    short = {**COMMON, "start": "2019-06-03", "end": "2019-12-31"}
    trials = sweep_trials(
        prices, "KO", "PEP", grid={"entry": [1.5, 2.0], "window": [5, 10]}, **short
    )
    report = sweep_overfitting(trials, "total_return")
    rows = trials.returns.shape[0]
    assert report.overfitting is not None
    assert report.overfitting.n_splits == min(16, 2 * (rows // 40))
    assert rows // report.overfitting.n_splits >= 20


def test_settings_objects_sweep_what_the_keywords_sweep(prices, table) -> None:
    """:func:`sweep` is a thin wrapper over :func:`run_sweep`; the trials record both
    settings objects, and a bad grid fails when the settings are built."""
    from titan_lib.backtest import BacktestSettings, PairRule, SizingSettings, settings_dict
    from titan_lib.backtest.sweep import SweepSettings, run_sweep, run_sweep_trials

    settings = SweepSettings(grid=GRID, base=PairRule())
    backtest = BacktestSettings(
        sizing=SizingSettings(target_weight=0.8), costs=COMMON["costs"], start="2012-01-01",
        end="2019-12-31", engine="numba",
    )  # fmt: skip
    assert run_sweep(prices, "KO", "PEP", beta=0.9, settings=settings, backtest=backtest).equals(
        table
    )
    trials = run_sweep_trials(prices, "KO", "PEP", beta=0.9, settings=settings, backtest=backtest)
    assert trials.table.equals(table)
    assert trials.settings == {
        "sweep": settings_dict(settings),
        "backtest": settings_dict(backtest),
    }
    assert trials.settings["backtest"]["start"] == "2012-01-01"
    assert trials.settings["sweep"]["base"]["entry"] == 2.0
    with pytest.raises(ParameterError, match=re.escape("exit 1.5 >= entry 1")):
        SweepSettings(grid={"entry": [1.0, 2.0], "exit": [1.5]})
    with pytest.raises(ParameterError, match="top needs an objective"):
        SweepSettings(grid=GRID, top=3)
