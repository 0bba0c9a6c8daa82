"""walk_forward on a seeded universe: selection, stitching, no look-ahead, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

from titan_lib.backtest import Costs, walk_forward
from titan_lib.backtest.selection import engine_selector
from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import ParameterError

GRID = {"entry": [1.5, 2.0], "exit": [0.0, 0.5], "window": [20, 40]}
SETTINGS = dict(
    grid=GRID,
    train=500,
    test=120,
    max_pairs=3,
    max_qvalue=0.05,
    half_life=(1.0, 60.0),
    costs=Costs(1.0, 0.0, 1.0, 25.0),
)


@pytest.fixture(scope="module")
def universe():
    return make_universe(n_symbols=8, n_days=1100, n_pairs=2, seed=8, phi=0.9)


@pytest.fixture(scope="module")
def result(universe):
    return walk_forward(universe.prices, **SETTINGS)


def test_selects_planted_pairs_and_stitches(universe, result) -> None:
    windows, sel = result.windows, result.selections
    assert windows.height == 5
    planted = {(p.y, p.x) for p in universe.pairs}
    chosen = set(sel.select("y", "x").iter_rows())
    assert chosen & planted
    assert (sel["qvalue"] <= 0.05).all() and sel["half_life"].is_between(1, 60).all()
    # test windows follow the training windows and each other
    assert (windows["test_start"] > windows["train_end"]).all()
    assert windows["test_start"].to_list()[1:] > windows["test_end"].to_list()[:-1]
    # stitched equity: one row per test bar, each window starts where the last ended
    eq = result.equity
    assert eq["date"].is_sorted() and eq["date"].n_unique() == eq.height
    rows = list(windows.iter_rows(named=True))
    for prev, nxt in itertools.pairwise(rows):
        assert nxt["start_equity"] == prev["end_equity"]
    assert math.isclose(result.stats["final_equity"], windows["end_equity"][-1], rel_tol=1e-12)
    # every out-of-sample trade is closed inside its test window
    trades = result.trades
    assert trades.height >= 3 and (trades["status"] == "closed").all()
    bounds = trades.join(windows.select("window", "test_start", "test_end"), on="window")
    assert (bounds["entry_date"] >= bounds["test_start"]).all()
    assert (bounds["exit_date"] <= bounds["test_end"]).all()
    deg = result.degradation
    traded = windows.filter(pl.col("n_pairs") > 0)
    assert deg["windows"] == traded.height
    assert math.isclose(deg["in_sample"], float(np.nanmean(traded["is_sharpe"].to_numpy())))
    assert math.isclose(deg["is_minus_oos"], deg["in_sample"] - deg["out_of_sample"])


def test_test_window_prices_do_not_change_its_choices(universe, result) -> None:
    windows = result.windows
    k = 2
    lo, hi = windows["test_start"][k], windows["test_end"][k]
    rng = np.random.default_rng(0)
    shock = np.exp(rng.normal(0.0, 0.05, universe.prices.height))
    perturbed = universe.prices.with_columns(
        close=pl.when(pl.col("date").is_between(lo, hi))
        .then(pl.col("close") * shock)
        .otherwise(pl.col("close"))
    )
    moved = walk_forward(perturbed, **SETTINGS)
    upto = pl.col("window") <= k
    assert moved.selections.filter(upto).equals(result.selections.filter(upto))
    before = pl.col("date") < lo
    assert moved.equity.filter(before).equals(result.equity.filter(before))
    during = pl.col("window") == k
    if result.windows["n_pairs"][k] > 0:
        assert not moved.equity.filter(during).equals(result.equity.filter(during))


def test_default_selection_is_the_pair_engine_on_the_training_window() -> None:
    """The selector's q-values and hedge ratios are the pair engine's on that window alone."""
    from titan_lib.pairs import engle_granger

    universe = make_universe(6, 700, 2, seed=21, phi=0.9)
    train = universe.prices.filter(pl.col("date") <= universe.prices["date"].unique().sort()[399])
    picked = engine_selector(train)
    assert picked.height == 15
    assert picked.get_column("qvalue").is_sorted()
    wide = train.pivot(on="symbol", index="date", values="close").sort("date")
    top = picked.row(0, named=True)
    direct = engle_granger(
        np.log(wide[top["y"]].to_numpy()), np.log(wide[top["x"]].to_numpy()), trend="c"
    )
    assert math.isclose(top["tstat"], direct.tstat, rel_tol=1e-10)
    assert math.isclose(top["hedge_ratio"], direct.hedge_ratio, rel_tol=1e-10)
    planted = {(p.y, p.x) for p in universe.pairs}
    assert {(r["y"], r["x"]) for r in picked.head(2).iter_rows(named=True)} == planted


def test_the_hedge_method_refits_each_chosen_pair_on_its_training_window(universe) -> None:
    """``hedge_method="tls"``: every chosen pair trades the TLS hedge of its training window."""
    from titan_lib.pairs import tls_hedge_ratio

    tls = walk_forward(universe.prices, **{**SETTINGS, "hedge_method": "tls"})
    chosen = tls.selections.join(
        tls.windows.select("window", "train_start", "train_end"), on="window"
    )
    assert chosen.height > 0
    wide = universe.prices.pivot(on="symbol", index="date", values="close").sort("date")
    for row in chosen.iter_rows(named=True):
        window = wide.filter(pl.col("date").is_between(row["train_start"], row["train_end"]))
        fit = tls_hedge_ratio(
            np.log(window[row["y"]].to_numpy()), np.log(window[row["x"]].to_numpy())
        )
        assert math.isclose(row["beta"], fit.hedge_ratio, rel_tol=1e-10)
        assert math.isclose(row["alpha"], fit.intercept, rel_tol=1e-10, abs_tol=1e-12)
    with pytest.raises(ParameterError, match="hedge_method"):
        walk_forward(universe.prices, **{**SETTINGS, "hedge_method": "median"})


def test_bad_parameters_rejected_before_running() -> None:
    junk = pl.DataFrame({"nothing": [1]})
    with pytest.raises(ParameterError, match="unknown objective 'profit'"):
        walk_forward(junk, grid=GRID, objective="profit")
    with pytest.raises(ParameterError, match="empty"):
        walk_forward(junk, grid={})
    with pytest.raises(ParameterError, match="exit"):
        walk_forward(junk, grid={"entry": [1.0], "exit": [1.0]})
    with pytest.raises(ParameterError, match="train"):
        walk_forward(junk, grid=GRID, train=5)
    with pytest.raises(ParameterError, match="mode"):
        walk_forward(junk, grid=GRID, mode="sliding")
    with pytest.raises(ParameterError, match="commission_fixed"):
        walk_forward(junk, grid=GRID, costs=Costs(commission_fixed=-1))


@pytest.fixture(scope="module")
def gate_prices() -> pl.DataFrame:
    from titan_lib.data import sample_prices

    return sample_prices(["KO", "PEP", "SP500"]).filter(
        pl.col("date").is_between(pl.date(2010, 1, 1), pl.date(2014, 12, 31))
    )


GATE_RULE = dict(train=504, test=126, costs=Costs(1.0, 2.0, 0.0, 50.0))


def test_gate_comparison_is_the_same_rule_with_and_without_the_gate(gate_prices) -> None:
    from titan_lib.backtest.pair import backtest_pair
    from titan_lib.backtest.rules import PairRule
    from titan_lib.backtest.walk_forward import gate_comparison
    from titan_lib.signals.fit import GateSettings

    rule = PairRule(entry=1.5, exit=0.25, stop=4.0)
    gate = GateSettings(kind="volatility", blocked=(1,))
    out = gate_comparison(gate_prices, "KO", "PEP", rule=rule, gate=gate, **GATE_RULE)
    windows = out.windows
    assert windows.height == 6 and (windows["train_end"] < windows["test_start"]).all()
    assert (windows["blocked_share"] > 0).any()
    evidence = out.to_dict()
    assert evidence["sample"] == "out-of-sample" and evidence["windows"] == 6
    assert evidence["sharpe_gain"] == pytest.approx(
        out.with_gate["sharpe"] - out.without_gate["sharpe"]
    )
    assert evidence["supports_gate"] == (out.sharpe_gain > 0)
    assert out.with_gate["n_trades"] < out.without_gate["n_trades"]
    first = windows.row(0, named=True)
    ungated = backtest_pair(
        gate_prices.filter(pl.col("date") <= first["test_end"]), "KO", "PEP",
        beta=first["beta"], alpha=first["alpha"], entry=1.5, exit=0.25, stop=4.0,
        costs=GATE_RULE["costs"], start=first["test_start"], end=first["test_end"],
        flatten_at_end=True, engine="numba",
    )  # fmt: skip
    assert first["sharpe_without"] == pytest.approx(ungated.stats["sharpe"], rel=1e-12)


@pytest.mark.parametrize("kind", ["volatility", "markov"])
def test_gate_evidence_has_no_look_ahead(gate_prices, kind) -> None:
    """Prices after a window's test end change nothing of that window or earlier ones."""
    from titan_lib.backtest.rules import PairRule
    from titan_lib.backtest.walk_forward import gate_comparison
    from titan_lib.signals.fit import GateSettings

    settings = dict(rule=PairRule(entry=1.5, exit=0.25), gate=GateSettings(kind=kind, blocked=(1,)))
    base = gate_comparison(gate_prices, "KO", "PEP", **settings, **GATE_RULE)
    cut = base.windows["test_end"][2]
    rng = np.random.default_rng(4)
    shock = np.exp(np.cumsum(rng.normal(0, 0.03, gate_prices.height)))
    moved = gate_prices.with_columns(
        close=pl.when(pl.col("date") > cut).then(pl.col("close") * shock).otherwise(pl.col("close"))
    )
    other = gate_comparison(moved, "KO", "PEP", **settings, **GATE_RULE)
    done = pl.col("test_end") <= cut
    assert base.windows.filter(done).height == 3
    assert base.windows.filter(done).equals(other.windows.filter(done))
    assert not base.windows.filter(~done).equals(other.windows.filter(~done))


def test_the_run_records_its_settings_objects(result) -> None:
    from titan_lib.backtest import (
        BacktestSettings,
        PairRule,
        SelectionSettings,
        SweepSettings,
        WindowSettings,
        settings_dict,
    )

    assert result.settings == {
        "windows": settings_dict(WindowSettings(train=500, test=120)),
        "selection": settings_dict(SelectionSettings(max_pairs=3, half_life=(1.0, 60.0))),
        "sweep": settings_dict(SweepSettings(grid=GRID, base=PairRule(), objective="sharpe")),
        "backtest": settings_dict(
            BacktestSettings(
                costs=SETTINGS["costs"], gross_cap=1.0, flatten_at_end=True, engine="numba"
            )
        ),
    }
    assert result.settings["backtest"]["costs"]["borrow_bps"] == 25.0
