"""Several pairs in one account: allocation, gross cap, and agreement with single pairs."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from titan_lib.backtest import Costs, PairRule, PairSpec, backtest_pair, backtest_portfolio
from titan_lib.core.zscore import ZScoreSpec
from titan_lib.data.synthetic import make_universe


def book():
    universe = make_universe(n_symbols=8, n_days=800, n_pairs=3, seed=17, phi=0.9)
    rule = PairRule(entry=1.5, exit=0.25, stop=4.0, zscore=ZScoreSpec.rolling(30))
    specs = [PairSpec(p.y, p.x, beta=p.beta, alpha=p.alpha, rule=rule) for p in universe.pairs]
    return universe, specs


def test_fixed_notional_book_is_the_sum_of_its_pairs() -> None:
    """With fixed notionals and no cap, pairs do not interact: book P&L = sum of pair P&Ls."""
    universe, specs = book()
    costs = Costs(2.0, 1.0, 2.0, 60.0)
    result = backtest_portfolio(
        universe.prices,
        specs,
        notional=[2e5, 3e5, 1e5],
        costs=costs,
        init_cash=1e6,
        engine="vectorbt",
    )
    singles = [
        backtest_pair(
            universe.prices,
            s.y,
            s.x,
            beta=s.beta,
            alpha=s.alpha,
            entry=1.5,
            exit=0.25,
            stop=4.0,
            window=30,
            notional=n,
            costs=costs,
            init_cash=1e6,
            engine="numba",
        )
        for s, n in zip(specs, [2e5, 3e5, 1e5], strict=True)
    ]
    pnl = sum(r.final_equity - 1e6 for r in singles)
    assert math.isclose(result.final_equity - 1e6, pnl, rel_tol=1e-9)
    assert result.trades.height == sum(r.trades.height for r in singles)
    assert set(result.trades["pair"]) == {s.label for s in specs}


def test_gross_cap_scales_new_entries() -> None:
    universe, specs = book()
    cap = 0.6
    capped = backtest_portfolio(
        universe.prices, specs, target_weight=0.5, gross_cap=cap, engine="numba"
    )
    free = backtest_portfolio(universe.prices, specs, target_weight=0.5, engine="numba")
    pos = capped.positions
    eq = capped.equity.select("date", "equity")
    # at every signal close of an entry, the gross asked (open + new) is within the cap
    wide_close = universe.prices.pivot(on="symbol", index="date", values="close")
    scaled = 0
    for trade in capped.trades.iter_rows(named=True):
        d = trade["signal_date"]
        e = eq.filter(pl.col("date") == d)["equity"][0]
        row = wide_close.filter(pl.col("date") == d)
        # pairs closing on the entry's fill bar do not count against the cap
        closing = capped.trades.filter(pl.col("exit_date") == trade["entry_date"])["pair"]
        held = pos.filter((pl.col("date") == d) & ~pl.col("pair").is_in(closing.to_list()))
        gross = sum(
            abs(r["y_shares"]) * row[r["y"]][0] + abs(r["x_shares"]) * row[r["x"]][0]
            for r in held.iter_rows(named=True)
        )
        new = (
            abs(trade["y_shares"]) * row[trade["y"]][0]
            + abs(trade["x_shares"]) * row[trade["x"]][0]
        )
        assert gross + new <= cap * e * (1 + 1e-9)
        scaled += new < 0.5 * e * (1 - 1e-9)
    assert scaled >= 1
    assert free.stats["n_trades"] >= capped.stats["n_trades"]
    # without a cap each entry gets its allocation of the signal-close equity
    for trade in free.trades.head(5).iter_rows(named=True):
        d = trade["signal_date"]
        e = free.equity.filter(pl.col("date") == d)["equity"][0]
        row = wide_close.filter(pl.col("date") == d)
        new = (
            abs(trade["y_shares"]) * row[trade["y"]][0]
            + abs(trade["x_shares"]) * row[trade["x"]][0]
        )
        assert math.isclose(new, 0.5 * e, rel_tol=1e-12)
    a = backtest_portfolio(
        universe.prices, specs, target_weight=0.5, gross_cap=cap, engine="vectorbt"
    )
    np.testing.assert_allclose(
        a.equity["equity"].to_numpy(), capped.equity["equity"].to_numpy(), rtol=1e-10
    )
