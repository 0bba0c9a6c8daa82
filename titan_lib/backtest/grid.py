"""Parameter grids of a sweep: validated axes and their combinations, chunk by chunk.

A grid maps rule parameters to the values to try: ``entry``, ``exit``, ``stop``,
``max_hold`` and one z-score setting, ``window`` (rolling) or ``halflife`` (EWMA).
Parameters left out keep the base rule's value. Combinations are the Cartesian product,
enumerated in row-major order of ``AXES`` (the last axis varies fastest); a chunk is a
range of that enumeration, so no grid is ever materialised whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from titan_lib.backtest.rules import PairRule
from titan_lib.core.zscore import ZScoreSpec
from titan_lib.exceptions import ParameterError

AXES: tuple[str, ...] = ("entry", "exit", "stop", "max_hold", "zscore")
GRID_KEYS: tuple[str, ...] = ("entry", "exit", "stop", "max_hold", "window", "halflife")
InvalidCombos = Literal["raise", "drop"]


@dataclass(frozen=True)
class ParameterGrid:
    """Validated axes of a sweep.

    ``values`` holds the five axes of :data:`AXES`; the ``zscore`` axis indexes
    ``zscores`` (one :class:`ZScoreSpec` each) and is reported under ``z_name``
    (``window``, ``halflife`` or None for a fixed z-score) with values ``z_values``.
    """

    values: tuple[np.ndarray, ...]
    zscores: tuple[ZScoreSpec, ...]
    z_name: str | None
    z_values: np.ndarray
    drop_invalid: bool

    @property
    def shape(self) -> tuple[int, ...]:
        """Length of each axis."""
        return tuple(len(v) for v in self.values)

    @property
    def size(self) -> int:
        """Number of combinations, invalid ones included."""
        return math.prod(self.shape)

    def combos(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Parameters of combinations ``lo .. hi - 1`` (invalid ones dropped when asked).

        Keys: ``entry``, ``exit``, ``stop``, ``max_hold``, ``z_index`` and ``z_value``.
        """
        idx = np.unravel_index(np.arange(lo, hi, dtype=np.int64), self.shape)
        out = {name: self.values[a][idx[a]] for a, name in enumerate(AXES[:4])}
        out["z_index"] = idx[4].astype(np.int64)
        out["z_value"] = self.z_values[idx[4]]
        if self.drop_invalid:
            keep = (out["exit"] < out["entry"]) & (out["stop"] > out["entry"])
            out = {k: v[keep] for k, v in out.items()}
        return out


def make_grid(
    grid: Mapping[str, Sequence[float] | float],
    base: PairRule,
    invalid: InvalidCombos = "raise",
) -> ParameterGrid:
    """Validate a grid against the base rule.

    Raises
    ------
    ParameterError
        Not a mapping, an unknown key, an empty axis, a value out of range, both
        ``window`` and ``halflife``, or (``invalid="raise"``) a combination with
        ``exit >= entry`` or ``stop <= entry``; also when no valid combination is left.
    """
    if invalid not in ("raise", "drop"):
        raise ParameterError(f"invalid must be 'raise' or 'drop', got {invalid!r}")
    if not isinstance(grid, Mapping) or not grid:
        raise ParameterError(
            f"the grid is empty: give a mapping of {', '.join(GRID_KEYS)} to values"
        )
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ParameterError(
            f"unknown grid parameter(s) {', '.join(map(repr, unknown))}; "
            f"use {', '.join(GRID_KEYS)}",
            {"parameters": unknown},
        )
    axes = {name: _axis(name, grid.get(name), getattr(base, name)) for name in AXES[:4]}
    if (
        bool(axes["entry"].size and (axes["entry"] <= 0).any())
        or not np.isfinite(axes["entry"]).all()
    ):
        raise ParameterError("grid entry values must be finite and > 0")
    if (axes["exit"] < 0).any():
        raise ParameterError("grid exit values must be >= 0")
    if (axes["max_hold"] < 1).any():
        raise ParameterError("grid max_hold values must be >= 1 bar (inf for none)")
    if "window" in grid and "halflife" in grid:
        raise ParameterError("sweep either window (rolling) or halflife (EWMA), not both")
    zscores, z_name, z_values = _z_axis(grid, base.zscore)
    bad_exit = axes["exit"].max() >= axes["entry"].min()
    bad_stop = axes["stop"].min() <= axes["entry"].max()
    if invalid == "raise" and (bad_exit or bad_stop):
        if bad_exit:
            what = (
                f"exit {axes['exit'].max():g} >= entry {axes['entry'].min():g}: "
                "every exit must be below every entry"
            )
        else:
            what = (
                f"stop {axes['stop'].min():g} <= entry {axes['entry'].max():g}: "
                "every stop must be above every entry"
            )
        raise ParameterError(
            f"the grid has invalid combinations ({what}); fix the grid or pass invalid='drop'",
            {"parameter": "grid"},
        )
    built = ParameterGrid(
        values=(*(axes[name] for name in AXES[:4]), np.arange(len(zscores), dtype=np.int64)),
        zscores=tuple(zscores),
        z_name=z_name,
        z_values=z_values,
        drop_invalid=invalid == "drop",
    )
    if invalid == "drop":
        e, x, s = (np.asarray(v) for v in (axes["entry"], axes["exit"], axes["stop"]))
        valid = (x[None, :, None] < e[:, None, None]) & (s[None, None, :] > e[:, None, None])
        if not valid.any():
            raise ParameterError("no combination of the grid has exit < entry < stop")
    return built


def _axis(name: str, given: Sequence[float] | float | None, default: float) -> np.ndarray:
    values = [default] if given is None else given
    if isinstance(values, int | float):
        values = [values]
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
        raise ParameterError(f"grid {name} must be a number or a list of numbers")
    if len(values) == 0:
        raise ParameterError(f"grid axis {name!r} is empty", {"parameter": name})
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or math.isnan(v):
            raise ParameterError(f"grid {name} values must be numbers, got {v!r}")
    return np.unique(np.asarray(values, dtype=np.float64))


def _z_axis(
    grid: Mapping[str, Sequence[float] | float], base: ZScoreSpec
) -> tuple[list[ZScoreSpec], str | None, np.ndarray]:
    if "window" in grid:
        windows = _axis("window", grid["window"], 0.0)
        if (windows < 2).any() or (windows != np.round(windows)).any():
            raise ParameterError("grid window values must be whole numbers >= 2")
        return [ZScoreSpec.rolling(int(w)) for w in windows], "window", windows
    if "halflife" in grid:
        halflives = _axis("halflife", grid["halflife"], 0.0)
        if (halflives <= 0).any() or not np.isfinite(halflives).all():
            raise ParameterError("grid halflife values must be finite and > 0")
        return [ZScoreSpec.ewma(halflife=float(h)) for h in halflives], "halflife", halflives
    if base.method == "rolling":
        return [base], "window", np.array([float(base.window or 0)])
    if base.method == "ewma" and base.halflife is not None:
        return [base], "halflife", np.array([base.halflife])
    return [base], None, np.array([np.nan])
