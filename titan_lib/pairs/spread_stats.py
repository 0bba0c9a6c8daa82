"""Mean-reversion statistics of a spread: half-life, Hurst exponent, mean crossings.

Definitions (``s_0..s_{n-1}`` the spread, in the units it is given in, one step per bar):

half-life
    ``-ln 2 / ln(phi)`` bars, with ``phi`` the slope of the exact AR(1) least-squares fit
    ``s_t = c + phi s_{t-1} + e_t`` (t = 1..n-1). ``inf`` when ``phi >= 1`` (no mean
    reversion); NaN when ``phi <= 0`` (the AR(1) half-life is undefined).
Hurst exponent
    Variance-of-increments method: for lags tau in ``HURST_LAGS`` (those below n/2),
    ``V(tau)`` is the variance (ddof 0) of ``s_{t+tau} - s_t``; H is half the OLS slope of
    ``ln V(tau)`` on ``ln tau``. A random walk has H = 0.5, a mean-reverting series H < 0.5,
    a trending one H > 0.5. NaN with fewer than three usable lags.
mean crossings
    The number of t in 1..n-1 where the spread changes side of its sample mean
    (a value equal to the mean counts as above it).

The compiled kernels are shared by the one-series functions here and by the batch used in
:func:`titan_lib.pairs.scan.scan`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numba import prange
from numpy.typing import ArrayLike, NDArray

from titan_lib.exceptions import DataValidationError

HURST_LAGS = (2, 4, 8, 16, 32, 64)
"""Lags (bars) of the variance-of-increments Hurst estimate."""

_HURST_LAGS = np.array(HURST_LAGS, dtype=np.int64)
_FAST = {"reassoc", "contract"}
"""Let LLVM reorder sums (vectorised reductions); NaN and inf semantics stay intact."""


@nb.njit(cache=True, nogil=True)
def half_life_from_phi(phi: float) -> float:  # pragma: no cover - compiled
    """``-ln 2 / ln phi``; inf for phi >= 1, NaN for phi <= 0 or NaN."""
    if not phi > 0.0:
        return math.nan
    if phi >= 1.0:
        return math.inf
    return -math.log(2.0) / math.log(phi)


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def hurst_variance(s: np.ndarray, lags: np.ndarray) -> float:  # pragma: no cover
    """Variance-of-increments Hurst exponent over the lags below ``len(s) / 2``."""
    n = s.shape[0]
    k = 0
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    for i in range(lags.shape[0]):
        tau = lags[i]
        if 2 * tau >= n:
            continue
        m = n - tau
        # increments sum to a telescoping difference: their mean is exact in O(tau), and
        # it is small next to their spread, so E[d^2] - mean^2 loses nothing
        head = 0.0
        tail = 0.0
        for t in range(tau):
            head += s[t]
            tail += s[n - tau + t]
        mean = (tail - head) / m
        later = s[tau:]
        sq = 0.0
        for t in range(m):
            d = later[t] - s[t]
            sq += d * d
        var = sq / m - mean * mean
        if not var > 0.0:
            return math.nan
        lx = math.log(tau)
        ly = math.log(var)
        k += 1
        sx += lx
        sy += ly
        sxx += lx * lx
        sxy += lx * ly
    if k < 3:
        return math.nan
    slope = (sxy - sx * sy / k) / (sxx - sx * sx / k)
    return 0.5 * slope


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def _all_stats(s: np.ndarray, lags: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``[mean, std, phi, half_life, hurst, crossings]`` of ``s`` in two passes plus Hurst.

    The AR(1) sums over t = 1..n-1 follow from the sums around the full-sample mean (a
    shift of origin), so one centred pass gives the moments, phi and the crossings.
    """
    n = s.shape[0]
    total = 0.0
    for t in range(n):
        total += s[t]
    mean = total / n
    first = s[0] - mean
    ss = first * first
    sp = 0.0
    count = 0
    earlier = s[:-1]
    later = s[1:]
    for t in range(n - 1):
        a = earlier[t] - mean
        b = later[t] - mean
        ss += b * b
        sp += a * b
        count += (b < 0.0) != (a < 0.0)
    m = n - 1
    last = s[n - 1] - mean
    cx = (total - s[n - 1]) / m - mean  # mean of s_{t-1}, t = 1..n-1, less the mean
    cy = (total - s[0]) / m - mean  # mean of s_t, t = 1..n-1, less the mean
    sxx = (ss - last * last) - m * cx * cx
    sxy = sp - m * cx * cy
    phi = sxy / sxx if sxx > 0.0 else math.nan
    out[0] = mean
    out[1] = math.sqrt(ss / m)
    out[2] = phi
    out[3] = half_life_from_phi(phi)
    out[4] = hurst_variance(s, lags)
    out[5] = count


@nb.njit(cache=True, nogil=True, parallel=True)
def pair_spread_statistics(
    series: np.ndarray,
    complete: np.ndarray,
    ii: np.ndarray,
    jj: np.ndarray,
    coef: np.ndarray,
    lags: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Statistics of the spreads ``y - a - b x - c t`` of many pairs of a NaN panel.

    ``series`` is the panel transposed (one row per symbol, contiguous in time);
    ``complete[i]`` says row i has no NaN. Pair q uses
    rows ``ii[q]`` (y) and ``jj[q]`` (x) on the dates where both are present,
    t = 1..n counting those rows; ``coef[q] = (b, a, c)``. ``out[q]`` receives
    ``[mean, std, phi, half_life, hurst, crossings]`` (NaN when b is NaN).
    """
    T = series.shape[1]
    for q in prange(ii.shape[0]):
        b = coef[q, 0]
        if b != b:
            out[q, :] = math.nan
            continue
        a = coef[q, 1]
        c = coef[q, 2]
        s = np.empty(T)
        ys = series[ii[q]]
        xs = series[jj[q]]
        if complete[ii[q]] and complete[jj[q]]:
            n = T
            for t in range(T):
                s[t] = ys[t] - a - b * xs[t] - c * (t + 1)
        else:
            n = 0
            for t in range(T):
                yv = ys[t]
                xv = xs[t]
                if yv == yv and xv == xv:
                    n += 1
                    s[n - 1] = yv - a - b * xv - c * n
        if n < 3:
            out[q, :] = math.nan
            continue
        _all_stats(s[:n], lags, out[q])


@dataclass(frozen=True)
class SpreadStats:
    """Summary of one spread (see the module docstring for the definitions)."""

    mean: float
    std: float
    phi: float
    half_life: float
    hurst: float
    crossings: int
    nobs: int


def _spread(spread: ArrayLike) -> NDArray[np.float64]:
    import polars as pl

    if isinstance(spread, pl.Series):
        spread = spread.cast(pl.Float64).to_numpy()
    s = np.ascontiguousarray(np.asarray(spread, dtype=np.float64))
    if s.ndim != 1:
        raise DataValidationError(f"a spread must be one-dimensional, got shape {s.shape}", {})
    if not np.isfinite(s).all():
        bad = int(np.flatnonzero(~np.isfinite(s))[0])
        raise DataValidationError(f"the spread has a missing or infinite value at {bad}", {})
    if s.shape[0] < 3:
        raise DataValidationError(f"a spread needs at least 3 values, got {s.shape[0]}", {})
    return s


def half_life(spread: ArrayLike) -> float:
    """Half-life of mean reversion in bars, ``-ln 2 / ln phi`` of the AR(1) fit."""
    return spread_stats(spread).half_life


def hurst_exponent(spread: ArrayLike, lags: tuple[int, ...] = HURST_LAGS) -> float:
    """Hurst exponent by the variance-of-increments method over ``lags`` (bars)."""
    return float(hurst_variance(_spread(spread), np.asarray(lags, dtype=np.int64)))


def mean_crossings(spread: ArrayLike) -> int:
    """How many times the spread crosses its sample mean."""
    return spread_stats(spread).crossings


def spread_stats(spread: ArrayLike) -> SpreadStats:
    """Mean, standard deviation (ddof 1), AR(1) phi, half-life, Hurst and crossings."""
    s = _spread(spread)
    out = np.empty(6)
    _all_stats(s, _HURST_LAGS, out)
    return SpreadStats(
        mean=float(out[0]),
        std=float(out[1]),
        phi=float(out[2]),
        half_life=float(out[3]),
        hurst=float(out[4]),
        crossings=int(out[5]),
        nobs=int(s.shape[0]),
    )


def batch_spread_statistics(
    values: NDArray[np.float64],
    ii: NDArray[np.int64],
    jj: NDArray[np.int64],
    coef: NDArray[np.float64],
) -> NDArray[np.float64]:
    """:func:`spread_stats` of many pairs' cointegration residuals at once.

    Returns an ``(m, 6)`` array: mean, std, phi, half_life, hurst, crossings.
    """
    out = np.empty((ii.shape[0], 6))
    series = np.ascontiguousarray(values.T)
    complete = np.asarray(~np.isnan(series).any(axis=1))
    pair_spread_statistics(series, complete, ii, jj, np.ascontiguousarray(coef), _HURST_LAGS, out)
    return out
