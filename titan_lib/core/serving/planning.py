"""Order planning: where a model's pair should be after an order.

The target position is the request's, or else the model's signal evaluated from the side
actually held (:func:`~titan_lib.core.serving.holdings.held_side`). Leg quantities come
from the hedge ratio and the notional at the last stored closes
(:meth:`~titan_lib.core.signal_model.SignalModel.leg_quantities`), rounded to
:data:`QUANTITY_DECIMALS` decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from titan_lib.core.evaluate import evaluate
from titan_lib.core.execution.models import OrderRequest
from titan_lib.core.execution.service import TradePlan
from titan_lib.core.model_registry import Retirement
from titan_lib.core.prices import PriceTail
from titan_lib.core.serving.documents import signal_document
from titan_lib.core.serving.holdings import held_side
from titan_lib.core.signal_model import SignalModel

QUANTITY_DECIMALS = 6
"""Decimals of a share quantity in an order (fractional shares down to a millionth)."""


def plan_order(
    model: SignalModel,
    tails: Mapping[str, PriceTail],
    request: OrderRequest,
    current: Mapping[str, float],
    retirement_of: Callable[[str], Retirement | None] | None = None,
) -> TradePlan:
    """Target holdings of the model's pair for ``request``.

    Parameters
    ----------
    model
        The model the order trades.
    tails
        The serving price tail of each symbol of the model (closes in the stored
        currency).
    request
        The order: notional and, optionally, an explicit target position.
    current
        Shares held per symbol of the pair now (signed).
    retirement_of
        The retirement marker of a model id, shown in the evaluated signal's document;
        asked only when the target comes from the model.

    Returns
    -------
    TradePlan
        Target shares per symbol, the closes used, their dates, and the signal document
        when the target came from the model (``None`` for an explicit target).
    """
    side = held_side(model, current)
    signal_doc = None
    target = request.target_position
    if target is None:
        signal = evaluate(model, tails, position=side)
        target = signal.position
        retired = None if retirement_of is None else retirement_of(model.model_id)
        signal_doc = signal_document(model, signal, retired)
    last = {s: tails[s].last_close for s in (model.y, model.x)}
    legs = model.leg_quantities(request.notional, last[model.y], last[model.x], side=target)
    return TradePlan(
        target_position=target,
        target_quantities={
            model.y: round(legs.y_quantity, QUANTITY_DECIMALS) + 0.0,
            model.x: round(legs.x_quantity, QUANTITY_DECIMALS) + 0.0,
        },
        prices=last,
        signal=signal_doc,
        price_dates={s: tails[s].last_date for s in (model.y, model.x)},
    )
