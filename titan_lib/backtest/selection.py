"""Pair selection inside a training window: the pair engine, run on that window alone.

The default selector is :func:`titan_lib.pairs.scan.rank_pairs` on the training prices (log
prices, every pair, Engle-Granger with statsmodels' lag rules, Benjamini-Hochberg q-values
over every pair tested, AR(1) half-lives of the fitted spreads). Walk-forward then keeps the
candidates that pass its q-value and half-life filters.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

Selector = Callable[[pl.DataFrame], pl.DataFrame]
"""Maps the training prices (long) to candidates with at least ``y``, ``x``,
``hedge_ratio``, ``intercept``, ``qvalue`` and ``half_life``."""

SELECTION_MIN_OBS = 252
"""Common observations a pair needs in a training window (fewer in shorter windows)."""


def engine_selector(train: pl.DataFrame) -> pl.DataFrame:
    """Every tested pair of ``train`` from the pair engine, ranked by q-value.

    ``min_obs`` is :data:`SELECTION_MIN_OBS`, or the window's length when it is shorter (but
    never below the engine's floor :data:`titan_lib.pairs.MIN_OBS`).
    """
    from titan_lib.pairs import MIN_OBS
    from titan_lib.pairs.scan import rank_pairs

    n_dates = train.get_column("date").n_unique()
    min_obs = max(MIN_OBS, min(SELECTION_MIN_OBS, n_dates))
    table = rank_pairs(train, prescreen=None, price_transform="log", min_obs=min_obs)
    return table.filter(pl.col("pvalue").is_not_null())
