"""MacKinnon p-values and critical values of the Engle-Granger test, vectorised.

The response surfaces are statsmodels' own tables (``statsmodels.tsa.adfvalues``), read at
run time, so a p-value here is the one :func:`statsmodels.tsa.stattools.coint` reports:

- p-value: MacKinnon (1994) surface with the 2010 tables, ``Phi(poly(tau))``, where the
  polynomial is the "small p" one for ``tau <= tau_star`` and the "large p" one above; 0 below
  ``tau_min`` and 1 above ``tau_max``.
- critical values (1 %, 5 %, 10 %): MacKinnon (2010), ``b0 + b1/T + b2/T^2 + b3/T^3`` with
  ``T = nobs - 1`` as statsmodels' ``coint`` uses.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from titan_lib.exceptions import ParameterError

Trend = Literal["c", "ct"]
MAX_SERIES_PVALUE = 6
"""The p-value surfaces (1994) cover systems of at most 6 I(1) series."""
MAX_SERIES_CRITICAL = 12
"""The critical-value surfaces (2010) cover systems of at most 12 I(1) series."""


@cache
def _pvalue_surface(trend: str, n_series: int) -> tuple[float, float, float, Any, Any]:
    from statsmodels.tsa import adfvalues as tables

    k = n_series - 1
    return (
        float(tables._tau_mins[trend][k]),
        float(tables._tau_maxs[trend][k]),
        float(tables._tau_stars[trend][k]),
        np.asarray(tables._tau_smallps[trend][k], dtype=np.float64),
        np.asarray(tables._tau_largeps[trend][k], dtype=np.float64),
    )


@cache
def _critical_surface(trend: str, n_series: int) -> Any:
    from statsmodels.tsa import adfvalues as tables

    return np.asarray(tables.tau_2010s[trend][n_series - 1], dtype=np.float64)


def _check(trend: str, n_series: int, most: int) -> None:
    if trend not in ("c", "ct"):
        raise ParameterError(f"trend must be 'c' or 'ct', got {trend!r}", {"trend": trend})
    if not 1 <= n_series <= most:
        raise ParameterError(
            f"this MacKinnon surface covers 1..{most} series, got {n_series}",
            {"n_series": n_series},
        )


def _horner(coef_ascending: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    # Same evaluation order as numpy.polyval on the reversed coefficients.
    y = np.zeros_like(x)
    for c in coef_ascending[::-1]:
        y = y * x + c
    return y


def mackinnon_pvalue(
    tstat: ArrayLike, trend: Trend = "c", n_series: int = 2
) -> NDArray[np.float64]:
    """Asymptotic p-values of Engle-Granger (or ADF, ``n_series=1``) t-statistics.

    Parameters
    ----------
    tstat
        Test statistics (any shape); NaN stays NaN, ``-inf`` gives 0.
    trend
        Deterministic terms of the cointegrating regression: ``"c"`` constant, ``"ct"``
        constant and linear trend.
    n_series
        Number of I(1) series in the system (2 for a pair), at most 6.

    Returns
    -------
    numpy.ndarray
        p-values in [0, 1], same shape as ``tstat``.
    """
    from scipy.special import ndtr

    _check(trend, n_series, MAX_SERIES_PVALUE)
    lo, hi, star, small, large = _pvalue_surface(trend, n_series)
    t = np.asarray(tstat, dtype=np.float64)
    finite_t = np.where(np.isfinite(t), t, 0.0)
    poly = np.where(finite_t <= star, _horner(small, finite_t), _horner(large, finite_t))
    p = ndtr(poly)
    p = np.where(t > hi, 1.0, p)
    p = np.where(t < lo, 0.0, p)
    return np.asarray(np.where(np.isnan(t), np.nan, p), dtype=np.float64)


def mackinnon_critical_values(
    nobs: int, trend: Trend = "c", n_series: int = 2
) -> tuple[float, float, float]:
    """Critical values at 1 %, 5 % and 10 % for a sample of ``nobs`` observations.

    ``nobs`` is the length of the series; the surface is evaluated at ``T = nobs - 1``, the
    convention of statsmodels' ``coint`` (and Stata's ``egranger``).
    """
    _check(trend, n_series, MAX_SERIES_CRITICAL)
    tau = _critical_surface(trend, n_series)
    inv = 1.0 / (nobs - 1)
    values = [float(_horner(row, np.asarray(inv))) for row in tau]
    return values[0], values[1], values[2]
