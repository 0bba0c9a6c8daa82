"""Pair selection inside a training window: the pair engine plus q-value and half-life filters.

Until :func:`titan_lib.pairs.scan` is the single entry point, candidates come from
:func:`titan_lib.pairs.engle_granger.engle_granger_batch` on log prices; q-values are
Benjamini-Hochberg over every pair tested, and the half-life is ``-ln 2 / ln phi`` of the
AR(1) fit ``s_t = c + phi s_{t-1}`` of the fitted spread.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl

Selector = Callable[[pl.DataFrame], pl.DataFrame]
"""Maps the training prices (long) to candidates with at least ``y``, ``x``,
``hedge_ratio``, ``intercept``, ``qvalue`` and ``half_life``."""


def bh_qvalues(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (NaN p-values stay NaN and do not count as tests)."""
    q = np.full(pvalues.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(pvalues))
    m = ok.size
    if m == 0:
        return q
    order = ok[np.argsort(pvalues[ok], kind="stable")]
    ranked = pvalues[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q


def spread_half_life(spread: np.ndarray) -> float:
    """``-ln 2 / ln phi`` of the OLS AR(1) fit of a spread (inf when ``phi`` is not in (0, 1))."""
    prev, now = spread[:-1], spread[1:]
    prev_c = prev - prev.mean()
    phi = float(np.dot(prev_c, now - now.mean()) / np.dot(prev_c, prev_c))
    if not 0.0 < phi < 1.0:
        return math.inf
    return -math.log(2.0) / math.log(phi)


def engine_selector(train: pl.DataFrame) -> pl.DataFrame:
    """Engle-Granger over every pair of ``train`` (log prices), with q-values and half-lives."""
    from titan_lib.pairs.engle_granger import engle_granger_batch

    tests = engle_granger_batch(train, price_transform="log").filter(pl.col("reason").is_null())
    qvalues = bh_qvalues(tests.get_column("pvalue").to_numpy().astype(np.float64))
    wide = train.pivot(on="symbol", index="date", values="close").sort("date")
    half_lives = []
    for y, x, beta, alpha in tests.select("y", "x", "hedge_ratio", "intercept").iter_rows():
        both = wide.select(y, x).drop_nulls()
        spread = np.log(both[y].to_numpy()) - beta * np.log(both[x].to_numpy()) - alpha
        half_lives.append(spread_half_life(spread))
    return tests.with_columns(
        qvalue=pl.Series(qvalues), half_life=pl.Series(half_lives, dtype=pl.Float64)
    )
