"""Published models, retirement markers, health and price tails as the API reads them.

Reads go through the runtime's warm cache (:meth:`chalicelib.runtime.Runtime.cached`):
model lists, models, retirement markers and latest health records live for
``TITAN_CACHE_SECONDS`` or until a model event invalidates them; price tails are read
from the store each time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from titan_lib.core.model_registry import Retirement, get_model, list_models, retirement
from titan_lib.core.prices import PriceTail, latest_prices
from titan_lib.core.signal_model import SignalModel
from titan_lib.stores.objects import ObjectStore

if TYPE_CHECKING:
    from titan_lib.core.model_health import HealthRecord

T = TypeVar("T")


class Cache(Protocol):
    """``cache(key, build)``: ``build()`` cached under ``key``."""

    def __call__(self, key: str, build: Callable[[], T]) -> T: ...


class Catalog:
    """Cached reads of the store the API serves from."""

    def __init__(self, store: ObjectStore, cache: Cache) -> None:
        self.store = store
        self.cache = cache

    def served_models(self) -> list[SignalModel]:
        """Published, non-retired models (cached)."""
        return self.cache("models", lambda: [p.model for p in list_models(self.store)])

    def model(self, model_id: str) -> SignalModel:
        """A published model by id (cached; retired models are still readable)."""
        return self.cache(f"model:{model_id}", lambda: get_model(model_id, self.store))

    def retirement(self, model_id: str) -> Retirement | None:
        """The model's retirement marker (cached like the model; orders re-read the store)."""
        return self.cache(f"retirement:{model_id}", lambda: retirement(model_id, self.store))

    def health(self, model_id: str) -> HealthRecord | None:
        """The model's latest health record (cached like the model list)."""
        from titan_lib.core.model_health_store import latest_health  # not on the cold path

        return self.cache(f"health:{model_id}", lambda: latest_health(self.store, model_id))

    def price_tail(self, symbol: str) -> PriceTail:
        """The stored serving tail of ``symbol``."""
        return latest_prices(self.store, symbol)

    def price_tails(self, model: SignalModel) -> dict[str, PriceTail]:
        """The stored serving tails of every symbol the model needs."""
        return {s: self.price_tail(s) for s in model.symbols}

    def last_close(self, symbol: str) -> float:
        """The last stored close of ``symbol``."""
        return latest_prices(self.store, symbol, n=1).last_close
