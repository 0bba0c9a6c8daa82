"""Process-wide services of the app, built lazily from the environment.

A Lambda container keeps these between invocations (warm caches). Settings:

``TITAN_STORE``           store URI (``s3://bucket/prefix`` in AWS): models, price tails
``TITAN_LEDGER``          ``dynamodb://<table>`` or a SQLite path (default: in the store folder)
``TITAN_BROKER``          ``paper`` (default) or ``alpaca`` (see the Alpaca adapter)
``TITAN_SLIPPAGE_BPS``    paper-broker slippage (default 5)
``TITAN_CACHE_SECONDS``   life of cached signals and model lists (default 30)
JWT settings              see :meth:`titan_lib.core.auth.AuthSettings.from_env`
Risk limits               see :meth:`titan_lib.core.execution.risk.RiskLimits.from_env`
Rate limit                see :meth:`titan_lib.core.execution.throttle.RateLimit.from_env`
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, TypeVar, cast

from chalicelib.catalog import Catalog
from titan_lib.core.auth import AuthSettings
from titan_lib.core.execution.broker import Broker
from titan_lib.core.execution.ledger import Ledger
from titan_lib.core.execution.ledgers import open_ledger
from titan_lib.core.execution.models import OrderRequest
from titan_lib.core.execution.risk import RiskLimits
from titan_lib.core.execution.service import ExecutionService, TradePlan
from titan_lib.core.execution.throttle import RateLimit
from titan_lib.stores.objects import ObjectStore, open_store

T = TypeVar("T")

CACHE_GENERATION_KEY = "signals/cache-generation.json"
"""Bumped by the model-event handler; warm containers drop their caches when it changes."""


class Runtime:
    """Store, ledger, broker, settings and warm caches of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cache: dict[str, tuple[float, Any]] = {}
        self._generation: str | None = None
        self._generation_checked = 0.0

    @cached_property
    def store(self) -> ObjectStore:
        return open_store()

    @cached_property
    def ledger(self) -> Ledger:
        return open_ledger()

    @cached_property
    def auth(self) -> AuthSettings:
        return AuthSettings.from_env()

    @cached_property
    def limits(self) -> RiskLimits:
        return RiskLimits.from_env()

    @cached_property
    def rate(self) -> RateLimit:
        return RateLimit.from_env()

    @cached_property
    def cache_seconds(self) -> float:
        return float(os.environ.get("TITAN_CACHE_SECONDS", "30"))

    @cached_property
    def broker(self) -> Broker:
        from titan_lib.core.serving.orders import open_broker

        return open_broker(self.store)

    @cached_property
    def catalog(self) -> Catalog:
        """Models, retirement markers and price tails, read through :meth:`cached`."""
        return Catalog(self.store, self.cached)

    @cached_property
    def execution(self) -> ExecutionService:
        from titan_lib.core.model_registry import retirement
        from titan_lib.core.serving.planning import plan_order

        catalog = self.catalog

        def plan(request: OrderRequest, current: Mapping[str, float]) -> TradePlan:
            model = catalog.model(request.model_id)
            tails = catalog.price_tails(model)
            return plan_order(model, tails, request, current, catalog.retirement)

        return ExecutionService(
            ledger=self.ledger,
            broker=self.broker,
            limits=self.limits,
            planner=plan,
            last_price=catalog.last_close,
            # read from the store on every order, never cached: retirement is immediate
            retirement_of=lambda model_id: retirement(model_id, self.store),
        )

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` cached under ``key`` for ``cache_seconds`` (and until invalidated)."""
        now = time.monotonic()
        self._check_generation(now)
        hit = self.cache.get(key)
        if hit is not None and hit[0] > now:
            return cast(T, hit[1])
        value = build()
        self.cache[key] = (now + self.cache_seconds, value)
        return value

    def invalidate(self) -> None:
        """Drop every warm cache of this process."""
        self.cache.clear()

    def _check_generation(self, now: float) -> None:
        if now - self._generation_checked < min(5.0, self.cache_seconds):
            return
        self._generation_checked = now
        found = self.store.read_versioned(CACHE_GENERATION_KEY)
        token = None if found is None else found[1]
        if token != self._generation:
            self._generation = token
            self.invalidate()


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The process-wide :class:`Runtime`."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime()
    return _runtime


def reset_runtime() -> None:
    """Forget every service and cache (the environment changed: tests, reconfiguration)."""
    global _runtime
    _runtime = None
