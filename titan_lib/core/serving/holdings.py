"""Which side of a pair the ledger holds, and which pairs are open.

A quantity counts as held when it is beyond
:data:`~titan_lib.core.execution.models.QUANTITY_TOLERANCE` shares
(:func:`~titan_lib.core.execution.models.is_open`), the one threshold used by orders, risk
checks, the API and the dashboards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from titan_lib.core.execution.models import Position, TargetPosition, is_open

if TYPE_CHECKING:
    from titan_lib.core.signal_model import SignalModel


def pair_quantities(positions: Iterable[Position], model_id: str) -> dict[str, float]:
    """Shares held per symbol of the model's pair (signed)."""
    return {p.symbol: p.quantity for p in positions if p.model_id == model_id}


def held_side(model: SignalModel, quantities: Mapping[str, float]) -> TargetPosition:
    """The spread position held: the sign of the ``y`` leg (long ``y`` is long the spread).

    Parameters
    ----------
    model
        The model whose pair is held.
    quantities
        Shares held per symbol of the pair (:func:`pair_quantities`).

    Returns
    -------
    int
        ``1`` long the spread, ``-1`` short, ``0`` flat (within the tolerance).
    """
    held = quantities.get(model.y, 0.0)
    if not is_open(held):
        return 0
    return 1 if held > 0 else -1


def open_pairs(positions: Iterable[Position]) -> list[str]:
    """Ids of the models with at least one open leg, sorted."""
    return sorted({p.model_id for p in positions if is_open(p.quantity)})
