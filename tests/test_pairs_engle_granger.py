"""Engle-Granger details: missing data, both paths, reasons, BIC, MacKinnon, bad input."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from statsmodels.tsa.adfvalues import mackinnoncrit, mackinnonp
from statsmodels.tsa.stattools import coint

from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError
from titan_lib.pairs import (
    engle_granger,
    engle_granger_batch,
    mackinnon_critical_values,
    mackinnon_pvalue,
    price_panel,
)


def sm_coint(y: np.ndarray, x: np.ndarray, **kw: object) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, p, _ = coint(y, x, return_results=False, **kw)  # type: ignore[arg-type]
    return float(t), float(p)


@pytest.fixture(scope="module")
def universe() -> pl.DataFrame:
    return make_universe(12, 600, 2, seed=7).prices


def gapped(prices: pl.DataFrame) -> pl.DataFrame:
    """Remove different dates from different symbols (late start, holes, early end)."""
    days = sorted(prices["date"].unique().to_list())
    drop = {
        "S0000": set(days[:57]),
        "S0001": set(days[100:113]) | set(days[400:402]),
        "S0003": set(days[-31:]),
        "S0005": set(days[::7]),
    }
    keep = [
        d not in drop.get(s, set())
        for s, d in zip(prices["symbol"].to_list(), prices["date"].to_list(), strict=True)
    ]
    return prices.filter(pl.Series(keep))


@pytest.mark.parametrize("trend", ["c", "ct"])
@pytest.mark.parametrize("autolag", ["aic", "bic", None])
def test_missing_data_pairs_use_their_common_dates(
    universe: pl.DataFrame, trend: str, autolag: str | None
) -> None:
    prices = gapped(universe)
    maxlag = None if autolag else 3
    table = engle_granger_batch(
        prices,
        trend=trend,
        autolag=autolag,
        maxlag=maxlag,
        price_transform="log",  # type: ignore[arg-type]
    )
    wide = prices.pivot(on="symbol", index="date", values="close").sort("date")
    for row in table.iter_rows(named=True):
        both = wide.select("date", row["y"], row["x"]).drop_nulls()
        y, x = np.log(both[row["y"]].to_numpy()), np.log(both[row["x"]].to_numpy())
        t, p = sm_coint(y, x, trend=trend, autolag=autolag, maxlag=maxlag)
        assert row["nobs"] == both.height
        assert row["start"] == both["date"][0] and row["end"] == both["date"][-1]
        assert abs(row["tstat"] - t) <= 1e-8, row
        assert abs(row["pvalue"] - p) <= 1e-8, row


def test_dense_blocks_and_per_pair_path_agree(universe: pl.DataFrame) -> None:
    """Small blocks (cross-block products), one block, and the per-pair kernel agree."""
    panel = price_panel(universe, transform="log")
    one_block = engle_granger_batch(panel, both_directions=True)
    blocks = engle_granger_batch(panel, both_directions=True, chunk_size=5)
    assert one_block.select("y", "x").equals(blocks.select("y", "x"))
    for col in ("tstat", "pvalue", "hedge_ratio", "intercept"):
        assert np.allclose(one_block[col], blocks[col], rtol=0, atol=1e-10)
    assert one_block["lag"].to_list() == blocks["lag"].to_list()
    sparse_pairs = [("S0002", "S0009"), ("S0011", "S0004")]  # a short list: per-pair path
    few = engle_granger_batch(panel, pairs=sparse_pairs)
    for row in few.iter_rows(named=True):
        i, j = panel.index(row["y"]), panel.index(row["x"])
        single = engle_granger(panel.values[:, i], panel.values[:, j])
        assert abs(single.tstat - row["tstat"]) <= 1e-10
        assert single.lag == row["lag"]
        ref = one_block.filter((pl.col("y") == row["y"]) & (pl.col("x") == row["x"]))
        assert abs(ref["tstat"][0] - row["tstat"]) <= 1e-10


def test_both_directions_and_pair_lists(universe: pl.DataFrame) -> None:
    panel = price_panel(universe, transform="log")
    table = engle_granger_batch(panel, both_directions=True)
    assert table.height == 12 * 11
    forward = table.filter(pl.col("y") == "S0000", pl.col("x") == "S0001")
    backward = table.filter(pl.col("y") == "S0001", pl.col("x") == "S0000")
    ys, xs = panel.column("S0000"), panel.column("S0001")
    assert abs(forward["tstat"][0] - sm_coint(ys, xs)[0]) <= 1e-8
    assert abs(backward["tstat"][0] - sm_coint(xs, ys)[0]) <= 1e-8
    as_frame = engle_granger_batch(panel, pairs=pl.DataFrame({"y": ["S0001"], "x": ["S0000"]}))
    assert as_frame["tstat"][0] == pytest.approx(backward["tstat"][0], abs=1e-10)


def test_untested_pairs_carry_a_reason() -> None:
    days = [date(2020, 1, 1) + timedelta(days=k) for k in range(200)]
    rng = np.random.default_rng(3)
    walk = lambda: 50 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))  # noqa: E731
    frame = pl.DataFrame(
        {
            "date": days,
            "AAA": walk(),
            "BBB": walk(),
            "FLAT": np.full(200, 10.0),
            "NEW": [None] * 180 + list(walk()[:20]),
        }
    )
    table = engle_granger_batch(frame, min_obs=50, price_transform="log")
    reasons = {(r["y"], r["x"]): r["reason"] for r in table.iter_rows(named=True)}
    assert reasons[("AAA", "BBB")] is None
    assert reasons[("AAA", "FLAT")] == "x is constant on the common sample"
    assert reasons[("BBB", "FLAT")] == "x is constant on the common sample"
    assert reasons[("FLAT", "NEW")] == "fewer than 50 common observations"
    assert reasons[("AAA", "NEW")] == "fewer than 50 common observations"
    untested = table.filter(pl.col("reason").is_not_null())
    assert untested["tstat"].null_count() == untested.height
    assert untested["pvalue"].null_count() == untested.height
    too_big = engle_granger_batch(frame.select("date", "AAA", "BBB"), maxlag=150)
    assert too_big["reason"][0] == "maxlag 150 exceeds nobs//2 - 1 for the common sample"


def test_collinear_pair_follows_statsmodels() -> None:
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 1, 500)) + 100
    y = 2.0 * x + 1.0 + rng.normal(0, 1e-9, 500)
    res = engle_granger(y, x)
    t, p = sm_coint(y, x)
    assert res.tstat == t == -np.inf and res.pvalue == p == 0.0
    assert res.collinear and res.lag is None
    frame = pl.DataFrame({"date": [date(2020, 1, 1) + timedelta(k) for k in range(500)]})
    table = engle_granger_batch(frame.with_columns(Y=y, X=x), pairs=[("Y", "X")])
    assert table["tstat"][0] == -np.inf and table["pvalue"][0] == 0.0
    assert "collinear" in table["reason"][0]


def test_mackinnon_surface_equals_statsmodels() -> None:
    grid = np.concatenate([np.linspace(-30, 5, 701), [-np.inf, np.inf]])
    for trend in ("c", "ct"):
        for n_series in range(1, 13):
            if n_series <= 6:
                ours = mackinnon_pvalue(grid, trend, n_series)  # type: ignore[arg-type]
                ref = [mackinnonp(t, regression=trend, N=n_series) for t in grid]
                assert np.array_equal(ours, np.asarray(ref, dtype=float))
            for nobs in (30, 251, 2520, 8313):
                crit = mackinnon_critical_values(nobs, trend, n_series)  # type: ignore[arg-type]
                expected = mackinnoncrit(N=n_series, regression=trend, nobs=nobs - 1)
                assert np.array_equal(np.asarray(crit), np.asarray(expected))
    assert np.isnan(mackinnon_pvalue(np.nan))
    with pytest.raises(ParameterError, match=r"1\.\.6 series"):
        mackinnon_pvalue(-3.0, "c", 7)


def test_result_fields_match_coint_critical_values() -> None:
    prices = make_universe(4, 300, 1, seed=11).wide()
    y, x = np.log(prices["S0000"].to_numpy()), np.log(prices["S0001"].to_numpy())
    res = engle_granger(y, x, trend="ct")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, crit = coint(y, x, trend="ct", return_results=False)
    assert np.array_equal(np.asarray(res.crit_values), crit)
    assert res.nobs == 300 and res.maxlag == 16 and res.trend == "ct"  # ceil(12 * 3 ** 0.25)
    assert res.to_dict()["crit_values"] == list(res.crit_values)


@pytest.mark.parametrize(
    ("y", "x", "kwargs", "error", "message"),
    [
        (np.ones(100), np.arange(100.0), {}, DataValidationError, "y is constant"),
        (np.arange(100.0), np.full(100, 3.0), {}, DataValidationError, "x is constant"),
        (np.arange(10.0), np.arange(10.0) ** 2, {}, DataValidationError, "too short"),
        (np.arange(50.0), np.arange(40.0), {}, DataValidationError, "same length"),
        (np.arange(50.0), np.sin(np.arange(50.0)), {"trend": "n"}, ParameterError, "trend"),
        (
            np.arange(50.0),
            np.sin(np.arange(50.0)),
            {"autolag": "t-stat"},
            ParameterError,
            "autolag",
        ),
        (np.arange(50.0), np.sin(np.arange(50.0)), {"maxlag": 40}, ParameterError, "too large"),
        (np.r_[1.0, np.inf, np.ones(48)], np.arange(50.0), {}, DataValidationError, "infinite"),
    ],
)
def test_bad_input_is_a_clear_error(
    y: np.ndarray, x: np.ndarray, kwargs: dict[str, object], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        engle_granger(y, x, **kwargs)  # type: ignore[arg-type]


def test_batch_bad_input(universe: pl.DataFrame) -> None:
    with pytest.raises(NotFoundError, match="NOPE"):
        engle_granger_batch(universe, pairs=[("S0000", "NOPE")])
    with pytest.raises(NotFoundError, match="NOPE"):
        engle_granger_batch(universe, symbols=["S0000", "NOPE"])
    with pytest.raises(ParameterError, match="two different"):
        engle_granger_batch(universe, pairs=[("S0000", "S0000")])
    bad = universe.with_columns(
        pl.when(pl.col("symbol").eq("S0003") & pl.col("date").eq(pl.col("date").max()))
        .then(-1.0)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    with pytest.raises(DataValidationError, match="S0003 has a non-positive price"):
        engle_granger_batch(bad, price_transform="log")


def test_duplicated_rows_are_named() -> None:
    frame = pl.DataFrame(
        {
            "date": [date(2021, 1, 4), date(2021, 1, 5), date(2021, 1, 5)],
            "symbol": ["AAA", "AAA", "AAA"],
            "close": [1.0, 2.0, 3.0],
        }
    )
    with pytest.raises(DataValidationError, match=r"duplicated .* AAA on 2021-01-05"):
        price_panel(frame)
