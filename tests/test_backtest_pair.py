"""backtest_pair against an independent event loop, costs, look-ahead and bad input."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from test_backtest_reference import event_loop, rule_decisions

from titan_lib.backtest import Costs, backtest_pair
from titan_lib.data import sample_prices
from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError

REL = 1e-8


def real_pair() -> tuple[pl.DataFrame, str, str, float]:
    """KO/PEP, 2010-2019, hedge ratio from an OLS of log prices over 2008-2009 (before)."""
    prices = sample_prices(["KO", "PEP"]).filter(pl.col("date") <= pl.date(2019, 12, 31))
    fit = prices.filter(pl.col("date").is_between(pl.date(2008, 1, 1), pl.date(2009, 12, 31)))
    wide = fit.pivot(on="symbol", index="date", values="close").drop_nulls()
    beta = float(np.polyfit(np.log(wide["PEP"].to_numpy()), np.log(wide["KO"].to_numpy()), 1)[0])
    return prices, "KO", "PEP", beta


def loop_for(
    result,
    prices,
    y,
    x,
    *,
    start,
    beta,
    alpha,
    hedge,
    entry,
    exit_,
    stop,
    max_hold,
    window,
    notional,
    weight,
    costs,
    init_cash,
    use_open,
):
    wide = prices.pivot(
        on="symbol", index="date", values=["close", "open"] if use_open else "close"
    )
    wide = wide.sort("date")
    col = (lambda f, s: f"{f}_{s}") if use_open else (lambda f, s: s)
    dates = wide.get_column("date").to_list()
    first = next(i for i, d in enumerate(dates) if start is None or d >= start)
    cy = wide.get_column(col("close", y)).to_list()
    cx = wide.get_column(col("close", x)).to_list()
    fy = wide.get_column(col("open", y)).to_list() if use_open else cy
    fx = wide.get_column(col("open", x)).to_list() if use_open else cx
    decided, reasons = rule_decisions(
        cy, cx, beta, alpha, hedge, entry, exit_, stop, max_hold, window, first
    )
    return dates[first:], event_loop(
        cy[first:],
        cx[first:],
        fy[first:],
        fx[first:],
        decided,
        reasons,
        beta=beta,
        hedge=hedge,
        notional=notional,
        weight=weight,
        commission_bps=costs.commission_bps,
        fixed=costs.commission_fixed,
        slippage_bps=costs.slippage_bps,
        borrow_bps=costs.borrow_bps,
        init_cash=init_cash,
    )


def assert_same(result, dates, loop) -> None:
    """Same final equity (1e-8 relative), same equity path, same trade list."""
    equity = result.equity.get_column("equity").to_numpy()
    assert abs(equity[-1] - loop.equity[-1]) <= REL * abs(loop.equity[-1])
    np.testing.assert_allclose(equity, loop.equity, rtol=REL, atol=0)
    trades = result.trades
    assert trades.height == len(loop.trades)
    for row, ref in zip(trades.iter_rows(named=True), loop.trades, strict=True):
        assert row["side"] == ("long" if ref.side > 0 else "short")
        assert row["signal_date"] == dates[ref.signal_bar]
        assert row["entry_date"] == dates[ref.entry_bar]
        assert row["exit_date"] == (None if ref.exit_bar is None else dates[ref.exit_bar])
        assert row["exit_reason"] == ref.exit_reason
        assert math.isclose(row["y_shares"], ref.qy, rel_tol=1e-12)
        assert math.isclose(row["x_shares"], ref.qx, rel_tol=1e-12)
        assert abs(row["pnl"] - ref.pnl) <= REL * max(1.0, abs(ref.pnl), abs(loop.equity[0]) * 1e-3)
        end = len(dates) - 1 if ref.exit_bar is None else ref.exit_bar
        assert row["holding_days"] == end - ref.entry_bar


@pytest.mark.parametrize("engine", ["vectorbt", "numba"])
def test_real_pair_matches_event_loop(engine: str) -> None:
    prices, y, x, beta = real_pair()
    costs = Costs(commission_bps=2.0, commission_fixed=1.0, slippage_bps=3.0, borrow_bps=75.0)
    kwargs = dict(
        beta=beta, alpha=0.0, hedge="log", entry=2.0, exit_=0.5, stop=3.5, max_hold=60, window=60
    )
    result = backtest_pair(
        prices,
        y,
        x,
        beta=beta,
        entry=2.0,
        exit=0.5,
        stop=3.5,
        max_hold=60,
        window=60,
        target_weight=1.0,
        costs=costs,
        start="2010-01-01",
        engine=engine,
    )
    from datetime import date

    dates, loop = loop_for(
        result,
        prices,
        y,
        x,
        start=date(2010, 1, 1),
        notional=None,
        weight=1.0,
        costs=costs,
        init_cash=1_000_000.0,
        use_open=False,
        **kwargs,
    )
    assert len(loop.trades) >= 20
    assert {t.exit_reason for t in loop.trades} >= {"exit"}
    assert_same(result, dates, loop)
    assert result.settings["fill_price"] == "close"
    stats = result.stats
    assert math.isclose(
        stats["costs_paid"], loop.commission + loop.slippage + loop.borrow, rel_tol=1e-9
    )
    assert stats["n_trades"] == len(loop.trades)


def synthetic_case(seed: int):
    rng = np.random.default_rng(1000 + seed)
    universe = make_universe(
        n_symbols=2,
        n_days=int(rng.integers(150, 400)),
        n_pairs=1,
        seed=seed,
        phi=(0.8, 0.95),
        spread_sigma=0.02,
    )
    pair = universe.pairs[0]
    prices = universe.prices
    use_open = bool(rng.integers(0, 2))
    if use_open:
        noise = rng.normal(0.0, 0.005, prices.height)
        prices = prices.with_columns(open=pl.col("close") * np.exp(noise))
    entry = float(rng.uniform(1.0, 2.5))
    params = dict(
        beta=pair.beta * float(rng.uniform(0.9, 1.1)),
        alpha=pair.alpha,
        hedge="log",
        entry=entry,
        exit_=float(rng.uniform(0.0, entry * 0.8)),
        stop=float(entry + rng.uniform(0.5, 2.5)) if rng.random() < 0.7 else math.inf,
        max_hold=float(rng.integers(5, 60)) if rng.random() < 0.5 else math.inf,
        window=int(rng.integers(10, 60)),
    )
    if rng.random() < 0.5:
        sizing = dict(notional=float(rng.uniform(1e4, 1e5)), weight=None)
    else:
        sizing = dict(notional=None, weight=float(rng.uniform(0.2, 1.5)))
    costs = Costs(
        commission_bps=float(rng.uniform(0, 10)),
        commission_fixed=float(rng.uniform(0, 5)),
        slippage_bps=float(rng.uniform(0, 10)),
        borrow_bps=float(rng.uniform(0, 300)),
    )
    return prices, pair, params, sizing, costs, use_open


def test_fifty_synthetic_cases_match_event_loop() -> None:
    traded = 0
    for seed in range(50):
        prices, pair, p, sizing, costs, use_open = synthetic_case(seed)
        result = backtest_pair(
            prices,
            pair.y,
            pair.x,
            beta=p["beta"],
            alpha=p["alpha"],
            entry=p["entry"],
            exit=p["exit_"],
            stop=p["stop"],
            max_hold=p["max_hold"],
            window=p["window"],
            notional=sizing["notional"],
            target_weight=sizing["weight"],
            costs=costs,
            init_cash=1e5,
            engine="vectorbt",
        )
        assert result.settings["fill_price"] == ("open" if use_open else "close")
        dates, loop = loop_for(
            result,
            prices,
            pair.y,
            pair.x,
            start=None,
            costs=costs,
            init_cash=1e5,
            use_open=use_open,
            **sizing,
            **p,
        )
        assert_same(result, dates, loop)
        traded += len(loop.trades) > 0
    assert traded >= 45


def test_numba_engine_equals_vectorbt_with_flips() -> None:
    """A given position series that flips long/short directly: both engines agree."""
    universe = make_universe(n_symbols=2, n_days=300, n_pairs=1, seed=11)
    pair = universe.pairs[0]
    rng = np.random.default_rng(5)
    dates = universe.wide().get_column("date")
    states = np.repeat(rng.choice([-1, 0, 1], size=30), 10)
    positions = pl.DataFrame({"date": dates, "position": states})
    costs = Costs(commission_bps=5, commission_fixed=2, slippage_bps=4, borrow_bps=100)
    results = [
        backtest_pair(
            universe.prices,
            pair.y,
            pair.x,
            beta=pair.beta,
            positions=positions,
            target_weight=0.7,
            costs=costs,
            init_cash=1e5,
            engine=engine,
        )
        for engine in ("vectorbt", "numba")
    ]
    a, b = (r.equity.get_column("equity").to_numpy() for r in results)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    ta, tb = (r.trades for r in results)
    assert ta.select("side", "entry_date", "exit_date").equals(
        tb.select("side", "entry_date", "exit_date")
    )
    np.testing.assert_allclose(ta["pnl"].to_numpy(), tb["pnl"].to_numpy(), rtol=1e-9, atol=1e-6)
    assert (ta["exit_reason"].drop_nulls() != "open").sum() >= 1
    # trade P&L adds up to the equity change
    assert math.isclose(1e5 + ta["pnl"].sum(), results[0].final_equity, rel_tol=1e-10)


@pytest.mark.parametrize("engine", ["vectorbt", "numba"])
def test_costs_difference_equals_reported_costs(engine: str) -> None:
    prices, y, x, beta = real_pair()
    common = dict(
        beta=beta,
        entry=1.5,
        exit=0.25,
        stop=4.0,
        window=40,
        notional=500_000.0,
        start="2010-01-01",
        engine=engine,
    )
    free = backtest_pair(prices, y, x, costs=Costs(), **common)
    costs = Costs(commission_bps=3.0, commission_fixed=2.5, slippage_bps=5.0, borrow_bps=120.0)
    paid = backtest_pair(prices, y, x, costs=costs, **common)
    assert free.stats["costs_paid"] == 0.0
    assert paid.trades.select("entry_date", "exit_date").equals(
        free.trades.select("entry_date", "exit_date")
    )
    difference = free.final_equity - paid.final_equity
    reported = paid.stats["costs_paid"]
    assert reported > 1000.0
    assert all(paid.stats[k] > 0 for k in ("commission_paid", "slippage_paid", "borrow_paid"))
    assert math.isclose(difference, reported, rel_tol=1e-9)
    assert math.isclose(
        reported,
        paid.stats["commission_paid"] + paid.stats["slippage_paid"] + paid.stats["borrow_paid"],
        rel_tol=1e-12,
    )
    # per trade too: the P&L lost by each trade is that trade's costs; they add up
    lost = (free.trades["pnl"] - paid.trades["pnl"]).sum()
    assert math.isclose(lost, reported, rel_tol=1e-9)


@pytest.mark.parametrize("cut", [600, 1300, 2000])
def test_no_look_ahead(cut: int) -> None:
    prices, y, x, beta = real_pair()
    prices = prices.filter(pl.col("date") >= pl.date(2009, 1, 1))
    dates = prices.filter(pl.col("symbol") == y).get_column("date").sort()
    t = dates[cut]
    rng = np.random.default_rng(cut)
    shock = np.exp(np.cumsum(rng.normal(0, 0.03, prices.height)))
    perturbed = prices.with_columns(
        close=pl.when(pl.col("date") > t).then(pl.col("close") * shock).otherwise(pl.col("close"))
    )
    kwargs = dict(
        beta=beta,
        entry=1.5,
        exit=0.3,
        stop=3.0,
        max_hold=40,
        window=30,
        target_weight=1.0,
        costs=Costs(2, 1, 2, 50),
        start="2010-01-01",
        engine="numba",
    )
    base = backtest_pair(prices, y, x, **kwargs)
    moved = backtest_pair(perturbed, y, x, **kwargs)
    assert base.final_equity != moved.final_equity
    upto = pl.col("date") <= t
    assert base.equity.filter(upto).equals(moved.equity.filter(upto))
    assert base.positions.filter(upto).equals(moved.positions.filter(upto))
    done = pl.col("exit_date") <= t
    assert base.trades.filter(done).height >= 3
    assert base.trades.filter(done).equals(moved.trades.filter(done))
    started = pl.col("entry_date") <= t
    keep = ["side", "signal_date", "entry_date", "y_shares", "x_shares", "y_entry_price"]
    assert (
        base.trades.filter(started).select(keep).equals(moved.trades.filter(started).select(keep))
    )


def test_trades_and_stats_are_consistent() -> None:
    prices, y, x, beta = real_pair()
    result = backtest_pair(
        prices,
        y,
        x,
        beta=beta,
        entry=2.0,
        exit=0.0,
        stop=3.0,
        max_hold=30,
        window=60,
        costs=Costs(1, 0, 1, 30),
        start="2010-01-01",
        engine="numba",
    )
    trades = result.trades
    closed = trades.filter(pl.col("status") == "closed")
    reasons = set(closed["exit_reason"])
    assert reasons <= {"exit", "stop", "time_stop"}
    assert len(reasons) >= 2
    assert (closed["holding_days"] <= 30).all()
    assert math.isclose(result.stats["hit_rate"], (closed["pnl"] > 0).mean(), rel_tol=1e-12)
    assert math.isclose(
        result.stats["avg_holding_days"], closed["holding_days"].mean(), rel_tol=1e-12
    )
    eq = result.equity["equity"].to_numpy()
    assert math.isclose(result.stats["total_return"], eq[-1] / eq[0] - 1, rel_tol=1e-12)
    returns = eq[1:] / eq[:-1] - 1
    assert math.isclose(
        result.stats["sharpe"], returns.mean() / returns.std(ddof=1) * math.sqrt(252), rel_tol=1e-9
    )
    dd = 1 - eq / np.maximum.accumulate(eq)
    assert math.isclose(result.stats["max_drawdown"], dd.max(), rel_tol=1e-12)
    held = result.positions["state"].to_numpy() != 0
    assert math.isclose(result.stats["exposure"], held.mean(), rel_tol=1e-12)
    # the legs follow beta: x value = -beta * y value at entry (log hedge)
    first = trades.row(0, named=True)
    pos = result.positions.filter(pl.col("date") == first["signal_date"])
    assert pos["state"][0] == 0


def test_bad_parameters_are_rejected_before_running() -> None:
    junk = pl.DataFrame({"nothing": [1]})  # would fail as data if anything ran
    cases = [
        (dict(entry=1.0, exit=1.0), "exit"),
        (dict(entry=1.0, exit=1.5), "exit"),
        (dict(entry=2.0, exit=0.5, stop=1.5), "stop"),
        (dict(costs=None, notional=-5.0), "notional"),
        (dict(engine="pandas"), "engine"),
        (dict(window=1), "window"),
    ]
    for kwargs, word in cases:
        with pytest.raises(ParameterError, match=word):
            backtest_pair(junk, "A", "B", beta=1.0, **kwargs)
    with pytest.raises(ParameterError, match="slippage_bps"):
        backtest_pair(junk, "A", "B", beta=1.0, costs=Costs(slippage_bps=-1.0))
    with pytest.raises(ParameterError, match="borrow_bps"):
        Costs(borrow_bps=float("nan"))


def test_bad_data_is_named() -> None:
    prices = sample_prices(["KO", "PEP"])
    with pytest.raises(NotFoundError, match="XYZ"):
        backtest_pair(prices, "KO", "XYZ", beta=1.0)
    with pytest.raises(DataValidationError, match="open"):
        backtest_pair(prices, "KO", "PEP", beta=1.0, fill="open")


def test_default_hedge_is_fitted_before_the_trading_window() -> None:
    """Out of sample by construction: OLS of log prices on the formation bars only."""
    prices, y, x, _ = real_pair()
    result = backtest_pair(prices, y, x, formation=250, start="2010-01-04", engine="numba")
    fit = result.settings["hedge_fit"]
    assert result.sample == "out-of-sample" and fit["method"] == "ols-formation"
    assert fit["formation_end"] < fit["trading_start"] == "2010-01-04"
    assert result.equity.get_column("date")[0].isoformat() == "2010-01-04"
    wide = prices.pivot(on="symbol", index="date", values="close").drop_nulls().sort("date")
    window = wide.filter(pl.col("date") < pl.date(2010, 1, 4)).tail(250)
    assert window.get_column("date")[0].isoformat() == fit["formation_start"]
    slope, intercept = np.polyfit(np.log(window[x].to_numpy()), np.log(window[y].to_numpy()), 1)
    assert fit["beta"] == pytest.approx(slope, rel=1e-10)
    assert fit["alpha"] == pytest.approx(intercept, rel=1e-10, abs=1e-12)
    same = backtest_pair(prices, y, x, beta=fit["beta"], alpha=fit["alpha"], start="2010-01-04",
                         engine="numba")  # fmt: skip
    assert same.equity.equals(result.equity)
    assert same.sample == "in-sample"  # a given hedge without its fit window is not trusted
    dated = backtest_pair(prices, y, x, beta=fit["beta"], alpha=fit["alpha"], engine="numba",
                          start="2010-01-04", fitted_through=fit["formation_end"])  # fmt: skip
    assert dated.sample == "out-of-sample"
    late = backtest_pair(prices, y, x, beta=1.0, start="2010-01-04", fitted_through="2010-01-04",
                         engine="numba")  # fmt: skip
    assert late.sample == "in-sample"
    unset = backtest_pair(prices, y, x, formation=250, engine="numba")
    assert unset.settings["hedge_fit"]["formation_start"] == wide.get_column("date")[0].isoformat()
    assert unset.equity.height == wide.height - 250


def test_the_hedge_method_is_a_setting_passed_through() -> None:
    """``hedge_method`` picks the formation estimator; a wrong name fails before running."""
    prices, y, x, _ = real_pair()
    result = backtest_pair(prices, y, x, formation=250, start="2010-01-04", hedge_method="tls",
                           engine="numba")  # fmt: skip
    fit = result.settings["hedge_fit"]
    assert result.sample == "out-of-sample" and fit["method"] == "tls-formation"
    assert result.settings["backtest"]["sizing"]["hedge_method"] == "tls"
    wide = prices.pivot(on="symbol", index="date", values="close").drop_nulls().sort("date")
    window = wide.filter(pl.col("date") < pl.date(2010, 1, 4)).tail(250)
    ly, lx = np.log(window[y].to_numpy()), np.log(window[x].to_numpy())
    cov = np.cov(np.vstack([lx, ly]))
    axis = np.linalg.eigh(cov)[1][:, -1]  # largest principal axis of (ln x, ln y)
    assert fit["beta"] == pytest.approx(axis[1] / axis[0], rel=1e-9)
    assert fit["alpha"] == pytest.approx(ly.mean() - fit["beta"] * lx.mean(), rel=1e-9)
    ols = backtest_pair(prices, y, x, formation=250, start="2010-01-04", engine="numba")
    assert ols.settings["hedge_fit"]["beta"] != pytest.approx(fit["beta"], rel=1e-6)
    with pytest.raises(ParameterError, match="hedge_method must be one of"):
        backtest_pair(prices, y, x, hedge_method="median", engine="numba")  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", [100, 900])
def test_trading_window_prices_do_not_move_the_hedge(cut: int) -> None:
    """Look-ahead probe: prices after t change nothing used at t, the hedge included."""
    prices, y, x, _ = real_pair()
    dates = prices.filter(pl.col("date") >= pl.date(2010, 1, 4)).get_column("date").unique().sort()
    t = dates[cut]
    rng = np.random.default_rng(cut)
    shock = np.exp(np.cumsum(rng.normal(0, 0.03, prices.height)))
    moved = prices.with_columns(
        close=pl.when(pl.col("date") > t).then(pl.col("close") * shock).otherwise(pl.col("close"))
    )
    kwargs = dict(formation=500, start="2010-01-04", entry=1.5, exit=0.3, window=30,
                  costs=Costs(2, 1, 2, 50), engine="numba")  # fmt: skip
    base, other = backtest_pair(prices, y, x, **kwargs), backtest_pair(moved, y, x, **kwargs)
    assert base.settings["hedge_fit"] == other.settings["hedge_fit"]
    assert base.final_equity != other.final_equity
    upto = pl.col("date") <= t
    assert base.equity.filter(upto).equals(other.equity.filter(upto))
    assert base.positions.filter(upto).equals(other.positions.filter(upto))


def test_formation_window_errors_are_named() -> None:
    prices, y, x, _ = real_pair()
    first = prices.get_column("date").min()
    with pytest.raises(DataValidationError, match="formation window needs 252 bars before"):
        backtest_pair(prices, y, x, start=first, engine="numba")
    with pytest.raises(ParameterError, match="formation must be"):
        backtest_pair(prices, y, x, formation=5, engine="numba")
    with pytest.raises(ParameterError, match="give both or neither"):
        backtest_pair(prices, y, x, alpha=0.1, engine="numba")


def test_settings_objects_run_what_the_keywords_run_and_are_recorded() -> None:
    """The keyword function is a thin wrapper: the same run through the frozen settings
    objects gives the same numbers, and the run records its settings with ``asdict``."""
    import dataclasses

    from titan_lib.backtest import (
        BacktestSettings,
        HedgeFit,
        PairBacktest,
        PairRule,
        SizingSettings,
        run_pair,
        settings_dict,
    )
    from titan_lib.core.zscore import ZScoreSpec

    prices, y, x, _ = real_pair()
    costs = Costs(commission_bps=1.0, commission_fixed=0.5, slippage_bps=2.0, borrow_bps=40.0)
    keywords = backtest_pair(
        prices, y, x, formation=300, start="2012-01-03", end="2016-12-30", entry=1.8,
        exit=0.4, stop=3.5, max_hold=40, window=30, target_weight=0.6, costs=costs,
        init_cash=250_000.0, engine="numba",
    )  # fmt: skip
    settings = PairBacktest(
        rule=PairRule(entry=1.8, exit=0.4, stop=3.5, max_hold=40, zscore=ZScoreSpec.rolling(30)),
        hedge_fit=HedgeFit(formation=300),
        backtest=BacktestSettings(
            sizing=SizingSettings(target_weight=0.6), costs=costs, init_cash=250_000.0,
            start="2012-01-03", end="2016-12-30", engine="numba",
        ),
    )  # fmt: skip
    objects = run_pair(prices, y, x, settings)
    assert objects.equity.equals(keywords.equity) and objects.trades.equals(keywords.trades)
    assert objects.stats == keywords.stats
    recorded = keywords.settings["backtest"]
    # the trading window starts after the formation window; everything else as given
    expected = settings_dict(dataclasses.replace(settings.backtest, start=recorded["start"]))
    assert recorded == expected
    assert recorded["costs"] == dataclasses.asdict(costs) == keywords.settings["costs"]
    assert recorded["sizing"] == {
        "target_weight": 0.6,
        "notional": None,
        "hedge": "log",
        "hedge_method": "ols",
    }
    assert recorded["start"] == keywords.settings["hedge_fit"]["trading_start"]
    assert keywords.settings["rule"] == settings_dict(settings.rule)
    assert keywords.settings["rule"]["max_hold"] == 40
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.backtest.init_cash = 1.0  # type: ignore[misc]


def test_settings_objects_validate_once_when_built() -> None:
    from titan_lib.backtest import BacktestSettings, HedgeFit, SizingSettings

    for bad in (
        lambda: BacktestSettings(engine="pandas"),  # type: ignore[arg-type]
        lambda: BacktestSettings(init_cash=0.0),
        lambda: BacktestSettings(start="2020-01-02", end="2020-01-01"),
        lambda: BacktestSettings(costs={"commission_bps": 1.0}),  # type: ignore[arg-type]
        lambda: SizingSettings(target_weight=0.5, notional=1e5),
        lambda: SizingSettings(notional=(1e5, -1.0)),
        lambda: SizingSettings(hedge="ratio"),  # type: ignore[arg-type]
        lambda: HedgeFit(alpha=0.1),
        lambda: HedgeFit(formation=10),
    ):
        with pytest.raises(ParameterError):
            bad()
    per_pair = SizingSettings(target_weight=[0.25, 0.5]).per_pair(2)
    assert [(s.mode, s.value) for s in per_pair] == [
        ("target_weight", 0.25),
        ("target_weight", 0.5),
    ]
    assert [s.value for s in SizingSettings().per_pair(4)] == [0.25] * 4
    with pytest.raises(ParameterError, match="target_weight has 2 values for 3 pairs"):
        SizingSettings(target_weight=(0.25, 0.5)).per_pair(3)
