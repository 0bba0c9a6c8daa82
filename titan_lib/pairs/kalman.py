"""Dynamic hedge ratio from a Kalman filter (filtered, hence causal).

State-space model, one step per bar t = 1..n::

    state        theta_t = (beta_t, alpha_t)' = theta_{t-1} + w_t,   w_t ~ N(0, q I_2)
    observation  y_t = beta_t x_t + alpha_t + v_t,                   v_t ~ N(0, r)
    prior        theta_0 ~ N(0, p0 I_2)

with ``q = delta / (1 - delta)`` (the random-walk drift of the hedge ratio and intercept,
``delta`` in [0, 1)), ``r = obs_var`` and ``p0 = initial_var``. The output at bar t is the
filtered mean ``E[theta_t | y_1..y_t]``, so it uses no later data. The forecast error
``y_t - (beta_{t|t-1} x_t + alpha_{t|t-1})`` and its variance are the inputs of a causal
z-score. With ``delta = 0`` the filter is Bayesian least squares with a ridge prior:
``theta_t = (X'X / r + I / p0)^-1 X'y / r`` over bars 1..t.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from titan_lib.exceptions import ParameterError
from titan_lib.pairs.hedge_ratios import aligned_legs


@nb.njit(cache=True, nogil=True)
def _filter(
    y: np.ndarray, x: np.ndarray, q: float, r: float, p0: float, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    m0 = 0.0  # beta
    m1 = 0.0  # alpha
    p00 = p0
    p01 = 0.0
    p11 = p0
    for t in range(y.shape[0]):
        # predict
        p00 += q
        p11 += q
        h0 = x[t]
        forecast = h0 * m0 + m1
        ph0 = p00 * h0 + p01  # P h'
        ph1 = p01 * h0 + p11
        s = h0 * ph0 + ph1 + r
        err = y[t] - forecast
        k0 = ph0 / s
        k1 = ph1 / s
        # update (P - K S K', symmetric)
        m0 += k0 * err
        m1 += k1 * err
        p00 -= k0 * k0 * s
        p01 -= k0 * k1 * s
        p11 -= k1 * k1 * s
        out[t, 0] = m0
        out[t, 1] = m1
        out[t, 2] = err
        out[t, 3] = s
        out[t, 4] = p00


def kalman_hedge_ratio(
    y: ArrayLike,
    x: ArrayLike,
    delta: float = 1e-4,
    obs_var: float = 1e-3,
    initial_var: float = 1.0,
) -> pl.DataFrame:
    """Filtered Kalman hedge ratio and intercept of ``y`` on ``x``.

    Parameters
    ----------
    y, x
        Aligned legs (log prices by convention; any units work).
    delta
        State drift: ``q = delta / (1 - delta)`` is the per-bar variance of the random-walk
        steps of hedge ratio and intercept. 0 gives a static (recursive least squares) fit.
    obs_var
        ``r``, the observation noise variance, in squared units of ``y``.
    initial_var
        ``p0``, the prior variance of hedge ratio and intercept (prior mean 0).

    Returns
    -------
    polars.DataFrame
        Per bar: ``hedge_ratio`` and ``intercept`` (filtered means), ``forecast_error``
        (``y_t`` minus its one-step forecast), ``forecast_var`` (its variance) and
        ``hedge_ratio_var`` (filtered variance of the hedge ratio).
    """
    if not 0.0 <= delta < 1.0:
        raise ParameterError(f"delta must be in [0, 1), got {delta}", {"delta": delta})
    if not obs_var > 0.0:
        raise ParameterError(f"obs_var must be > 0, got {obs_var}", {"obs_var": obs_var})
    if not initial_var > 0.0:
        raise ParameterError(f"initial_var must be > 0, got {initial_var}", {})
    ya, xa = aligned_legs(y, x, min_obs=2)
    out = np.empty((ya.shape[0], 5))
    _filter(ya, xa, delta / (1.0 - delta), obs_var, initial_var, out)
    return pl.DataFrame(
        {
            "hedge_ratio": out[:, 0],
            "intercept": out[:, 1],
            "forecast_error": out[:, 2],
            "forecast_var": out[:, 3],
            "hedge_ratio_var": out[:, 4],
        }
    )
