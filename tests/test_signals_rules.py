"""The vectorised signal rules: state machine semantics, kernel grid, z-scores, causality."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest

from titan_lib.core import RegimeGate, SignalRules, VolatilityRegimeModel, ZScoreSpec
from titan_lib.core.state_machine import REASONS
from titan_lib.data import sample_prices
from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import NotFoundError, ParameterError
from titan_lib.regimes import log_returns, markov_regimes
from titan_lib.signals import positions, run_state_machine, zscores

NAN = math.nan


def run_one(z, entry=2.0, exit_=0.5, stop=math.inf, max_hold=math.inf, gate=None):
    z = np.asarray(z, dtype=np.float64)
    n = z.size
    g = np.zeros((n, 1), np.int8) if gate is None else np.asarray(gate, np.int8).reshape(n, 1)
    pos, reasons = run_state_machine(
        z.reshape(n, 1),
        np.zeros(1, np.int64),
        np.array([entry]),
        np.array([exit_]),
        np.array([stop]),
        np.array([max_hold]),
        g,
        np.zeros(1, np.int64),
    )
    return pos[:, 0].tolist(), [REASONS[r] for r in reasons[:, 0]]


def test_entries_exits_and_overshoot() -> None:
    pos, why = run_one([0.0, -2.1, -1.0, -0.4, 2.5, 1.0, 0.3, -3.0, 2.2])
    assert pos == [0, 1, 1, 0, -1, -1, 0, 1, 0]
    assert why == [
        "hold",
        "enter_long",
        "hold",
        "exit",
        "enter_short",
        "hold",
        "exit",
        "enter_long",
        "exit",
    ]


def test_stop_disarms_until_back_inside_entry() -> None:
    pos, why = run_one([2.5, 4.2, 3.0, 2.5, 1.5, 2.6], stop=4.0)
    assert pos == [-1, 0, 0, 0, 0, -1]
    assert why == ["enter_short", "stop", "disarmed", "disarmed", "hold", "enter_short"]


def test_no_entry_beyond_stop() -> None:
    pos, why = run_one([4.5, -4.1, 3.9], stop=4.0)
    assert pos == [0, 0, -1]
    assert why == ["hold", "hold", "enter_short"]


def test_time_stop_counts_bars_held() -> None:
    pos, why = run_one([2.5, 2.4, 2.3, 2.2, 2.1, 1.0, 2.2], max_hold=3.0)
    assert pos == [-1, -1, -1, 0, 0, 0, -1]
    assert why[3] == "time_stop" and why[4] == "disarmed" and why[5] == "hold"


def test_regime_gate_blocks_and_flattens() -> None:
    pos, why = run_one([2.5, 2.5, 1.0, 1.2, 0.2, -2.5, -2.5], gate=[1, 0, 0, 2, 0, 2, 0])
    assert pos == [0, -1, -1, 0, 0, 0, 1]
    assert why == [
        "gate_blocked",
        "enter_short",
        "hold",
        "regime_exit",
        "hold",
        "gate_blocked",
        "enter_long",
    ]
    pos2, _ = run_one([-2.5, -2.5], gate=[0, 1])
    assert pos2 == [1, 1]  # a no-entry gate keeps an open position


def test_undefined_z_holds() -> None:
    pos, why = run_one([NAN, -2.5, NAN, NAN, 0.0], max_hold=10)
    assert pos == [0, 1, 1, 1, 0]
    assert why == ["no_signal", "enter_long", "no_signal", "no_signal", "exit"]


def test_kernel_grid_equals_single_runs() -> None:
    rng = np.random.default_rng(3)
    n = 500
    z = np.cumsum(rng.normal(0, 0.3, (n, 3)), axis=0) * 0.5
    z[:10, 1] = np.nan
    entries = np.array([1.0, 1.5, 2.0, 2.5])
    combos = [
        (k, e, x, s, h, g)
        for k in range(3)
        for e in entries
        for x in (0.0, 0.5)
        for s in (np.inf, e + 1.0)
        for h in (np.inf, 20.0)
        for g in range(2)
    ]
    gate = np.zeros((n, 2), np.int8)
    gate[:, 1] = (rng.uniform(size=n) < 0.2) * 2
    arrays = [np.array([c[i] for c in combos]) for i in range(6)]
    pos, reasons = run_state_machine(
        z,
        arrays[0].astype(np.int64),
        arrays[1],
        arrays[2],
        arrays[3],
        arrays[4],
        gate,
        arrays[5].astype(np.int64),
    )
    assert pos.shape == (n, len(combos))
    for j, (k, e, x, s, h, g) in enumerate(combos):
        single, why = run_one(z[:, k], e, x, s, h, gate[:, g])
        assert pos[:, j].tolist() == single
        assert [REASONS[r] for r in reasons[:, j]] == why


def test_rolling_and_ewma_zscores_match_pandas() -> None:
    rng = np.random.default_rng(11)
    spread = pl.Series(np.cumsum(rng.normal(0, 0.01, 800)) * 0.3 + 0.05)
    s = pd.Series(spread.to_numpy())
    rolling = zscores(spread, ZScoreSpec.rolling(40)).to_numpy()
    expected = ((s - s.rolling(40).mean()) / s.rolling(40).std(ddof=1)).to_numpy()
    assert np.array_equal(np.isnan(rolling), np.isnan(expected))
    assert np.nanmax(np.abs(rolling - expected)) < 1e-9
    for spec, kw in (
        (ZScoreSpec.ewma(halflife=12.5, min_periods=5), {"halflife": 12.5}),
        (ZScoreSpec.ewma(span=30.0, min_periods=5), {"span": 30.0}),
    ):
        ew = s.ewm(adjust=False, **kw)
        expected = ((s - ew.mean()) / np.sqrt(ew.var(bias=True))).to_numpy().copy()
        expected[:4] = np.nan
        got = zscores(spread, spec).to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(expected))
        assert np.nanmax(np.abs(got - expected)) < 1e-9


def test_flat_spread_gives_no_signal_not_infinity() -> None:
    z = zscores(pl.Series([1.0] * 50), ZScoreSpec.rolling(10)).to_numpy()
    assert np.isnan(z).all()


@pytest.fixture(scope="module")
def planted():
    universe = make_universe(6, 1500, 1, seed=4, phi=0.95)
    return universe.prices, universe.pairs[0]


def planted_positions(prices, pair, **kw):
    base = dict(
        y=pair.y,
        x=pair.x,
        beta=pair.beta,
        alpha=pair.alpha,
        zscore=ZScoreSpec.rolling(50),
        rules=SignalRules(entry=2.0, exit=0.5, stop=3.5, time_stop_half_lives=2.0),
        half_life=pair.half_life,
    )
    base.update(kw)
    return positions(prices, **base)


def perturb_after(prices: pl.DataFrame, cut: date, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    factor = pl.Series(np.exp(rng.normal(0, 0.2, prices.height)))
    return prices.with_columns(
        pl.when(pl.col("date") > cut).then(pl.col("close") * factor).otherwise(pl.col("close"))
    )


@pytest.mark.parametrize(
    "zscore",
    [ZScoreSpec.rolling(50), ZScoreSpec.ewma(halflife=15.0), ZScoreSpec.fixed(0.0, 0.03)],
    ids=["rolling", "ewma", "fixed"],
)
def test_no_look_ahead_in_positions(planted, zscore) -> None:
    prices, pair = planted
    market = prices.filter(pl.col("symbol") == pair.x).with_columns(pl.lit("MKT").alias("symbol"))
    prices = pl.concat([prices, market])
    gate = RegimeGate(
        VolatilityRegimeModel(window=15, thresholds=(0.34,)),
        blocked=(1,),
        flatten=True,
        market_symbol="MKT",
    )
    base = planted_positions(prices, pair, zscore=zscore, gate=gate)
    assert (base.get_column("position") != 0).sum() > 50
    assert {"open", "flatten"} <= set(base.get_column("gate").to_list())
    dates = base.get_column("date")
    for k, cut in enumerate([dates[300], dates[777], dates[1200]]):
        changed = planted_positions(perturb_after(prices, cut, k), pair, zscore=zscore, gate=gate)
        before = pl.col("date") <= cut
        cols = ["z", "regime", "position", "reason"]
        assert base.filter(before).select(cols).equals(changed.filter(before).select(cols))
        assert not base.filter(~before).select("z").equals(changed.filter(~before).select("z"))


def test_precomputed_walk_forward_regimes_gate(planted) -> None:
    prices, pair = planted
    returns = log_returns(prices, pair.x)
    regimes = markov_regimes(returns, walk_forward="expanding", min_train=600, refit_every=450)
    frame = planted_positions(prices, pair, regimes=regimes.filtered, blocked=(1,))
    assert frame.get_column("regime").null_count() >= 600
    assert (frame.filter(pl.col("regime").is_null()).get_column("position") == 0).all()
    assert set(frame.get_column("gate").unique().to_list()) >= {"open", "no_entry"}


def test_bad_inputs_are_named() -> None:
    prices = sample_prices(["KO", "PEP"])
    with pytest.raises(NotFoundError, match="XYZ"):
        positions(
            prices,
            y="KO",
            x="XYZ",
            beta=1.0,
            zscore=ZScoreSpec.rolling(20),
            rules=SignalRules(2.0, 0.5),
        )
    with pytest.raises(ParameterError, match="exit < entry"):
        SignalRules(entry=1.0, exit=1.5)
    with pytest.raises(ParameterError, match="half-life"):
        positions(
            prices,
            y="KO",
            x="PEP",
            beta=1.0,
            zscore=ZScoreSpec.rolling(20),
            rules=SignalRules(2.0, 0.5, time_stop_half_lives=2.0),
        )
    with pytest.raises(ParameterError, match="window"):
        ZScoreSpec.rolling(1)
