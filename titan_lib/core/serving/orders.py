"""The execution service over a store and a ledger, as every face builds it.

:func:`open_broker` picks the broker from the environment; :func:`store_execution` wires
an :class:`~titan_lib.core.execution.service.ExecutionService` whose planner reads the
model, its price tails and its retirement from the store on every order (no cache).
The Lambda builds the same service over its warm caches (``lambdas/chalicelib/runtime.py``);
the command line and the model monitor use this one. Standard library only (the
Alpaca adapter is imported only when chosen).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from titan_lib.core.execution.broker import Broker
from titan_lib.core.execution.ledger import Ledger
from titan_lib.core.execution.models import OrderRequest
from titan_lib.core.execution.risk import RiskLimits
from titan_lib.core.execution.service import ExecutionService, TradePlan
from titan_lib.core.model_registry import get_model, retirement
from titan_lib.core.prices import latest_prices
from titan_lib.core.serving.planning import plan_order
from titan_lib.exceptions import ParameterError
from titan_lib.stores.objects import ObjectStore


def open_broker(store: ObjectStore, environ: Mapping[str, str] | None = None) -> Broker:
    """The broker named by ``TITAN_BROKER``: ``paper`` (default) or ``alpaca``.

    The paper broker fills at the last stored close moved by ``TITAN_SLIPPAGE_BPS``
    (default 5); Alpaca reads its settings from the environment.
    """
    env = os.environ if environ is None else environ
    name = env.get("TITAN_BROKER", "paper")
    if name == "paper":
        from titan_lib.core.execution.paper import PaperBroker

        raw = env.get("TITAN_SLIPPAGE_BPS", "5")
        try:
            slippage = float(raw)
        except ValueError:
            raise ParameterError(f"TITAN_SLIPPAGE_BPS must be a number, got {raw!r}") from None
        return PaperBroker(store, slippage)
    if name == "alpaca":
        from titan_lib.core.execution.alpaca import AlpacaBroker, AlpacaSettings

        return AlpacaBroker(AlpacaSettings.from_env())
    raise ParameterError(f"TITAN_BROKER must be paper or alpaca, got {name!r}")


def store_execution(
    store: ObjectStore,
    ledger: Ledger,
    broker: Broker | None = None,
    limits: RiskLimits | None = None,
) -> ExecutionService:
    """An execution service reading models, tails and retirements from ``store``.

    ``broker`` defaults to :func:`open_broker`, ``limits`` to
    :meth:`RiskLimits.from_env`.
    """

    def plan(request: OrderRequest, current: Mapping[str, float]) -> TradePlan:
        model = get_model(request.model_id, store)
        tails = {s: latest_prices(store, s) for s in model.symbols}
        return plan_order(model, tails, request, current, lambda m: retirement(m, store))

    return ExecutionService(
        ledger=ledger,
        broker=broker or open_broker(store),
        limits=limits or RiskLimits.from_env(),
        planner=plan,
        last_price=lambda symbol: latest_prices(store, symbol, n=1).last_close,
        retirement_of=lambda model_id: retirement(model_id, store),
    )
