"""Signals of published models from the latest stored prices, as the API serves them.

A signal document (the API's ``Signal`` schema,
:func:`titan_lib.core.serving.signal_document`) holds the z-score, the action, the target
position, the regime gate, the as-of date and the model's ``status`` (``served`` or
``retired``, with the retirement's date and reason: a retired model is close-only).
``GET /signals/{id}`` evaluates statelessly (the model replayed over the stored tail);
order planning (:func:`titan_lib.core.serving.plan_order`) evaluates from the position
actually held in the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.runtime import Runtime
from titan_lib.core.evaluate import evaluate
from titan_lib.core.serving.documents import signal_document
from titan_lib.core.serving.evaluation import evaluate_served
from titan_lib.stores.objects import dumps_json

SNAPSHOT_KEY = "signals/snapshot/latest.json"


def current_signal(rt: Runtime, model_id: str) -> dict[str, Any]:
    """The model's signal from the latest stored prices (cached until prices may change)."""
    catalog = rt.catalog

    def build() -> dict[str, Any]:
        m = catalog.model(model_id)
        signal = evaluate(m, catalog.price_tails(m))
        return signal_document(m, signal, catalog.retirement(model_id))

    return rt.cached(f"signal:{model_id}", build)


def evaluate_given(
    rt: Runtime, model_id: str, prices: Mapping[str, list[tuple[str, float]]], position: int | None
) -> dict[str, Any]:
    """The model's signal for prices given in a request."""
    m = rt.catalog.model(model_id)
    signal = evaluate(m, prices, position=position)
    return signal_document(m, signal, rt.catalog.retirement(model_id))


def refresh_snapshot(rt: Runtime) -> dict[str, Any]:
    """Evaluate every served model and store the snapshot at :data:`SNAPSHOT_KEY`.

    A model that cannot be evaluated (missing prices) is listed under ``errors``; any
    failure of one model is contained there, so it cannot stop the snapshot.
    """
    rt.invalidate()
    catalog = rt.catalog
    signals, errors = [], []
    for served in evaluate_served(catalog.served_models(), catalog.price_tail, contain=Exception):
        model_id = served.model.model_id
        if served.signal is None:
            errors.append({"model_id": model_id, "error": served.error_message})
            continue
        try:
            retired = catalog.retirement(model_id)
        except Exception as exc:  # one broken model must not stop the snapshot
            errors.append(
                {"model_id": model_id, "error": getattr(exc, "message", type(exc).__name__)}
            )
            continue
        signals.append(signal_document(served.model, served.signal, retired))
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
