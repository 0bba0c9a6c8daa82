"""Trading costs of a backtest: commission, slippage and the borrow fee of short legs."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from titan_lib.exceptions import ParameterError

TRADING_DAYS = 252
"""Trading days per year: annualisation factor of every rate and statistic."""


@dataclass(frozen=True)
class Costs:
    """Costs charged on every fill and on every day a short position is held.

    Parameters
    ----------
    commission_bps
        Commission in basis points of the traded value at the (slipped) fill price.
    commission_fixed
        Fixed commission in currency units per order; each leg of a pair is one order.
    slippage_bps
        Adverse fill-price move in basis points: buys fill at ``p * (1 + s)``, sells at
        ``p * (1 - s)``.
    borrow_bps
        Annual borrow fee in basis points of the short market value. It accrues once per
        trading day (rate / 252) on the value at that day's close of every short held over
        that close.

    Raises
    ------
    ParameterError
        When a cost is negative or not finite.
    """

    commission_bps: float = 0.0
    commission_fixed: float = 0.0
    slippage_bps: float = 0.0
    borrow_bps: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParameterError(
                    f"cost {field.name} must be a number, got {value!r}",
                    {"parameter": field.name},
                )
            if not math.isfinite(value) or value < 0:
                raise ParameterError(
                    f"cost {field.name} must be a finite number >= 0, got {value!r}",
                    {"parameter": field.name, "value": repr(value)},
                )

    @property
    def commission_rate(self) -> float:
        """Commission as a fraction of traded value."""
        return self.commission_bps / 1e4

    @property
    def slippage_rate(self) -> float:
        """Slippage as a fraction of the fill price."""
        return self.slippage_bps / 1e4

    @property
    def borrow_daily_rate(self) -> float:
        """Borrow fee per trading day as a fraction of short market value."""
        return self.borrow_bps / 1e4 / TRADING_DAYS

    @property
    def is_zero(self) -> bool:
        """True when no cost of any kind is charged."""
        return not any(getattr(self, f.name) for f in fields(self))
