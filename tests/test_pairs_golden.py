"""Golden tests: every pair of the 20 bundled stocks against statsmodels ``coint``.

For each setting (full history and the last ten years; trend "c" and "ct"; autolag "aic"
and None with maxlag 1) statsmodels is run once per pair, in two worker processes with one
BLAS thread each. The lag statsmodels chose is read from the very ``adfuller`` call that
``coint`` makes (a recording wrapper around it), so no second lag search is needed.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl
import pytest

from titan_lib.data import sample_prices
from titan_lib.pairs import engle_granger, engle_granger_batch, price_panel
from titan_lib.pairs.panel import PricePanel

pytestmark = pytest.mark.slow

WINDOWS = {"full": None, "10y": 2520}
SETTINGS = [
    ("c", "aic", None),
    ("c", None, 1),
    ("ct", "aic", None),
    ("ct", None, 1),
]


def _reference_worker(job: tuple[Any, ...]) -> list[tuple[float, float, int, float]]:
    """statsmodels on a chunk of pairs: (coint t, coint p, adfuller lag, OLS slope)."""
    import statsmodels.tsa.stattools._stattools as st
    from statsmodels.regression.linear_model import OLS
    from statsmodels.tsa.tsatools import add_trend
    from threadpoolctl import threadpool_limits

    values, pairs, trend, autolag, maxlag = job
    original = st.adfuller
    lags: list[int] = []

    def recording_adfuller(*args: Any, **kwargs: Any) -> Any:
        res = original(*args, store=True, **kwargs)
        lags.append(int(res[-1].usedlag))
        return res

    out = []
    st.adfuller = recording_adfuller
    try:
        with threadpool_limits(1):
            for i, j in pairs:
                y, x = values[:, i], values[:, j]
                lags.clear()
                tstat, pvalue, _ = st.coint(
                    y, x, trend=trend, autolag=autolag, maxlag=maxlag, return_results=False
                )
                slope = OLS(y, add_trend(x[:, None], trend, prepend=False)).fit().params[0]
                out.append((float(tstat), float(pvalue), lags[0], float(slope)))
    finally:
        st.adfuller = original
    return out


@pytest.fixture(scope="module")
def panels() -> dict[str, PricePanel]:
    prices = sample_prices().filter(pl.col("symbol") != "SP500")
    full = price_panel(prices, transform="log")
    assert len(full.symbols) == 20 and not np.isnan(full.values).any()
    n = WINDOWS["10y"]
    assert n is not None
    recent = replace(full, dates=full.dates[-n:], values=np.ascontiguousarray(full.values[-n:]))
    return {"full": full, "10y": recent}


@pytest.fixture(scope="module")
def references(panels: dict[str, PricePanel]) -> dict[tuple[Any, ...], np.ndarray]:
    """statsmodels results per (window, trend, autolag, maxlag): rows in pair order."""
    pairs = list(combinations(range(20), 2))
    chunks = [pairs[k::2] for k in range(2)]
    jobs, keys = [], []
    for window, panel in panels.items():
        for trend, autolag, maxlag in SETTINGS:
            for chunk in chunks:
                jobs.append((panel.values, chunk, trend, autolag, maxlag))
                keys.append((window, trend, autolag, maxlag))
    with ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        results = list(pool.map(_reference_worker, jobs))
    merged: dict[tuple[Any, ...], dict[tuple[int, int], Any]] = {}
    for key, job, rows in zip(keys, jobs, results, strict=True):
        merged.setdefault(key, {}).update(dict(zip(job[1], rows, strict=True)))
    return {key: np.array([rows[p] for p in pairs]) for key, rows in merged.items()}


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize(("trend", "autolag", "maxlag"), SETTINGS)
def test_batch_equals_statsmodels_coint(
    panels: dict[str, PricePanel],
    references: dict[tuple[Any, ...], np.ndarray],
    window: str,
    trend: str,
    autolag: str | None,
    maxlag: int | None,
) -> None:
    panel = panels[window]
    ref = references[(window, trend, autolag, maxlag)]
    table = engle_granger_batch(panel, trend=trend, autolag=autolag, maxlag=maxlag)  # type: ignore[arg-type]
    assert table.height == 190
    expected_pairs = [(panel.symbols[i], panel.symbols[j]) for i, j in combinations(range(20), 2)]
    assert list(zip(table["y"], table["x"], strict=True)) == expected_pairs
    assert table["reason"].null_count() == 190
    assert np.abs(table["tstat"].to_numpy() - ref[:, 0]).max() <= 1e-8
    assert np.abs(table["pvalue"].to_numpy() - ref[:, 1]).max() <= 1e-8
    assert table["lag"].to_list() == ref[:, 2].astype(int).tolist()
    assert np.abs(table["hedge_ratio"].to_numpy() - ref[:, 3]).max() <= 1e-10
    assert (table["nobs"] == panel.values.shape[0]).all()
    if autolag is not None:  # the search is not trivial: several different lags are chosen
        assert len(set(ref[:, 2].astype(int).tolist())) >= 3


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize(("trend", "autolag", "maxlag"), SETTINGS)
def test_single_pair_function_equals_statsmodels_coint(
    panels: dict[str, PricePanel],
    references: dict[tuple[Any, ...], np.ndarray],
    window: str,
    trend: str,
    autolag: str | None,
    maxlag: int | None,
) -> None:
    panel = panels[window]
    ref = references[(window, trend, autolag, maxlag)]
    for row, (i, j) in enumerate(combinations(range(20), 2)):
        res = engle_granger(
            panel.values[:, i],
            panel.values[:, j],
            trend=trend,
            autolag=autolag,
            maxlag=maxlag,  # type: ignore[arg-type]
        )
        assert abs(res.tstat - ref[row, 0]) <= 1e-8
        assert abs(res.pvalue - ref[row, 1]) <= 1e-8
        assert res.lag == int(ref[row, 2])
        assert abs(res.hedge_ratio - ref[row, 3]) <= 1e-10
