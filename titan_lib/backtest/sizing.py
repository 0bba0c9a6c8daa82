"""How many shares each leg of a pair trade gets: hedge ratio and notional or weight.

A pair position of sign ``s`` (+1 long spread: long ``y``, short ``beta`` of ``x``) has a
gross value ``G`` fixed when the trade is entered, from the closes of the signal day:

- ``hedge="log"`` (``beta`` from log prices, the default): the ``x`` leg's value is
  ``beta`` times the ``y`` leg's value, ``q_y = s G / ((1 + |beta|) P_y)`` and
  ``q_x = -s beta G / ((1 + |beta|) P_x)``.
- ``hedge="level"`` (``beta`` from price levels): ``beta`` shares of ``x`` per share of
  ``y``, ``q_y = s G / (P_y + |beta| P_x)`` and ``q_x = -beta q_y``.

``G`` is a fixed ``notional`` (currency units) or ``target_weight`` times the portfolio
equity at the signal-day close. Shares then stay constant until the trade is closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from titan_lib.exceptions import ParameterError

HedgeUnits = Literal["log", "level"]
SizeMode = Literal["notional", "target_weight"]

HEDGE_CODES: dict[str, int] = {"log": 0, "level": 1}
SIZE_CODES: dict[str, int] = {"notional": 0, "target_weight": 1}


@dataclass(frozen=True)
class Sizing:
    """Gross size of a pair trade: ``mode`` is a fixed notional or a weight of equity."""

    mode: SizeMode
    value: float
    hedge: HedgeUnits = "log"

    @property
    def mode_code(self) -> int:
        """Integer code used by the compiled kernels (0 notional, 1 target weight)."""
        return SIZE_CODES[self.mode]

    @property
    def hedge_code(self) -> int:
        """Integer code used by the compiled kernels (0 log, 1 level)."""
        return HEDGE_CODES[self.hedge]


def make_sizing(notional: float | None, target_weight: float | None, hedge: str = "log") -> Sizing:
    """Validate the sizing arguments of a backtest and return a :class:`Sizing`.

    Exactly one of ``notional`` (currency units, > 0) and ``target_weight`` (fraction of
    equity, > 0) may be given; with neither, ``target_weight=1.0``.

    Raises
    ------
    ParameterError
        Both given, a non-positive or non-finite size, or an unknown ``hedge``.
    """
    if hedge not in HEDGE_CODES:
        raise ParameterError(
            f"hedge must be one of {sorted(HEDGE_CODES)}, got {hedge!r}", {"parameter": "hedge"}
        )
    if notional is not None and target_weight is not None:
        raise ParameterError(
            "give either notional or target_weight, not both",
            {"parameter": "notional/target_weight"},
        )
    if notional is not None:
        mode: SizeMode = "notional"
        value = notional
    else:
        mode = "target_weight"
        value = 1.0 if target_weight is None else target_weight
    name = mode
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name} must be a number, got {value!r}", {"parameter": name})
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(
            f"{name} must be a finite number > 0, got {value!r}", {"parameter": name}
        )
    return Sizing(mode=mode, value=float(value), hedge=hedge)  # type: ignore[arg-type]
