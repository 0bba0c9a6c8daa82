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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from titan_lib.exceptions import ParameterError
from titan_lib.pairs.hedge_ratios import HedgeMethod, check_hedge_method

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


@dataclass(frozen=True)
class SizingSettings:
    """How every pair of a run is sized: a weight of equity or a fixed notional, and the
    units of the hedge ratio.

    Parameters
    ----------
    target_weight
        Gross size of each trade as a fraction of equity at the signal close (> 0): one
        value for every pair or one per pair (stored as a tuple).
    notional
        Instead: a fixed gross size in currency per trade (> 0), one value or one per pair.
    hedge
        Units of ``beta``: ``"log"`` (value ratio) or ``"level"`` (share ratio).
    hedge_method
        How a hedge estimated on a formation window is fitted (a name of
        :data:`~titan_lib.pairs.hedge_ratios.HEDGE_METHODS`): ``"ols"`` (default) or
        ``"tls"``. A given ``beta`` is used as it is.

    With neither size, each of ``n`` pairs gets ``target_weight = 1 / n``.

    Raises
    ------
    ParameterError
        Both sizes given, a non-positive or non-finite size, or an unknown ``hedge`` or
        ``hedge_method``.
    """

    target_weight: float | Sequence[float] | None = None
    notional: float | Sequence[float] | None = None
    hedge: HedgeUnits = "log"
    hedge_method: HedgeMethod = "ols"

    def __post_init__(self) -> None:
        check_hedge_method(self.hedge_method)
        if self.hedge not in HEDGE_CODES:
            raise ParameterError(
                f"hedge must be one of {sorted(HEDGE_CODES)}, got {self.hedge!r}",
                {"parameter": "hedge"},
            )
        if self.notional is not None and self.target_weight is not None:
            raise ParameterError(
                "give either notional or target_weight, not both",
                {"parameter": "notional/target_weight"},
            )
        for name in SIZE_CODES:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, Sequence) and not isinstance(value, str):
                object.__setattr__(self, name, tuple(_size(name, v) for v in value))
            else:
                object.__setattr__(self, name, _size(name, value))

    @property
    def mode(self) -> SizeMode:
        """``"notional"`` when a notional is given, else ``"target_weight"``."""
        return "notional" if self.notional is not None else "target_weight"

    def per_pair(self, n_pairs: int) -> tuple[Sizing, ...]:
        """The :class:`Sizing` of each of ``n_pairs`` pairs.

        Raises
        ------
        ParameterError
            A per-pair size with another number of values than ``n_pairs``.
        """
        given = self.notional if self.notional is not None else self.target_weight
        if given is None:
            values: tuple[float, ...] = (1.0 / n_pairs,) * n_pairs
        elif isinstance(given, int | float):
            values = (float(given),) * n_pairs
        else:
            values = tuple(given)
            if len(values) != n_pairs:
                raise ParameterError(f"{self.mode} has {len(values)} values for {n_pairs} pairs")
        return tuple(Sizing(mode=self.mode, value=v, hedge=self.hedge) for v in values)


def _size(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name} must be a number, got {value!r}", {"parameter": name})
    if not math.isfinite(value) or value <= 0:
        raise ParameterError(
            f"{name} must be a finite number > 0, got {value!r}", {"parameter": name}
        )
    return float(value)
