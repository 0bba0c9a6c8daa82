"""Static and rolling hedge ratios of a pair ``y ~ intercept + hedge_ratio * x``.

Every function returns the ratio in the same convention: units of ``y`` per unit of ``x``
(for log prices: the elasticity; the spread is ``y - intercept - hedge_ratio * x``). Inputs
are aligned one-dimensional series (numpy arrays, lists or polars Series).

- :func:`ols_hedge_ratio`: least squares of y on x, or of x on y re-expressed as y on x;
- :func:`tls_hedge_ratio`: total least squares (orthogonal regression), symmetric in y and x;
- :func:`rolling_ols_hedge_ratio`: OLS over a trailing window, causal.

The static methods a backtest can estimate its hedge with are :data:`HEDGE_METHODS`, named
by :data:`HedgeMethod`; :func:`fit_hedge_ratio` dispatches on the name. A new static method
is a function here, its name in both, and a test.

The Kalman-filter ratio is in :mod:`titan_lib.pairs.kalman`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numba as nb
import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from titan_lib.exceptions import DataValidationError, ParameterError

Direction = Literal["y_on_x", "x_on_y"]


@dataclass(frozen=True)
class HedgeRatio:
    """A static hedge: ``spread = y - intercept - hedge_ratio * x``."""

    hedge_ratio: float
    intercept: float


def aligned_legs(y: ArrayLike, x: ArrayLike, min_obs: int = 3) -> tuple[NDArray[np.float64], ...]:
    """Validate two legs as finite float arrays of equal length (at least ``min_obs``)."""
    legs = []
    for name, leg in (("y", y), ("x", x)):
        if isinstance(leg, pl.Series):
            leg = leg.cast(pl.Float64).to_numpy()
        arr = np.ascontiguousarray(np.asarray(leg, dtype=np.float64))
        if arr.ndim != 1:
            raise DataValidationError(f"{name} must be one-dimensional, got {arr.shape}", {})
        if not np.isfinite(arr).all():
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise DataValidationError(
                f"{name} has a missing or infinite value at position {bad}", {"series": name}
            )
        legs.append(arr)
    if legs[0].shape != legs[1].shape:
        raise DataValidationError(
            f"y and x must have the same length, got {legs[0].shape[0]} and {legs[1].shape[0]}",
            {},
        )
    if legs[0].shape[0] < min_obs:
        raise DataValidationError(
            f"too short: {legs[0].shape[0]} observations, need at least {min_obs}", {}
        )
    for name, arr in (("y", legs[0]), ("x", legs[1])):
        if np.ptp(arr) == 0.0:
            raise DataValidationError(f"{name} is constant: no hedge ratio", {"series": name})
    return legs[0], legs[1]


def _centred_moments(y: NDArray[np.float64], x: NDArray[np.float64]) -> tuple[float, ...]:
    my, mx = float(y.mean()), float(x.mean())
    yc, xc = y - my, x - mx
    return my, mx, float(yc @ yc), float(xc @ xc), float(xc @ yc)


def ols_hedge_ratio(y: ArrayLike, x: ArrayLike, direction: Direction = "y_on_x") -> HedgeRatio:
    """OLS hedge ratio with intercept.

    ``direction="y_on_x"`` regresses y on x. ``"x_on_y"`` regresses x on y
    (``x = c + d y``) and returns it as ``y = -c/d + (1/d) x``, the other leg's view of the
    same pair.
    """
    if direction not in ("y_on_x", "x_on_y"):
        raise ParameterError(f"direction must be 'y_on_x' or 'x_on_y', got {direction!r}", {})
    ya, xa = aligned_legs(y, x)
    my, mx, syy, sxx, sxy = _centred_moments(ya, xa)
    if direction == "y_on_x":
        beta = sxy / sxx
        return HedgeRatio(hedge_ratio=beta, intercept=my - beta * mx)
    if sxy == 0.0:
        raise DataValidationError("x does not depend on y (zero covariance): no x-on-y ratio", {})
    d = sxy / syy
    c = mx - d * my
    return HedgeRatio(hedge_ratio=1.0 / d, intercept=-c / d)


def tls_hedge_ratio(y: ArrayLike, x: ArrayLike) -> HedgeRatio:
    """Total least squares hedge ratio: the line minimising squared orthogonal distances.

    Closed form on centred data: ``beta = (syy - sxx + sqrt((syy - sxx)^2 + 4 sxy^2)) /
    (2 sxy)``, the direction of the largest principal axis of ``(x, y)``.
    """
    ya, xa = aligned_legs(y, x)
    my, mx, syy, sxx, sxy = _centred_moments(ya, xa)
    if sxy == 0.0:
        raise DataValidationError("y and x are uncorrelated: the TLS line is undefined", {})
    diff = syy - sxx
    beta = (diff + math.hypot(diff, 2.0 * sxy)) / (2.0 * sxy)
    return HedgeRatio(hedge_ratio=beta, intercept=my - beta * mx)


HedgeMethod = Literal["ols", "tls"]
"""Static hedge estimators a backtest can use: least squares of y on x, or total least
squares."""

HEDGE_METHODS: dict[str, Callable[[ArrayLike, ArrayLike], HedgeRatio]] = {
    "ols": ols_hedge_ratio,
    "tls": tls_hedge_ratio,
}


def fit_hedge_ratio(y: ArrayLike, x: ArrayLike, method: HedgeMethod = "ols") -> HedgeRatio:
    """The static hedge of ``y`` on ``x`` estimated by ``method`` (see :data:`HEDGE_METHODS`).

    Raises
    ------
    ParameterError
        An unknown ``method``, naming the known ones.
    """
    check_hedge_method(method)
    return HEDGE_METHODS[method](y, x)


def check_hedge_method(method: object) -> None:
    """Raise :class:`ParameterError` unless ``method`` names one of :data:`HEDGE_METHODS`."""
    if method not in HEDGE_METHODS:
        raise ParameterError(
            f"hedge_method must be one of {', '.join(HEDGE_METHODS)}, got {method!r}",
            {"parameter": "hedge_method"},
        )


@nb.njit(cache=True, nogil=True)
def _rolling_ols(
    y: np.ndarray, x: np.ndarray, window: int, beta: np.ndarray, alpha: np.ndarray
) -> None:  # pragma: no cover - compiled
    n = y.shape[0]
    for t in range(n):
        if t + 1 < window:
            beta[t] = math.nan
            alpha[t] = math.nan
            continue
        lo = t + 1 - window
        my = 0.0
        mx = 0.0
        for k in range(lo, t + 1):
            my += y[k]
            mx += x[k]
        my /= window
        mx /= window
        sxx = 0.0
        sxy = 0.0
        for k in range(lo, t + 1):
            dx = x[k] - mx
            sxx += dx * dx
            sxy += dx * (y[k] - my)
        if sxx == 0.0:
            beta[t] = math.nan
            alpha[t] = math.nan
        else:
            beta[t] = sxy / sxx
            alpha[t] = my - beta[t] * mx


def rolling_ols_hedge_ratio(y: ArrayLike, x: ArrayLike, window: int) -> pl.DataFrame:
    """OLS hedge ratio over the trailing ``window`` bars, causal.

    Row t uses bars ``t - window + 1 .. t`` only; the first ``window - 1`` rows are null, as
    are windows where x is constant.

    Returns
    -------
    polars.DataFrame
        Columns ``hedge_ratio`` and ``intercept``, one row per input bar.
    """
    if not isinstance(window, int) or window < 3:
        raise ParameterError(f"window must be an integer >= 3, got {window!r}", {})
    ya, xa = aligned_legs(y, x, min_obs=window)
    beta = np.empty(ya.shape[0])
    alpha = np.empty(ya.shape[0])
    _rolling_ols(ya, xa, window, beta, alpha)
    return pl.DataFrame({"hedge_ratio": beta, "intercept": alpha}).fill_nan(None)
