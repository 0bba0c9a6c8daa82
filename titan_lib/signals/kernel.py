"""Compiled kernels of the signal rules (numba, cached on disk).

:func:`run_state_machine` runs the state machine of :mod:`titan_lib.core.state_machine`
(the very same :func:`~titan_lib.core.state_machine.step`, compiled) over many parameter
combinations at once: the backtest sweep calls it with a whole grid. :func:`ewma_zscores`
runs the EWMA z-score recursion of :mod:`titan_lib.core.zscore`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from titan_lib.core.state_machine import step
from titan_lib.core.zscore import ewma_update, zscore_from_moments

_step = numba.njit(cache=True)(step)
_ewma_update = numba.njit(cache=True)(ewma_update)
_zscore = numba.njit(cache=True)(zscore_from_moments)


@numba.njit(cache=True)
def run_state_machine(
    z: np.ndarray,
    z_col: np.ndarray,
    entry: np.ndarray,
    exit_: np.ndarray,
    stop: np.ndarray,
    max_hold: np.ndarray,
    gate: np.ndarray,
    gate_col: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the state machine for ``C`` parameter combinations over ``T`` bars.

    Every combination starts flat with entries armed at bar 0.

    Parameters
    ----------
    z : float64[T, K]
        Z-score columns (e.g. one per z-window); NaN where undefined.
    z_col : int64[C]
        The z column each combination reads.
    entry, exit_, stop : float64[C]
        Thresholds per combination, ``0 <= exit_ < entry < stop`` (``stop`` may be inf).
    max_hold : float64[C]
        Time stop in bars per combination (inf for none).
    gate : int8[T, G]
        Regime gate codes per bar: 0 open, 1 no new entries, 2 no entries and flatten.
        Use ``np.zeros((T, 1), np.int8)`` for no gate.
    gate_col : int64[C]
        The gate column each combination reads.

    Returns
    -------
    positions : int8[T, C]
        -1 short spread, 0 flat, +1 long spread, after each bar.
    reasons : int8[T, C]
        Reason code of each bar (:data:`titan_lib.core.state_machine.REASONS`).
    """
    n = z.shape[0]
    c = z_col.shape[0]
    positions = np.zeros((n, c), dtype=np.int8)
    reasons = np.zeros((n, c), dtype=np.int8)
    for j in range(c):
        zc = z_col[j]
        gc = gate_col[j]
        pos = 0
        held = 0
        armed = 1
        for t in range(n):
            pos, held, armed, reason = _step(
                pos,
                held,
                armed,
                z[t, zc],
                entry[j],
                exit_[j],
                stop[j],
                max_hold[j],
                int(gate[t, gc]),
            )
            positions[t, j] = pos
            reasons[t, j] = reason
    return positions, reasons


@numba.njit(cache=True)
def ewma_zscores(
    values: np.ndarray,
    alpha: float,
    min_periods: int,
    skip: int,
    mean0: float,
    var0: float,
    count0: int,
) -> np.ndarray:
    """EWMA z-scores (``adjust=False``) of ``values[skip:]``, continuing from a state.

    ``(mean0, var0, count0)`` is the recursion state before ``values[skip]`` (``count0 = 0``
    starts fresh). Rows before ``skip`` and rows with fewer than ``min_periods`` values seen
    are NaN.
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    mean = mean0
    var = var0
    count = count0
    for t in range(skip, n):
        mean, var, count = _ewma_update(mean, var, count, values[t], alpha)
        if count >= min_periods:
            out[t] = _zscore(values[t], mean, math.sqrt(var))
    return out
