"""Compiled loops of the regime models: the Hamilton filter and past-only quantiles.

The filter compiles the one pure step of :func:`titan_lib.core.regime_gate.hamilton_step`.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from titan_lib.core.regime_gate import hamilton_step

_hamilton_step: Any = numba.njit(cache=True)(hamilton_step)  # takes numpy rows


@numba.njit(cache=True)
def hamilton_filter(
    values: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    transition: np.ndarray,
    initial: np.ndarray,
) -> np.ndarray:
    """Filtered regime probabilities ``P(s_t = j | values up to t)``, shape ``(T, k)``.

    Gaussian regimes with ``means``/``variances``; ``transition[i, j] = P(s_t = j |
    s_{t-1} = i)``; ``initial`` is the prior of the first value. Each row is one
    :func:`titan_lib.core.regime_gate.hamilton_step`, compiled (the function the served
    models run in pure Python).
    """
    n = values.shape[0]
    out = np.empty((n, means.shape[0]))
    for t in range(n):
        if t == 0:
            _hamilton_step(initial, False, values[t], means, variances, transition, out[t])
        else:
            _hamilton_step(out[t - 1], True, values[t], means, variances, transition, out[t])
    return out


@numba.njit(cache=True)
def _linear_quantile(sorted_values: np.ndarray, count: int, q: float) -> float:
    pos = q * (count - 1)
    lo = math.floor(pos)
    if lo >= count - 1:
        return sorted_values[count - 1]
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[lo + 1] - sorted_values[lo]) * frac


@numba.njit(cache=True)
def past_quantiles(
    values: np.ndarray, quantiles: np.ndarray, min_history: int, lookback: int
) -> np.ndarray:
    """Quantiles of the defined values strictly before each row, shape ``(T, len(q))``.

    NaN values are skipped. ``lookback > 0`` keeps only the last ``lookback`` defined values
    (rolling); ``0`` keeps all (expanding). Rows with fewer than ``min_history`` past values
    are NaN. Linear interpolation between order statistics (numpy's default).
    """
    n = values.shape[0]
    m = quantiles.shape[0]
    out = np.full((n, m), np.nan)
    buffer = np.empty(n)
    history = np.empty(n)
    count = 0
    seen = 0
    for t in range(n):
        if count >= min_history and count > 0:
            for j in range(m):
                out[t, j] = _linear_quantile(buffer, count, quantiles[j])
        v = values[t]
        if math.isnan(v):
            continue
        history[seen] = v
        seen += 1
        if lookback > 0 and count == lookback:
            old = history[seen - 1 - lookback]
            idx = np.searchsorted(buffer[:count], old)
            buffer[idx : count - 1] = buffer[idx + 1 : count].copy()
            count -= 1
        idx = np.searchsorted(buffer[:count], v)
        buffer[idx + 1 : count + 1] = buffer[idx:count].copy()
        buffer[idx] = v
        count += 1
    return out
