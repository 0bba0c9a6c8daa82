"""Opening the connection store in the ledger named by a URI (SQLite file or DynamoDB)."""

from __future__ import annotations

from titan_lib.core.push.connections import ConnectionStore


def open_connections(uri: str | None = None) -> ConnectionStore:
    """Open the connection store in the ledger named by ``uri`` (default: the order ledger's)."""
    from titan_lib.core.execution.ledgers import ledger_uri

    resolved = ledger_uri(uri)
    if resolved.startswith("dynamodb://"):
        from titan_lib.core.push.connections_dynamodb import DynamoDBConnections

        return DynamoDBConnections(resolved[len("dynamodb://") :])
    from titan_lib.core.push.connections_sqlite import SQLiteConnections

    return SQLiteConnections(resolved.removeprefix("sqlite://"))
