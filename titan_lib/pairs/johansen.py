"""Johansen cointegration test for baskets of 2 to 12 symbols (statsmodels ``coint_johansen``).

The basket is tested on the dates where every symbol has a price (log prices by default).
The rank is chosen by the sequential procedure: the smallest r whose statistic does not
exceed its critical value at ``level`` (r = number of symbols when every null is rejected),
separately for the trace and the maximum-eigenvalue statistics. The cointegrating vector is
the eigenvector of the largest eigenvalue, scaled so the first symbol's weight is 1: the
stationary combination is ``sum_i vector[i] * price_i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.pairs.panel import PricePanel, PriceTransform, price_panel

MAX_BASKET = 12
"""Johansen critical values exist for at most 12 series."""

_LEVEL_COLUMN = {0.10: 0, 0.05: 1, 0.01: 2}


@dataclass(frozen=True)
class JohansenResult:
    """Johansen test of one basket.

    ``trace_crit`` and ``max_eig_crit`` hold, per null rank r = 0..n-1, the critical values
    at 10 %, 5 % and 1 %.
    """

    symbols: tuple[str, ...]
    trace_stat: tuple[float, ...]
    trace_crit: tuple[tuple[float, float, float], ...]
    max_eig_stat: tuple[float, ...]
    max_eig_crit: tuple[tuple[float, float, float], ...]
    eigenvalues: tuple[float, ...]
    rank_trace: int
    rank_max_eig: int
    vector: tuple[float, ...]
    nobs: int
    det_order: int
    k_ar_diff: int
    level: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _rank(stats: np.ndarray, crit: np.ndarray, column: int) -> int:
    for r in range(stats.shape[0]):
        if not stats[r] > crit[r, column]:
            return r
    return int(stats.shape[0])


def johansen(
    prices: pl.DataFrame | PricePanel,
    symbols: Sequence[str],
    det_order: Literal[-1, 0, 1] = 0,
    k_ar_diff: int = 1,
    level: float = 0.05,
    price_transform: PriceTransform = "log",
) -> JohansenResult:
    """Johansen trace and maximum-eigenvalue tests of a basket.

    Parameters
    ----------
    prices
        Long or wide polars frame, or a :class:`PricePanel` (used as it is transformed).
    symbols
        The basket, 2 to 12 distinct symbols; the vector is normalised on the first.
    det_order
        -1 no deterministic terms, 0 constant, 1 linear trend (statsmodels' convention).
    k_ar_diff
        Lagged differences in the VECM.
    level
        Test level for the rank: 0.10, 0.05 or 0.01.
    price_transform
        ``"log"`` or ``"level"`` (frames only).

    Raises
    ------
    ParameterError
        Basket size outside 2..12, repeated symbols, unsupported det_order/level/k_ar_diff.
    NotFoundError
        A symbol has no prices.
    DataValidationError
        Too few common dates, or a constant series.
    """
    basket = list(symbols)
    if not 2 <= len(basket) <= MAX_BASKET:
        raise ParameterError(
            f"a Johansen basket has 2 to {MAX_BASKET} symbols, got {len(basket)}",
            {"symbols": basket},
        )
    if len(set(basket)) != len(basket):
        raise ParameterError(f"the basket repeats a symbol: {basket}", {"symbols": basket})
    if det_order not in (-1, 0, 1):
        raise ParameterError(f"det_order must be -1, 0 or 1, got {det_order!r}", {})
    if not isinstance(k_ar_diff, int) or k_ar_diff < 0:
        raise ParameterError(f"k_ar_diff must be a non-negative integer, got {k_ar_diff!r}", {})
    column = next((c for lv, c in _LEVEL_COLUMN.items() if abs(lv - level) < 1e-12), None)
    if column is None:
        raise ParameterError(f"level must be 0.10, 0.05 or 0.01, got {level}", {"level": level})

    if isinstance(prices, PricePanel):
        panel = PricePanel(
            dates=prices.dates,
            symbols=tuple(basket),
            values=prices.values[:, [prices.index(s) for s in basket]],
            transform=prices.transform,
        )
    else:
        panel = price_panel(prices, symbols=basket, transform=price_transform)
    values = panel.values[~np.isnan(panel.values).any(axis=1)]
    nobs = int(values.shape[0])
    needed = 10 * (len(basket) + k_ar_diff + 2)
    if nobs < needed:
        raise DataValidationError(
            f"too short: {nobs} dates where all of {', '.join(basket)} have prices, "
            f"need at least {needed}",
            {"nobs": nobs, "needed": needed},
        )
    flat = [s for s, v in zip(basket, values.T, strict=True) if np.ptp(v) == 0.0]
    if flat:
        raise DataValidationError(f"constant series in the basket: {', '.join(flat)}", {})

    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    res = coint_johansen(values, det_order, k_ar_diff)
    vec = res.evec[:, 0] / res.evec[0, 0]
    return JohansenResult(
        symbols=tuple(basket),
        trace_stat=tuple(float(v) for v in res.lr1),
        trace_crit=tuple(tuple(float(c) for c in row) for row in res.cvt),  # type: ignore[misc]
        max_eig_stat=tuple(float(v) for v in res.lr2),
        max_eig_crit=tuple(tuple(float(c) for c in row) for row in res.cvm),  # type: ignore[misc]
        eigenvalues=tuple(float(v) for v in res.eig),
        rank_trace=_rank(res.lr1, res.cvt, column),
        rank_max_eig=_rank(res.lr2, res.cvm, column),
        vector=tuple(float(v) for v in vec),
        nobs=nobs,
        det_order=int(det_order),
        k_ar_diff=int(k_ar_diff),
        level=float(level),
    )
