"""Universe pre-screens, computed for all pairs at once in matrix form.

correlation
    Pearson correlation of daily log returns ``ln p_t - ln p_{t-1}`` (consecutive rows of
    the price panel), over the dates where both symbols have a return (pairwise complete).
distance (Gatev, Goetzmann and Rouwenhorst, 2006)
    Sum of squared differences of normalised prices ``p_t / p_first`` (each symbol divided
    by its first price in the window), over the dates where both have prices.

Missing data are handled with masked matrix products, so every pair uses exactly its own
common dates. Both screens return one row per unordered pair (``y`` the earlier symbol of
the universe), best first, optionally only each symbol's ``top_k`` best partners.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from numpy.typing import NDArray

from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.pairs.panel import PricePanel, price_panel


def _level_panel(prices: pl.DataFrame | PricePanel, symbols: Sequence[str] | None) -> PricePanel:
    if isinstance(prices, PricePanel):
        if prices.transform == "log":
            return PricePanel(prices.dates, prices.symbols, np.exp(prices.values), "level")
        return prices
    return price_panel(prices, symbols=symbols, transform="level")


def _pair_table(
    panel: PricePanel,
    score: NDArray[np.float64],
    counts: NDArray[np.float64],
    name: str,
    descending: bool,
    top_k: int | None,
    min_obs: int,
) -> pl.DataFrame:
    n = len(panel.symbols)
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ParameterError(f"top_k must be a positive integer, got {top_k!r}", {})
    usable = (counts >= min_obs) & np.isfinite(score)
    np.fill_diagonal(usable, False)
    keep = np.triu(usable, 1)
    if top_k is not None and n > 1:
        ranked = np.where(usable, -score if descending else score, np.inf)
        k = min(top_k, n - 1)
        best = np.argpartition(ranked, k - 1, axis=1)[:, :k]
        chosen = np.zeros_like(usable)
        np.put_along_axis(chosen, best, True, axis=1)
        chosen &= usable
        keep = np.triu(chosen | chosen.T, 1)
    yi, xi = np.nonzero(keep)
    names = np.array(panel.symbols, dtype=object)
    frame = pl.DataFrame(
        {
            "y": names[yi].tolist(),
            "x": names[xi].tolist(),
            name: score[yi, xi],
            "nobs": counts[yi, xi].astype(np.int64),
        },
        schema={"y": pl.String, "x": pl.String, name: pl.Float64, "nobs": pl.Int64},
    )
    return frame.sort(name, descending=descending, maintain_order=True)


def correlation_screen(
    prices: pl.DataFrame | PricePanel,
    symbols: Sequence[str] | None = None,
    top_k: int | None = None,
    min_obs: int = 30,
) -> pl.DataFrame:
    """Correlation of log returns for every pair of the universe.

    Parameters
    ----------
    prices
        Long or wide polars frame of prices (> 0), or a :class:`PricePanel`.
    symbols
        Restrict the universe (frames only).
    top_k
        Keep, for each symbol, only its ``top_k`` most correlated partners (a pair stays if
        either leg keeps it).
    min_obs
        Pairs with fewer common returns are dropped.

    Returns
    -------
    polars.DataFrame
        ``y, x, correlation, nobs``, highest correlation first.
    """
    panel = _level_panel(prices, symbols)
    if (panel.values <= 0).any():
        raise DataValidationError("log returns need positive prices", {})
    logp = np.log(panel.values)
    ret = logp[1:] - logp[:-1]
    mask = (~np.isnan(ret)).astype(np.float64)
    r0 = np.where(mask > 0, ret, 0.0)
    counts = mask.T @ mask
    # centre each column on its own mean first: smaller numbers, less cancellation
    col_n = mask.sum(axis=0)
    col_mean = np.divide(r0.sum(axis=0), col_n, out=np.zeros_like(col_n), where=col_n > 0)
    r0 = (r0 - col_mean) * mask
    s1 = r0.T @ mask  # s1[i, j] = sum of r_i over dates where j is present too
    s2 = (r0 * r0).T @ mask
    sxy = r0.T @ r0
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = sxy - s1 * s1.T / counts
        var_i = s2 - s1 * s1 / counts
        corr = cov / np.sqrt(var_i * var_i.T)
    return _pair_table(panel, corr, counts, "correlation", True, top_k, min_obs)


def distance_screen(
    prices: pl.DataFrame | PricePanel,
    symbols: Sequence[str] | None = None,
    top_k: int | None = None,
    min_obs: int = 30,
) -> pl.DataFrame:
    """Gatev distance (sum of squared normalised-price differences) for every pair.

    Parameters are as :func:`correlation_screen`; ``top_k`` keeps each symbol's nearest
    partners. Returns ``y, x, distance, nobs``, smallest distance first.
    """
    panel = _level_panel(prices, symbols)
    values = panel.values
    present = ~np.isnan(values)
    first_row = np.argmax(present, axis=0)
    first = values[first_row, np.arange(values.shape[1])]
    if (first <= 0).any() | (~present.any(axis=0)).any():
        raise DataValidationError("the distance screen needs a positive first price", {})
    mask = present.astype(np.float64)
    norm = np.where(present, values / first, 0.0)
    counts = mask.T @ mask
    sq = (norm * norm).T @ mask  # sq[i, j] = sum of norm_i^2 where j is present too
    distance = sq + sq.T - 2.0 * (norm.T @ norm)
    return _pair_table(panel, np.maximum(distance, 0.0), counts, "distance", False, top_k, min_obs)
