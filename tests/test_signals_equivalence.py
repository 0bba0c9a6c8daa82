"""The pure-Python evaluator and the vectorised rules give the same answer.

Real pair: KO/PEP from the bundled sample, hedge fitted with statsmodels OLS on 2008-2009,
traded 2010-2019 (10 years). Synthetic: hypothesis draws price paths and thresholds.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from titan_lib.core import (
    FitSummary,
    Provenance,
    RegimeGate,
    SignalModel,
    SignalRules,
    VolatilityRegimeModel,
    ZScoreSpec,
    evaluate,
    signal_path,
)
from titan_lib.data import sample_prices
from titan_lib.signals import model_positions, pair_prices
from titan_lib.signals.fit import GateSettings, fit_signal_model

FIT = (date(2008, 1, 2), date(2009, 12, 31))
TRADE = (date(2010, 1, 1), date(2019, 12, 31))


@pytest.fixture(scope="module")
def real_prices() -> pl.DataFrame:
    return sample_prices(["KO", "PEP", "SP500"])


@pytest.fixture(scope="module")
def hedge(real_prices: pl.DataFrame) -> tuple[float, float, float]:
    """(beta, alpha, half-life) of log KO on log PEP over the fit window, via statsmodels."""
    wide = pair_prices(real_prices, ["KO", "PEP"]).filter(pl.col("date").is_between(*FIT))
    ly = np.log(wide.get_column("KO").to_numpy())
    lx = np.log(wide.get_column("PEP").to_numpy())
    alpha, beta = sm.OLS(ly, sm.add_constant(lx)).fit().params
    spread = ly - beta * lx - alpha
    phi = sm.OLS(spread[1:], sm.add_constant(spread[:-1])).fit().params[1]
    return float(beta), float(alpha), float(-math.log(2.0) / math.log(phi))


def closes_by_symbol(prices: pl.DataFrame, symbols: tuple[str, ...]) -> dict[str, list]:
    return {
        s: [
            (d.isoformat(), c)
            for d, c in prices.filter(pl.col("symbol") == s).select("date", "close").iter_rows()
        ]
        for s in symbols
    }


def step_day_by_day(model: SignalModel, tails: dict[str, list], lookback: int) -> tuple:
    """Evaluate bar by bar, each call seeing only the last ``lookback`` bars and the state."""
    n = len(tails[model.y])
    positions, zs, reasons = [], [], []
    state = None
    for i in range(n):
        window = {s: v[max(0, i - lookback) : i + 1] for s, v in tails.items()}
        signal = evaluate(model, window, position=state) if state else evaluate(model, window)
        state = signal.state
        positions.append(signal.position)
        zs.append(math.nan if signal.zscore is None else signal.zscore)
        reasons.append(signal.reason)
    return np.array(positions), np.array(zs), reasons


def assert_same_path(frame: pl.DataFrame, model: SignalModel, tails: dict[str, list]) -> None:
    """The evaluator's recorded replay equals the vectorised rules bar by bar."""
    path = signal_path(model, tails)
    assert [date.fromisoformat(d) for d in path.dates] == frame.get_column("date").to_list()
    assert np.array_equal(np.array(path.positions), frame.get_column("position").to_numpy())
    vz = frame.get_column("z").to_numpy()
    pz = np.array([math.nan if z is None else z for z in path.zscores])
    assert np.array_equal(np.isnan(vz), np.isnan(pz))
    assert np.allclose(vz[~np.isnan(vz)], pz[~np.isnan(pz)], rtol=0.0, atol=1e-9)
    last = evaluate(model, tails)
    assert (path.positions[-1], path.dates[-1]) == (last.position, last.as_of)


def assert_same(frame: pl.DataFrame, positions: np.ndarray, zs: np.ndarray, reasons: list) -> None:
    vz = frame.get_column("z").to_numpy()
    assert np.array_equal(np.isnan(vz), np.isnan(zs))
    defined = ~np.isnan(vz)
    assert defined.sum() > 0
    assert np.max(np.abs(vz[defined] - zs[defined])) <= 1e-9
    assert np.array_equal(frame.get_column("position").to_numpy(), positions)
    assert frame.get_column("reason").to_list() == reasons


ZSPECS = {
    "rolling": ZScoreSpec.rolling(60),
    "ewma": ZScoreSpec.ewma(halflife=20.0),
    "fixed": "fixed",
}


@pytest.mark.parametrize("method", list(ZSPECS))
def test_real_pair_ten_years_day_by_day(method, real_prices, hedge) -> None:
    beta, alpha, half_life = hedge
    model = fit_signal_model(
        real_prices,
        y="KO",
        x="PEP",
        beta=beta,
        alpha=alpha,
        start=FIT[0],
        end=FIT[1],
        zscore=ZSPECS[method],
        rules=SignalRules(entry=2.0, exit=0.5, stop=3.5, time_stop_half_lives=3.0),
        half_life=half_life,
        gate=GateSettings("volatility", blocked=(1,), flatten=True, window=21),
    )
    traded = real_prices.filter(pl.col("date").is_between(date(2009, 12, 31), TRADE[1]))
    frame = model_positions(model, traded)
    assert frame.get_column("date")[-1] - frame.get_column("date")[1] > np.timedelta64(3640, "D")
    positions, zs, reasons = step_day_by_day(model, closes_by_symbol(traded, model.symbols), 70)
    assert_same(frame, positions, zs, reasons)
    assert_same_path(frame, model, closes_by_symbol(traded, model.symbols))
    # the rules did trade, and the gate did act, over the decade
    assert {"enter_long", "enter_short"} & set(reasons)
    assert (frame.get_column("position") != 0).sum() > 100
    assert {"open", "flatten"} <= set(frame.get_column("gate").to_list())
    # stateless replay over the whole history gives the last bar's answer too
    replay = evaluate(model, closes_by_symbol(traded, model.symbols))
    assert replay.position == positions[-1]
    run = len(positions) - np.flatnonzero(positions != positions[-1]).max() - 1
    assert replay.state.held == (run - 1 if positions[-1] != 0 else 0)


def test_real_pair_with_markov_gate(real_prices, hedge) -> None:
    beta, alpha, half_life = hedge
    model = fit_signal_model(
        real_prices,
        y="KO",
        x="PEP",
        beta=beta,
        alpha=alpha,
        start=date(2005, 1, 3),
        end=FIT[1],
        zscore=ZScoreSpec.ewma(span=30.0),
        rules=SignalRules(entry=1.5, exit=0.25, time_stop_half_lives=4.0),
        half_life=half_life,
        gate=GateSettings("markov", blocked=(1,), flatten=False),
    )
    traded = real_prices.filter(pl.col("date").is_between(date(2009, 12, 31), TRADE[1]))
    frame = model_positions(model, traded)
    positions, zs, reasons = step_day_by_day(model, closes_by_symbol(traded, model.symbols), 5)
    assert_same(frame, positions, zs, reasons)
    assert_same_path(frame, model, closes_by_symbol(traded, model.symbols))
    assert "gate_blocked" in reasons
    regimes = frame.get_column("regime")
    assert regimes.null_count() == 1 and set(regimes.drop_nulls().to_list()) == {0, 1}


def synthetic_model(draw_zscore: ZScoreSpec, rules: SignalRules, gate: RegimeGate | None):
    return SignalModel(
        y="Y",
        x="X",
        beta=0.8,
        alpha=0.1,
        zscore=draw_zscore,
        rules=rules,
        fit=FitSummary(start="2000-01-03", end="2000-01-03", nobs=1, half_life=7.0),
        provenance=Provenance(code_version="test"),
        gate=gate,
    )


def synthetic_prices(seed: int, n: int, phi: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    market = np.cumsum(rng.normal(0.0, 0.01 * rng.uniform(0.5, 2.0), n))
    lx = 4.0 + np.cumsum(rng.normal(0.0, 0.015, n))
    s = np.zeros(n)
    for t in range(1, n):
        s[t] = phi * s[t - 1] + rng.normal(0.0, 0.01)
    ly = 0.1 + 0.8 * lx + s
    dates = pl.date_range(
        date(2000, 1, 3), date(2000, 1, 3) + np.timedelta64(n - 1, "D"), eager=True
    )
    return pl.DataFrame(
        {"date": dates, "Y": np.exp(ly), "X": np.exp(lx), "M": 100 * np.exp(market)}
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(40, 160),
    phi=st.floats(0.5, 0.99),
    exit_=st.floats(0.0, 1.0),
    entry_gap=st.floats(0.05, 2.0),
    stop_gap=st.one_of(st.none(), st.floats(0.05, 2.0)),
    time_stop=st.one_of(st.none(), st.floats(0.2, 5.0)),
    method=st.sampled_from(["rolling", "ewma_halflife", "ewma_span", "fixed"]),
    window=st.integers(2, 30),
    gated=st.booleans(),
    flatten=st.booleans(),
    threshold=st.floats(0.05, 0.4),
)
def test_property_evaluator_equals_vectorised(
    seed, n, phi, exit_, entry_gap, stop_gap, time_stop, method, window, gated, flatten, threshold
) -> None:
    prices = synthetic_prices(seed, n, phi)
    entry = exit_ + entry_gap
    rules = SignalRules(
        entry=entry,
        exit=exit_,
        stop=math.inf if stop_gap is None else entry + stop_gap,
        time_stop_half_lives=time_stop,
    )
    spec = {
        "rolling": ZScoreSpec.rolling(window),
        "ewma_halflife": ZScoreSpec.ewma(halflife=window / 3.0),
        "ewma_span": ZScoreSpec.ewma(span=float(window), min_periods=max(1, window // 2)),
        "fixed": ZScoreSpec.fixed(0.0, 0.02),
    }[method]
    gate = None
    if gated:
        gate = RegimeGate(
            model=VolatilityRegimeModel(window=max(2, window // 2), thresholds=(threshold,)),
            blocked=(1,),
            flatten=flatten,
            market_symbol="M",
        )
    model = synthetic_model(spec, rules, gate)
    frame = model_positions(model, prices)
    tails = {
        s: [(d.isoformat(), c) for d, c in prices.select("date", s).iter_rows()]
        for s in model.symbols
    }
    positions, zs, reasons = step_day_by_day(model, tails, window + 2)
    if not np.isnan(zs).all():
        assert_same(frame, positions, zs, reasons)
    assert np.array_equal(frame.get_column("position").to_numpy(), positions)
    replay = evaluate(model, tails)
    assert replay.position == positions[-1] and replay.reason == reasons[-1]
    assert_same_path(frame, model, tails)
