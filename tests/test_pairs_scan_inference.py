"""Valid inference in scans: the error rate on simulated nulls, symmetry, hedge sign, stability.

Universes come from :func:`titan_lib.data.synthetic.make_universe`: every symbol is a random
walk (a common market factor plus its own walk), so no pair is cointegrated unless planted.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests

from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.pairs import benjamini_hochberg, engle_granger, pair_stability
from titan_lib.pairs.scan import NON_POSITIVE_HEDGE, SCAN_COLUMNS, rank_pairs

ALPHA = 0.10


def rejection_rates(prescreen: str | None, n_symbols: int, seeds: range) -> tuple[float, float]:
    """Share of null universes with any q <= ALPHA: as scanned, and with BH over survivors."""
    any_valid = any_naive = 0
    for seed in seeds:
        uni = make_universe(n_symbols, 250, 0, seed=seed)
        table = rank_pairs(uni.prices, prescreen=prescreen, top_k=1, min_obs=100)  # type: ignore[arg-type]
        any_valid += bool((table["qvalue"] <= ALPHA).any())
        naive = benjamini_hochberg(table["pvalue"].cast(pl.Float64).fill_null(np.nan).to_numpy())
        any_naive += bool((naive <= ALPHA).any())
    return any_valid / len(seeds), any_naive / len(seeds)


@pytest.mark.parametrize(
    ("prescreen", "n_symbols"), [(None, 16), ("distance", 60), ("correlation", 60)]
)
def test_q_values_keep_the_nominal_rate_on_simulated_nulls(
    prescreen: str | None, n_symbols: int
) -> None:
    """Under the global null the false discovery rate is the familywise rate: P(any q <= a)."""
    seeds = range(100)
    valid, naive = rejection_rates(prescreen, n_symbols, seeds)
    monte_carlo = 3 * math.sqrt(ALPHA * (1 - ALPHA) / len(seeds))
    assert valid <= ALPHA + monte_carlo, (prescreen, valid)
    if prescreen == "distance":
        # the screen keeps the pairs whose spreads look stationary: BH over the survivors
        # alone (what the universe-wide count replaces) breaks the nominal rate
        assert naive > ALPHA + monte_carlo, naive


def test_false_discovery_proportion_with_planted_pairs_stays_nominal() -> None:
    proportions = []
    found = 0
    for seed in range(60):
        uni = make_universe(20, 300, 3, seed=1000 + seed, phi=(0.6, 0.8))
        table = rank_pairs(uni.prices, min_obs=100)
        hits = table.filter(pl.col("qvalue") <= ALPHA)
        planted = {(p.y, p.x) for p in uni.pairs} | {(p.x, p.y) for p in uni.pairs}
        false = sum((y, x) not in planted for y, x in zip(hits["y"], hits["x"], strict=True))
        proportions.append(false / max(hits.height, 1))
        found += hits.height - false
    fdr = float(np.mean(proportions))
    assert fdr <= ALPHA + 3 * float(np.std(proportions)) / math.sqrt(len(proportions)), fdr
    assert found >= 0.8 * 3 * 60  # and the scan still finds the planted pairs


def test_benjamini_hochberg_counts_untested_hypotheses_as_p_one() -> None:
    rng = np.random.default_rng(4)
    p = rng.uniform(0, 0.2, 30) ** 2
    expected = multipletests(np.concatenate([p, np.ones(70)]), method="fdr_bh")[1][:30]
    np.testing.assert_allclose(benjamini_hochberg(p, n_tests=100), expected, rtol=1e-12)
    np.testing.assert_allclose(
        benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12
    )
    with pytest.raises(ParameterError, match="n_tests"):
        benjamini_hochberg(p, n_tests=29)


def renamed(prices: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, str]]:
    """Rename S0000..S00nn to names in reversed alphabetical order (every y becomes x)."""
    symbols = sorted(prices["symbol"].unique().to_list())
    mapping = {s: f"Z{len(symbols) - i:03d}" for i, s in enumerate(symbols)}
    return prices.with_columns(pl.col("symbol").replace_strict(mapping)), mapping


def test_the_verdict_does_not_depend_on_how_tickers_are_spelled() -> None:
    uni = make_universe(14, 600, 3, seed=31, phi=(0.8, 0.9))
    other, mapping = renamed(uni.prices)
    before = rank_pairs(uni.prices, min_obs=100)
    after = rank_pairs(other, min_obs=100)
    assert before.columns == list(SCAN_COLUMNS)
    back = {v: k for k, v in mapping.items()}
    # after renaming, the earlier symbol is the other leg: y and x swap
    after = after.select(
        pl.col("x").replace_strict(back).alias("y"),
        pl.col("y").replace_strict(back).alias("x"),
        pl.col("pvalue_xy").alias("pvalue_yx"),
        pl.col("pvalue_yx").alias("pvalue_xy"),
        "pvalue",
        "qvalue",
        "tradable",
        "reason",
        "rank",
    )
    joined = before.join(after, on=["y", "x"], suffix="_renamed")
    assert joined.height == before.height == 14 * 13 // 2
    for column in ("pvalue_yx", "pvalue_xy", "pvalue", "qvalue"):
        np.testing.assert_allclose(
            joined[column].to_numpy(), joined[f"{column}_renamed"].to_numpy(), rtol=1e-12
        )
    assert joined["tradable"].equals(joined["tradable_renamed"], check_names=False)
    assert joined["reason"].equals(joined["reason_renamed"], check_names=False)
    assert (joined["qvalue"] <= 0.05).sum() >= 3

    # the one-way test is what the symmetric default fixes: there, renaming moves p-values
    one_way = rank_pairs(uni.prices, min_obs=100, direction="y_on_x")
    one_way_renamed = rank_pairs(other, min_obs=100, direction="y_on_x").with_columns(
        pl.col("x").replace_strict(back).alias("y"), pl.col("y").replace_strict(back).alias("x")
    )
    moved = one_way.join(one_way_renamed, on=["y", "x"], suffix="_renamed").select(
        (pl.col("pvalue") / pl.col("pvalue_renamed")).log10().abs().max()
    )
    assert moved.item() > 0.1
    assert one_way["pvalue_xy"].null_count() == one_way.height
    assert set(one_way["direction"]) == {"y_on_x"}


def test_a_negative_hedge_ratio_is_flagged_and_not_ranked_as_tradable() -> None:
    uni = make_universe(8, 800, 1, seed=41, phi=0.9)
    wide = uni.wide()
    rng = np.random.default_rng(3)
    spread = np.zeros(wide.height)
    for t in range(1, wide.height):
        spread[t] = 0.85 * spread[t - 1] + rng.normal(0, 0.01)
    leg = np.log(wide["S0005"].to_numpy())
    mirror = pl.DataFrame(
        {"date": wide["date"], "symbol": "NEG", "close": np.exp(2.0 - 0.8 * leg + spread)}
    )
    prices = pl.concat([uni.prices, mirror.select(uni.prices.columns)])
    table = rank_pairs(prices, min_obs=100)
    row = table.filter((pl.col("y") == "NEG") & (pl.col("x") == "S0005")).row(0, named=True)
    assert row["hedge_ratio"] < 0
    assert row["qvalue"] < 0.01  # cointegrated, strongly
    assert row["reason"] == NON_POSITIVE_HEDGE
    assert row["tradable"] is False
    tradable = table.filter(pl.col("tradable"))
    assert row["rank"] > tradable["rank"].max()
    assert (tradable["hedge_ratio"] > 0).all() and tradable[
        "reason"
    ].null_count() == tradable.height
    planted = uni.pairs[0]
    good = table.filter((pl.col("y") == planted.y) & (pl.col("x") == planted.x)).row(0, named=True)
    assert good["tradable"] and good["rank"] == 1


def test_stability_repeats_the_test_on_each_part() -> None:
    uni = make_universe(4, 1000, 1, seed=51, phi=0.9)
    wide = uni.wide()
    pair = uni.pairs[0]
    y, x = np.log(wide[pair.y].to_numpy()), np.log(wide[pair.x].to_numpy())
    result = pair_stability(y, x, dates=wide["date"], n_subperiods=4)
    full = engle_granger(y, x)
    assert result.hedge_ratio == full.hedge_ratio
    assert result.periods["nobs"].to_list() == [250, 250, 250, 250]
    drifts = []
    for row, lo in zip(result.periods.iter_rows(named=True), range(0, 1000, 250), strict=True):
        forward = engle_granger(y[lo : lo + 250], x[lo : lo + 250])
        backward = engle_granger(x[lo : lo + 250], y[lo : lo + 250])
        assert row["pvalue_yx"] == forward.pvalue and row["pvalue_xy"] == backward.pvalue
        assert row["pvalue"] == max(forward.pvalue, backward.pvalue)
        assert row["hedge_ratio"] == forward.hedge_ratio
        assert row["start"] == wide["date"][lo] and row["end"] == wide["date"][lo + 249]
        drifts.append(abs(forward.hedge_ratio - full.hedge_ratio) / abs(full.hedge_ratio))
    assert result.max_hedge_drift == max(drifts)
    assert result.fraction_significant == np.mean([p <= 0.05 for p in result.periods["pvalue"]])
    assert result.fraction_significant >= 0.75 and result.hedge_sign_stable
    summary = result.to_dict()
    assert summary["n_periods"] == 4 and summary["periods"][0]["start"] == str(wide["date"][0])

    rolling = pair_stability(y, x, window=400, step=200)
    assert rolling.periods["start_index"].to_list() == [0, 200, 400, 600]
    assert rolling.periods["end_index"].to_list() == [399, 599, 799, 999]


def test_stability_exposes_a_relation_that_broke() -> None:
    uni = make_universe(4, 1200, 1, seed=52, phi=0.9)
    wide = uni.wide()
    pair = uni.pairs[0]
    y, x = np.log(wide[pair.y].to_numpy()), np.log(wide[pair.x].to_numpy())
    walk = np.cumsum(np.random.default_rng(8).normal(0, 0.02, 600))
    y = np.concatenate([y[:600], y[600:] + walk])  # cointegration ends half-way
    result = pair_stability(y, x, n_subperiods=4)
    assert result.periods["pvalue"][0] <= 0.05 and result.periods["pvalue"][1] <= 0.05
    assert result.fraction_significant <= 0.75
    assert result.max_hedge_drift > 0.1


def test_stability_rejects_bad_input() -> None:
    rng = np.random.default_rng(9)
    x = np.cumsum(rng.normal(0, 0.01, 300))
    y = 0.5 * x + rng.normal(0, 0.01, 300)
    with pytest.raises(ParameterError, match="either n_subperiods or a rolling window"):
        pair_stability(y, x, n_subperiods=3, window=100)
    with pytest.raises(ParameterError, match="window"):
        pair_stability(y, x, window=301)
    with pytest.raises(ParameterError, match="alpha"):
        pair_stability(y, x, alpha=1.5)
    with pytest.raises(ParameterError, match="direction"):
        pair_stability(y, x, direction="x_on_y")  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="same length"):
        pair_stability(y[:-1], x)
    with pytest.raises(DataValidationError, match="dates"):
        pair_stability(y, x, dates=list(range(10)))
    short = pair_stability(y, x, n_subperiods=20)  # 15 rows a part: below min_obs
    assert short.periods["reason"].null_count() == 0 and short.fraction_significant == 0.0
