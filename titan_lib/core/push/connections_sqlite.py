"""WebSocket connections and subscriptions in the ledger's SQLite file."""

from __future__ import annotations

import os

from titan_lib.core.push.connections import Connection, Subscriber
from titan_lib.core.sqlite_tables import SQLiteTables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ws_connections (
    connection_id TEXT PRIMARY KEY, principal TEXT NOT NULL, scopes TEXT NOT NULL,
    connected_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ws_subscriptions (
    channel TEXT NOT NULL, connection_id TEXT NOT NULL, principal TEXT NOT NULL,
    PRIMARY KEY (channel, connection_id));
CREATE INDEX IF NOT EXISTS ws_subscriptions_by_connection ON ws_subscriptions (connection_id);
CREATE TABLE IF NOT EXISTS push_marks (name TEXT PRIMARY KEY, fingerprint TEXT NOT NULL)
"""


class SQLiteConnections:
    """Connection store in a SQLite file (the ledger's, by default)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.tables = SQLiteTables(path, _SCHEMA, "the connection store")
        self.uri = self.tables.uri

    def add_connection(self, connection: Connection) -> None:
        with self.tables.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO ws_connections VALUES (?, ?, ?, ?)",
                (
                    connection.connection_id,
                    connection.principal,
                    " ".join(sorted(connection.scopes)),
                    connection.connected_at,
                ),
            )

    def get_connection(self, connection_id: str) -> Connection | None:
        row = (
            self.tables.read()
            .execute("SELECT * FROM ws_connections WHERE connection_id = ?", (connection_id,))
            .fetchone()
        )
        if row is None:
            return None
        return Connection(row[0], row[1], frozenset(str(row[2]).split()), row[3])

    def remove_connection(self, connection_id: str) -> None:
        with self.tables.write() as conn:
            conn.execute("DELETE FROM ws_subscriptions WHERE connection_id = ?", (connection_id,))
            conn.execute("DELETE FROM ws_connections WHERE connection_id = ?", (connection_id,))

    def subscribe(self, connection: Connection, channels: list[str]) -> None:
        with self.tables.write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO ws_subscriptions VALUES (?, ?, ?)",
                [(c, connection.connection_id, connection.principal) for c in channels],
            )

    def unsubscribe(self, connection_id: str, channels: list[str]) -> None:
        with self.tables.write() as conn:
            conn.executemany(
                "DELETE FROM ws_subscriptions WHERE channel = ? AND connection_id = ?",
                [(c, connection_id) for c in channels],
            )

    def channels_of(self, connection_id: str) -> list[str]:
        rows = self.tables.read().execute(
            "SELECT channel FROM ws_subscriptions WHERE connection_id = ? ORDER BY channel",
            (connection_id,),
        )
        return [str(r[0]) for r in rows.fetchall()]

    def subscribers(self, channel: str) -> list[Subscriber]:
        rows = self.tables.read().execute(
            "SELECT connection_id, principal FROM ws_subscriptions WHERE channel = ?"
            " ORDER BY connection_id",
            (channel,),
        )
        return [Subscriber(str(r[0]), str(r[1])) for r in rows.fetchall()]

    def swap_mark(self, name: str, fingerprint: str) -> bool:
        with self.tables.write() as conn:
            row = conn.execute(
                "SELECT fingerprint FROM push_marks WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] == fingerprint:
                return False
            conn.execute("INSERT OR REPLACE INTO push_marks VALUES (?, ?)", (name, fingerprint))
        return True
