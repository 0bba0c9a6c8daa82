"""Spread statistics, q-values, screens and Johansen against truth and references."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa.vector_ar.vecm import coint_johansen

from titan_lib.data import sample_prices
from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError
from titan_lib.pairs import (
    benjamini_hochberg,
    correlation_screen,
    distance_screen,
    half_life,
    hurst_exponent,
    johansen,
    mean_crossings,
    price_panel,
    spread_stats,
)
from titan_lib.pairs.spread_stats import batch_spread_statistics


def ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(0, 1, n)
    s = np.empty(n)
    s[0] = e[0] / math.sqrt(1 - phi * phi)
    for t in range(1, n):
        s[t] = phi * s[t - 1] + e[t]
    return s


@pytest.mark.parametrize("phi", [0.8, 0.9, 0.95])
def test_half_life_of_a_long_ar1_is_within_ten_percent(phi: float) -> None:
    s = ar1(phi, 50_000, seed=int(phi * 100))
    truth = -math.log(2) / math.log(phi)
    assert abs(half_life(s) - truth) / truth < 0.10


def test_ar1_coefficient_equals_ols_and_edge_cases() -> None:
    s = ar1(0.7, 400, seed=1) + 3.0
    fit = sm.OLS(s[1:], sm.add_constant(s[:-1])).fit()
    stats = spread_stats(s)
    assert stats.phi == pytest.approx(fit.params[1], rel=1e-12)
    assert stats.half_life == pytest.approx(-math.log(2) / math.log(fit.params[1]), rel=1e-12)
    assert stats.mean == pytest.approx(s.mean(), rel=1e-12)
    assert stats.std == pytest.approx(s.std(ddof=1), rel=1e-12)
    explosive = np.exp(0.01 * np.arange(300)) + np.random.default_rng(2).normal(0, 1e-3, 300)
    assert half_life(explosive) == math.inf  # phi >= 1: no mean reversion
    alternating = np.array([1.0, -1.0] * 50) + np.random.default_rng(3).normal(0, 0.01, 100)
    assert math.isnan(half_life(alternating))  # phi < 0: undefined


def test_hurst_exponent_separates_walks_noise_and_reversion() -> None:
    rng = np.random.default_rng(4)
    walk = np.cumsum(rng.normal(0, 1, 20_000))
    noise = rng.normal(0, 1, 20_000)
    assert hurst_exponent(walk) == pytest.approx(0.5, abs=0.05)
    assert abs(hurst_exponent(noise)) < 0.05
    h_ar = hurst_exponent(ar1(0.9, 20_000, seed=5))
    assert 0.05 < h_ar < 0.4
    # V(tau) of a random walk grows like tau: the fitted line through the log variances
    lags = (2, 4, 8, 16, 32, 64)
    variances = [np.var(walk[k:] - walk[:-k]) for k in lags]
    slope = np.polyfit(np.log(lags), np.log(variances), 1)[0]
    assert hurst_exponent(walk) == pytest.approx(slope / 2, rel=1e-9)
    assert math.isnan(hurst_exponent(walk[:9]))  # fewer than three usable lags


def test_mean_crossings_counts_side_changes() -> None:
    s = np.array([1.0, 3.0, 0.5, 0.2, 4.0, 5.0, 0.0, 2.0])  # mean 2.0875
    above = s >= s.mean()
    assert mean_crossings(s) == int(np.sum(above[1:] != above[:-1])) == 5
    assert mean_crossings(np.arange(10.0)) == 1


def test_batch_statistics_equal_the_one_series_functions() -> None:
    rng = np.random.default_rng(6)
    values = np.cumsum(rng.normal(0, 0.01, (700, 4)), axis=0)
    values[:40, 2] = np.nan
    values[300:310, 3] = np.nan
    ii, jj = np.array([0, 2, 3]), np.array([1, 3, 0])
    coef = np.array([[0.8, 0.1, 0.0], [1.2, -0.3, 1e-4], [0.5, 0.0, 0.0]])
    out = batch_spread_statistics(values, ii, jj, coef)
    for q in range(3):
        rows = ~np.isnan(values[:, ii[q]]) & ~np.isnan(values[:, jj[q]])
        t = np.arange(1, rows.sum() + 1)
        spread = values[rows, ii[q]] - coef[q, 1] - coef[q, 0] * values[rows, jj[q]]
        spread -= coef[q, 2] * t
        ref = spread_stats(spread)
        expected = [ref.mean, ref.std, ref.phi, ref.half_life, ref.hurst, ref.crossings]
        assert np.allclose(out[q], expected, rtol=1e-12, atol=1e-15)


def test_benjamini_hochberg_equals_statsmodels() -> None:
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(0, 1, 300), rng.uniform(0, 1e-3, 20), [0.0, 1.0, 0.5]])
    q = benjamini_hochberg(p)
    assert np.allclose(q, multipletests(p, method="fdr_bh")[1], rtol=1e-12, atol=0)
    with_gaps = np.r_[np.nan, p[:10], np.nan]
    q2 = benjamini_hochberg(with_gaps)
    assert np.isnan(q2[0]) and np.isnan(q2[-1])
    assert np.allclose(q2[1:-1], multipletests(p[:10], method="fdr_bh")[1])
    with pytest.raises(DataValidationError, match=r"\[0, 1\]"):
        benjamini_hochberg([0.2, 1.5])


@pytest.fixture(scope="module")
def gapped_prices() -> pl.DataFrame:
    prices = make_universe(8, 400, 2, seed=8).prices
    return prices.filter(
        ~((pl.col("symbol") == "S0002") & (pl.col("date") < date(2010, 3, 1)))
        & ~((pl.col("symbol") == "S0005") & (pl.col("date").dt.day() == 15))
    )


def test_correlation_screen_equals_pairwise_numpy(gapped_prices: pl.DataFrame) -> None:
    table = correlation_screen(gapped_prices)
    assert table.height == 28
    assert table["correlation"].to_list() == sorted(table["correlation"].to_list(), reverse=True)
    wide = gapped_prices.pivot(on="symbol", index="date", values="close").sort("date")
    logs = wide.select(pl.exclude("date").log().diff())  # return needs both closes
    for row in table.iter_rows(named=True):
        both = logs.select(row["y"], row["x"]).drop_nulls()
        ref = np.corrcoef(both[row["y"]].to_numpy(), both[row["x"]].to_numpy())[0, 1]
        assert row["nobs"] == both.height
        assert row["correlation"] == pytest.approx(ref, abs=1e-12)


def test_distance_screen_equals_a_direct_sum(gapped_prices: pl.DataFrame) -> None:
    table = distance_screen(gapped_prices)
    wide = gapped_prices.pivot(on="symbol", index="date", values="close").sort("date")
    normalised = wide.select(pl.exclude("date") / pl.exclude("date").drop_nulls().first())
    for row in table.iter_rows(named=True):
        both = normalised.select(row["y"], row["x"]).drop_nulls()
        ref = float(((both[row["y"]] - both[row["x"]]) ** 2).sum())
        assert row["distance"] == pytest.approx(ref, rel=1e-10)
        assert row["nobs"] == both.height
    assert table["distance"].to_list() == sorted(table["distance"].to_list())


def test_screens_keep_each_symbols_top_k_partners(gapped_prices: pl.DataFrame) -> None:
    full = correlation_screen(gapped_prices)
    top = correlation_screen(gapped_prices, top_k=2)
    kept = set(zip(top["y"], top["x"], strict=True))
    symbols = sorted(set(full["y"]) | set(full["x"]))
    expected: set[tuple[str, str]] = set()
    for s in symbols:
        mine = full.filter((pl.col("y") == s) | (pl.col("x") == s)).head(2)
        expected |= set(zip(mine["y"], mine["x"], strict=True))
    assert kept == expected
    assert distance_screen(gapped_prices, top_k=1).height <= 8
    with pytest.raises(ParameterError, match="top_k"):
        distance_screen(gapped_prices, top_k=0)


def test_johansen_finds_a_planted_pair_and_matches_statsmodels() -> None:
    uni = make_universe(6, 2000, 1, seed=9, phi=0.9, beta=0.8)
    planted = uni.pairs[0]
    res = johansen(uni.prices, [planted.y, planted.x, "S0004"])
    assert res.rank_trace == 1 and res.rank_max_eig == 1
    assert res.vector[0] == 1.0
    assert res.vector[1] == pytest.approx(-planted.beta, abs=0.05)
    assert abs(res.vector[2]) < 0.05
    logs = np.log(uni.wide().select(planted.y, planted.x, "S0004").to_numpy())
    ref = coint_johansen(logs, 0, 1)
    assert np.allclose(res.trace_stat, ref.lr1, rtol=1e-12)
    assert np.allclose(res.max_eig_stat, ref.lr2, rtol=1e-12)
    assert np.allclose(res.trace_crit, ref.cvt) and np.allclose(res.max_eig_crit, ref.cvm)
    walks = johansen(uni.prices, ["S0002", "S0003", "S0005"], level=0.01)
    assert walks.rank_trace == 0


def test_johansen_bad_input() -> None:
    prices = sample_prices()
    symbols = sorted(set(prices["symbol"].to_list()))
    with pytest.raises(ParameterError, match="2 to 12 symbols, got 13"):
        johansen(prices, symbols[:13])
    with pytest.raises(ParameterError, match="2 to 12 symbols, got 1"):
        johansen(prices, ["KO"])
    with pytest.raises(NotFoundError, match="NOPE"):
        johansen(prices, ["KO", "NOPE"])
    with pytest.raises(ParameterError, match="level"):
        johansen(prices, ["KO", "PEP"], level=0.2)
    short = prices.filter(pl.col("date") > date(2022, 12, 1))
    with pytest.raises(DataValidationError, match="too short"):
        johansen(short, ["KO", "PEP"])
    days = [date(2021, 1, 1) + timedelta(k) for k in range(300)]
    flat = pl.DataFrame({"date": days, "A": np.linspace(1, 2, 300), "B": np.full(300, 5.0)})
    with pytest.raises(DataValidationError, match="constant series in the basket: B"):
        johansen(flat, ["A", "B"])
    panel = price_panel(prices.filter(pl.col("symbol").is_in(["KO", "PEP"])), transform="log")
    assert johansen(panel, ["PEP", "KO"]).symbols == ("PEP", "KO")
