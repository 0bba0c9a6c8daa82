"""WebSocket connections and their channel subscriptions, kept in the ledger store.

A connection is recorded at connect time with its principal and scopes (the token was
verified then); ``subscribe`` adds channels. Publishing reads a channel's subscribers;
a connection the gateway reports gone is removed with its subscriptions.
:meth:`ConnectionStore.swap_mark` remembers the last fingerprint pushed under a name
(a signal's), so only changes are pushed.

Two implementations share this interface: SQLite tables in the ledger file and items in
the ledger's DynamoDB table, opened with
:func:`~titan_lib.core.push.connection_stores.open_connections`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Connection:
    """A live WebSocket connection: who opened it and with which scopes."""

    connection_id: str
    principal: str
    scopes: frozenset[str]
    connected_at: str


@dataclass(frozen=True)
class Subscriber:
    """A connection subscribed to a channel, with its principal."""

    connection_id: str
    principal: str


@runtime_checkable
class ConnectionStore(Protocol):
    """Connections, subscriptions and push marks."""

    uri: str

    def add_connection(self, connection: Connection) -> None:
        """Record a new connection."""
        ...

    def get_connection(self, connection_id: str) -> Connection | None:
        """The connection, or ``None`` when unknown (never connected, or removed)."""
        ...

    def remove_connection(self, connection_id: str) -> None:
        """Forget a connection and its subscriptions (idempotent)."""
        ...

    def subscribe(self, connection: Connection, channels: list[str]) -> None:
        """Subscribe the connection to ``channels`` (idempotent)."""
        ...

    def unsubscribe(self, connection_id: str, channels: list[str]) -> None:
        """Drop the connection's subscriptions to ``channels`` (idempotent)."""
        ...

    def channels_of(self, connection_id: str) -> list[str]:
        """The connection's channels, sorted."""
        ...

    def subscribers(self, channel: str) -> list[Subscriber]:
        """The connections subscribed to ``channel``."""
        ...

    def swap_mark(self, name: str, fingerprint: str) -> bool:
        """Store ``fingerprint`` under ``name``; whether it differs from the one stored."""
        ...
