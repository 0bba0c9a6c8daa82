"""Decided states of a pair from its spread: the signal rules of :mod:`titan_lib.signals`.

The z-score is :func:`titan_lib.signals.zscores` and the states come from the shared
compiled state machine :func:`titan_lib.signals.run_state_machine`; this module only
arranges arrays for them. Bars before ``first`` warm up the z-score; the machine starts
flat, armed, at ``first``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from titan_lib.core.zscore import ZScoreSpec
from titan_lib.signals import run_state_machine, spread_expr, zscores
from titan_lib.signals.zscore import as_numpy


def spread_of(
    close_y: np.ndarray, close_x: np.ndarray, beta: float, alpha: float, hedge: str
) -> np.ndarray:
    """Spread ``f(y) - beta f(x) - alpha``, ``f = ln`` (``hedge="log"``) or identity."""
    frame = pl.DataFrame({"y": close_y, "x": close_x})
    return frame.select(spread_expr("y", "x", beta, alpha, hedge))["spread"].to_numpy()  # type: ignore[arg-type]


def zscore_series(spread: np.ndarray, spec: ZScoreSpec) -> np.ndarray:
    """Causal z-score of ``spread`` (NaN where undefined)."""
    return as_numpy(zscores(pl.Series("spread", spread), spec))


def decided_states(
    zs: np.ndarray,
    z_index: np.ndarray,
    entry: np.ndarray,
    exit_: np.ndarray,
    stop: np.ndarray,
    max_hold: np.ndarray,
    gate: np.ndarray,
    first: int,
) -> tuple[np.ndarray, np.ndarray]:
    """States and reasons (``int64[n - first, C]``) of ``C`` rule combinations.

    ``zs`` is ``(W, n)``, one z-score series per setting; combination ``c`` reads
    ``zs[z_index[c]]``. ``gate`` holds the gate code of each of the ``n`` bars.
    """
    z = np.ascontiguousarray(zs[:, first:].T)
    gates = np.ascontiguousarray(gate[first:].astype(np.int8).reshape(-1, 1))
    positions, reasons = run_state_machine(
        z,
        np.ascontiguousarray(z_index, dtype=np.int64),
        np.ascontiguousarray(entry, dtype=np.float64),
        np.ascontiguousarray(exit_, dtype=np.float64),
        np.ascontiguousarray(stop, dtype=np.float64),
        np.ascontiguousarray(max_hold, dtype=np.float64),
        gates,
        np.zeros(len(entry), dtype=np.int64),
    )
    return positions, reasons
