"""The paper broker: fills market orders at the last stored price plus slippage.

Each leg's execution is written create-only to the object store under
``paper/orders/<leg client id>.json``, so re-submitting a client order id returns the
original fill instead of trading again, and the record survives a crashed caller.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from titan_lib.core.execution.broker import Execution, leg_client_id
from titan_lib.core.execution.models import FillLeg, OrderLeg
from titan_lib.core.prices import latest_prices
from titan_lib.exceptions import ParameterError
from titan_lib.stores.objects import ObjectStore, dumps_json


class PaperBroker:
    """Simulated broker over the price store.

    Parameters
    ----------
    store
        Object store holding the serving price tails (and the paper fills).
    slippage_bps
        Adverse slippage in basis points: buys fill at ``last * (1 + s)``, sells at
        ``last * (1 - s)`` with ``s = slippage_bps / 10_000``.
    """

    name = "paper"

    def __init__(self, store: ObjectStore, slippage_bps: float = 5.0) -> None:
        if not 0 <= slippage_bps < 10_000:
            raise ParameterError(
                f"slippage_bps must be in [0, 10000), got {slippage_bps}",
                {"slippage_bps": slippage_bps},
            )
        self.store = store
        self.slippage_bps = slippage_bps

    @staticmethod
    def _key(leg_id: str) -> str:
        return f"paper/orders/{leg_id}.json"

    def _read(self, leg_id: str) -> FillLeg | None:
        found = self.store.read_versioned(self._key(leg_id))
        return None if found is None else FillLeg.from_dict(json.loads(found[0]))

    def submit(self, client_order_id: str, legs: Sequence[OrderLeg]) -> Execution:
        fills = []
        for index, leg in enumerate(legs):
            leg_id = leg_client_id(client_order_id, index)
            last = latest_prices(self.store, leg.symbol, n=1).last_close
            sign = 1.0 if leg.quantity > 0 else -1.0
            price = last * (1.0 + sign * self.slippage_bps / 10_000.0)
            fill = FillLeg(
                symbol=leg.symbol,
                quantity=leg.quantity,
                price=price,
                broker_order_id=f"paper-{leg_id}",
            )
            if not self.store.put_if_absent(self._key(leg_id), dumps_json(fill.to_dict())):
                existing = self._read(leg_id)
                fill = existing if existing is not None else fill
            fills.append(fill)
        return Execution(legs=tuple(fills), complete=True)

    def lookup(self, client_order_id: str, legs: Sequence[OrderLeg]) -> Execution | None:
        found = [self._read(leg_client_id(client_order_id, i)) for i in range(len(legs))]
        fills = tuple(f for f in found if f is not None)
        if not fills:
            return None
        return Execution(legs=fills, complete=len(fills) == len(legs))
