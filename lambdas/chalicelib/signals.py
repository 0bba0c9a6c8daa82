"""Signals of published models from the latest stored prices, and order planning.

A signal document (the API's ``Signal`` schema) holds the z-score, the action, the target
position, the regime gate and the as-of date. ``GET /signals/{id}`` evaluates statelessly
(the model replayed over the stored tail); order planning evaluates from the position
actually held in the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from titan_lib.core.evaluate import Signal, evaluate
from titan_lib.core.execution.models import OrderRequest
from titan_lib.core.execution.service import TradePlan
from titan_lib.core.model_registry import get_model, list_models
from titan_lib.core.prices import PriceTail, latest_prices
from titan_lib.core.signal_model import SignalModel
from titan_lib.stores.objects import dumps_json

if TYPE_CHECKING:
    from chalicelib.runtime import Runtime

SNAPSHOT_KEY = "signals/snapshot/latest.json"
QUANTITY_DECIMALS = 6


def model_summary(model: SignalModel) -> dict[str, Any]:
    """What ``GET /models`` lists for a model."""
    return {
        "model_id": model.model_id,
        "y": model.y,
        "x": model.x,
        "beta": model.beta,
        "alpha": model.alpha,
        "transform": model.transform,
        "zscore_method": model.zscore.method,
        "entry": model.rules.entry,
        "exit": model.rules.exit,
        "gated": model.gate is not None,
        "fit_start": model.fit.start,
        "fit_end": model.fit.end,
    }


def served_models(rt: Runtime) -> list[SignalModel]:
    """Published, non-retired models (cached)."""
    return rt.cached(  # type: ignore[no-any-return]
        "models", lambda: [p.model for p in list_models(rt.store)]
    )


def model(rt: Runtime, model_id: str) -> SignalModel:
    """A published model by id (cached; retired models are still readable)."""
    return rt.cached(f"model:{model_id}", lambda: get_model(model_id, rt.store))  # type: ignore[no-any-return]


def prices_for(rt: Runtime, m: SignalModel) -> dict[str, PriceTail]:
    """The stored serving tails of every symbol the model needs."""
    return {s: latest_prices(rt.store, s) for s in m.symbols}


def last_close(rt: Runtime, symbol: str) -> float:
    """The last stored close of ``symbol``."""
    return latest_prices(rt.store, symbol, n=1).last_close


def signal_document(m: SignalModel, signal: Signal) -> dict[str, Any]:
    """The API's signal document."""
    return {
        "model_id": signal.model_id,
        "as_of": signal.as_of,
        "y": m.y,
        "x": m.x,
        "beta": m.beta,
        "zscore": signal.zscore,
        "spread": signal.spread,
        "action": signal.action,
        "reason": signal.reason,
        "explanation": signal.explanation,
        "target_position": signal.position,
        "previous_position": signal.previous_position,
        "regime": signal.regime,
        "gate": signal.gate,
        "prices": signal.prices,
    }


def current_signal(rt: Runtime, model_id: str) -> dict[str, Any]:
    """The model's signal from the latest stored prices (cached until prices may change)."""

    def build() -> dict[str, Any]:
        m = model(rt, model_id)
        return signal_document(m, evaluate(m, prices_for(rt, m)))

    return rt.cached(f"signal:{model_id}", build)  # type: ignore[no-any-return]


def evaluate_given(
    rt: Runtime, model_id: str, prices: Mapping[str, list[tuple[str, float]]], position: int | None
) -> dict[str, Any]:
    """The model's signal for prices given in a request."""
    m = model(rt, model_id)
    return signal_document(m, evaluate(m, prices, position=position))


def plan_order(rt: Runtime, request: OrderRequest, current: Mapping[str, float]) -> TradePlan:
    """Target holdings of the model's pair for ``request``.

    The target position is the request's, or else the model's signal evaluated from the
    side actually held (the sign of the ``y`` leg in the ledger). Leg quantities come from
    the hedge ratio and the notional at the last stored closes
    (:meth:`SignalModel.leg_quantities`), rounded to 6 decimals.
    """
    m = model(rt, request.model_id)
    tails = prices_for(rt, m)
    held = current.get(m.y, 0.0)
    side = 1 if held > 0 else -1 if held < 0 else 0
    signal_doc = None
    target = request.target_position
    if target is None:
        signal = evaluate(m, tails, position=side)
        target = signal.position
        signal_doc = signal_document(m, signal)
    last = {s: tails[s].last_close for s in (m.y, m.x)}
    legs = m.leg_quantities(request.notional, last[m.y], last[m.x], side=target)
    return TradePlan(
        target_position=target,
        target_quantities={
            m.y: round(legs.y_quantity, QUANTITY_DECIMALS) + 0.0,
            m.x: round(legs.x_quantity, QUANTITY_DECIMALS) + 0.0,
        },
        prices=last,
        signal=signal_doc,
    )


def refresh_snapshot(rt: Runtime) -> dict[str, Any]:
    """Evaluate every served model and store the snapshot at :data:`SNAPSHOT_KEY`.

    A model that cannot be evaluated (missing prices) is listed under ``errors``.
    """
    rt.invalidate()
    signals, errors = [], []
    for m in served_models(rt):
        try:
            signals.append(current_signal(rt, m.model_id))
        except Exception as exc:  # one broken model must not stop the snapshot
            message = getattr(exc, "message", type(exc).__name__)
            errors.append({"model_id": m.model_id, "error": message})
    snapshot = {
        "generated_at": datetime.now(UTC).isoformat(),
        "signals": signals,
        "errors": errors,
    }
    rt.store.write_bytes(SNAPSHOT_KEY, dumps_json(snapshot))
    for doc in signals:
        rt.store.write_bytes(
            f"signals/snapshot/{doc['model_id']}.json", json.dumps(doc, sort_keys=True).encode()
        )
    return snapshot
