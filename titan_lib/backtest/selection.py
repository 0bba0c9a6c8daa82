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
    """Every tradable pair of ``train`` from the pair engine (tested, hedge ratio > 0),
    ranked by q-value.

    ``min_obs`` is :data:`SELECTION_MIN_OBS`, or the window's length when it is shorter (but
    never below the engine's floor :data:`titan_lib.pairs.MIN_OBS`).
    """
    from titan_lib.pairs import MIN_OBS
    from titan_lib.pairs.scan import rank_pairs

    n_dates = train.get_column("date").n_unique()
    min_obs = max(MIN_OBS, min(SELECTION_MIN_OBS, n_dates))
    table = rank_pairs(train, prescreen=None, price_transform="log", min_obs=min_obs)
    return table.filter(pl.col("tradable"))


def fixed_pair_selector(y: str, x: str) -> Selector:
    """A selector that always proposes the one pair ``y``/``x``, fitted on the training
    window alone.

    Its row: the OLS hedge of ``ln y`` on ``ln x`` with an intercept, the Engle-Granger
    p-value of that single test as ``qvalue`` (a family of one), and the AR(1) half-life of
    the training spread (null when it does not mean-revert, so the window is not traded).
    """

    def select(train: pl.DataFrame) -> pl.DataFrame:
        import math

        import numpy as np

        from titan_lib.pairs import engle_granger, half_life
        from titan_lib.signals.frame import pair_prices

        legs = pair_prices(train, [y, x])
        ly = np.log(legs.get_column(y).to_numpy())
        lx = np.log(legs.get_column(x).to_numpy())
        test = engle_granger(ly, lx)
        hl = half_life(ly - test.hedge_ratio * lx - test.intercept)
        return pl.DataFrame(
            {
                "y": [y],
                "x": [x],
                "hedge_ratio": [float(test.hedge_ratio)],
                "intercept": [float(test.intercept)],
                "qvalue": [float(test.pvalue)],
                "half_life": [hl if math.isfinite(hl) and hl > 0 else None],
            },
            schema_overrides={"half_life": pl.Float64},
        )

    return select
