"""Mark-to-market: the value and P&L of ledger positions at the last stored closes.

A position's ``cash`` is the signed cash flow of its fills, so at price ``p`` its market
value is ``quantity * p`` and its P&L ``cash + quantity * p`` (in the stored currency).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from titan_lib.core.execution.models import Position


@dataclass(frozen=True)
class PositionMark:
    """A position valued at ``last_price`` (``None``: no price, so no value or P&L)."""

    position: Position
    last_price: float | None

    @property
    def market_value(self) -> float | None:
        """``quantity * last_price``."""
        if self.last_price is None:
            return None
        return self.position.quantity * self.last_price

    @property
    def pnl(self) -> float | None:
        """Mark-to-market P&L: ``cash + quantity * last_price``."""
        value = self.market_value
        return None if value is None else self.position.cash + value

    def to_dict(self) -> dict[str, Any]:
        """The position with ``last_price``, ``market_value`` and ``pnl``."""
        return {
            **self.position.to_dict(),
            "last_price": self.last_price,
            "market_value": self.market_value,
            "pnl": self.pnl,
        }


def mark_to_market(
    positions: Iterable[Position], last_price: Callable[[str], float | None]
) -> list[PositionMark]:
    """Value every position at ``last_price(symbol)``, in the order given.

    ``last_price`` may return ``None`` (the position is shown without a value) or raise
    (the error propagates).
    """
    return [PositionMark(p, last_price(p.symbol)) for p in positions]


def total_pnl(marks: Iterable[PositionMark]) -> float:
    """Sum of the P&L of the marks that have one."""
    total = 0.0
    for mark in marks:
        pnl = mark.pnl
        if pnl is not None:
            total += pnl
    return total


def pnl_by_model(marks: Iterable[PositionMark]) -> dict[str, float]:
    """P&L summed per model (open and closed positions), models in first-seen order."""
    totals: dict[str, float] = {}
    for mark in marks:
        pnl = mark.pnl
        if pnl is not None:
            model_id = mark.position.model_id
            totals[model_id] = totals.get(model_id, 0.0) + pnl
    return totals
