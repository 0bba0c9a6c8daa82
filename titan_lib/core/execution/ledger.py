"""The order ledger interface: orders, fills, positions, pair locks, rate limits, switches.

Two implementations share this interface and one test suite:
:class:`~titan_lib.core.execution.ledger_sqlite.SQLiteLedger` (a local file, the default)
and :class:`~titan_lib.core.execution.ledger_dynamodb.DynamoDBLedger` (a DynamoDB table),
opened by URI with :func:`~titan_lib.core.execution.ledgers.open_ledger`. Every
state change is a conditional write, so concurrent writers cannot both win:

- :meth:`Ledger.claim_order` creates the order only if its id is free. The id is derived
  from the principal and the Idempotency-Key (:func:`order_id_for`), so one key is one
  order whatever the retries.
- :meth:`Ledger.record_fill` writes the fill, adds the legs to the positions and marks the
  order filled in one transaction, only while the order is pending and has no fill.
- :meth:`Ledger.acquire_pair` is a leased lock per pair: orders on one pair are
  serialised, so each order's legs are computed against a settled position.
- :meth:`Ledger.reserve_usage` checks a principal's limits against its usage and writes
  the new usage in one atomic step, so one principal's concurrent orders (on any pairs)
  cannot together exceed its limits.

Principals' profiles (limits and preferences) are stored here too
(:mod:`titan_lib.core.execution.principals`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from titan_lib.core.execution.models import Fill, KillSwitch, Order, OrderStatus, Position

if TYPE_CHECKING:
    from titan_lib.core.execution.principals import (
        PrincipalLimits,
        PrincipalOrder,
        PrincipalProfile,
        PrincipalUsage,
        Refusal,
    )
    from titan_lib.core.execution.sliding_window import Admission


@runtime_checkable
class Ledger(Protocol):
    """Durable state of execution, with conditional (compare-and-set) writes."""

    uri: str

    def claim_order(self, order: Order) -> tuple[Order, bool]:
        """Create ``order`` if its id is free. Return ``(stored order, created)``."""
        ...

    def get_order(self, order_id: str) -> Order | None:
        """The order with this id, or ``None``."""
        ...

    def list_orders(self, status: OrderStatus | None = None) -> list[Order]:
        """All orders (optionally of one status), oldest first."""
        ...

    def update_order(self, order: Order) -> Order:
        """Replace a *pending* order with ``order`` (new status, legs, reason).

        Raises :class:`~titan_lib.exceptions.ConflictError` when the stored order is no
        longer pending (another writer finalised it).
        """
        ...

    def record_fill(self, fill: Fill) -> Order:
        """Atomically store ``fill``, add its legs to the positions and mark its order filled.

        Idempotent: when the fill is already stored, nothing changes and the stored order
        is returned. Raises ``ConflictError`` when the order is final without this fill.
        """
        ...

    def list_fills(self) -> list[Fill]:
        """All fills, oldest first."""
        ...

    def positions(self) -> list[Position]:
        """Positions per (model, symbol), including flat ones, sorted."""
        ...

    def acquire_pair(
        self, model_id: str, order_id: str, now: float, lease_seconds: float
    ) -> str | None:
        """Take the pair's lock for ``order_id``; ``None`` when taken (or already held).

        The lock is granted when it is free, already held by ``order_id``, or its lease
        expired before ``now`` (seconds since the epoch). Otherwise the holder's order id
        is returned and nothing changes.
        """
        ...

    def release_pair(self, model_id: str, order_id: str) -> None:
        """Release the pair's lock if ``order_id`` still holds it."""
        ...

    def pair_holder(self, model_id: str) -> tuple[str, float] | None:
        """``(holder order id, lease expiry)`` of the pair's lock, or ``None`` when free."""
        ...

    def admit_request(
        self, principal: str, now: float, limit: int, window_seconds: float
    ) -> Admission:
        """Admit one request of ``principal`` at ``now`` if its sliding window has room.

        Applies :func:`~titan_lib.core.execution.sliding_window.admit` to the stored admission
        times atomically; writes only when the request is admitted.
        """
        ...

    def kill_switch(self) -> KillSwitch:
        """The kill switch state (off when never set)."""
        ...

    def set_kill_switch(self, state: KillSwitch) -> None:
        """Store the kill switch state."""
        ...

    def principal_profile(self, subject: str) -> PrincipalProfile | None:
        """The principal's stored profile, or ``None`` (no limits of its own)."""
        ...

    def set_principal_profile(self, profile: PrincipalProfile) -> None:
        """Store (replace) the principal's profile."""
        ...

    def list_principals(self) -> list[PrincipalProfile]:
        """Every stored profile, sorted by principal."""
        ...

    def principal_usage(self, subject: str) -> PrincipalUsage:
        """The principal's stored usage (empty before its first order)."""
        ...

    def reserve_usage(
        self, subject: str, limits: PrincipalLimits, order: PrincipalOrder, day: str
    ) -> tuple[PrincipalUsage, Refusal | None]:
        """Apply :func:`~titan_lib.core.execution.principals.apply_order` atomically.

        Reads the usage, runs the rules and writes the new usage only when nothing
        refuses, as one step no concurrent call of the same principal can interleave.
        Returns the usage after the call and the refusal, if any.
        """
        ...


def order_id_for(principal: str, idempotency_key: str) -> tuple[str, str]:
    """``(order_id, client_order_id)`` derived from the principal and the Idempotency-Key.

    Both are deterministic: a retry (or a crashed attempt) of the same key maps to the
    same ledger record and the same broker-side client order id, which is what lets the
    broker de-duplicate submissions and reconciliation find them.
    """
    digest = hashlib.sha256(f"{principal}\x00{idempotency_key}".encode()).hexdigest()
    return f"ord_{digest[:24]}", f"titan-{digest[:24]}"


def fill_id_for(order_id: str) -> str:
    """The id of an order's (single) fill."""
    return "fill_" + order_id.removeprefix("ord_")


def utc_now_iso(epoch_seconds: float | None = None) -> str:
    """The current (or the given epoch) UTC time as ISO-8601 with microseconds."""
    moment = (
        datetime.now(UTC) if epoch_seconds is None else datetime.fromtimestamp(epoch_seconds, UTC)
    )
    return moment.isoformat(timespec="microseconds")
