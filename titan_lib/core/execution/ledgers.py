"""Opening the order ledger named by a URI: a SQLite file or a DynamoDB table.

Each implementation is imported only when it is opened (boto3 only for DynamoDB).
"""

from __future__ import annotations

import os

from titan_lib.core.execution.ledger import Ledger
from titan_lib.exceptions import ParameterError


def open_ledger(uri: str | None = None) -> Ledger:
    """Open the ledger named by ``uri`` (default ``$TITAN_LEDGER``).

    ``dynamodb://<table>`` opens a DynamoDB table (boto3, honours ``AWS_ENDPOINT_URL``);
    ``sqlite:///<path>`` or a plain path opens a SQLite file. Without a URI, the ledger
    is ``ledger.sqlite`` inside the local store folder (``$TITAN_STORE``).
    """
    resolved = ledger_uri(uri)
    if resolved.startswith("dynamodb://"):
        from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger

        return DynamoDBLedger(resolved[len("dynamodb://") :])
    from titan_lib.core.execution.ledger_sqlite import SQLiteLedger

    return SQLiteLedger(resolved.removeprefix("sqlite://"))


def ledger_uri(uri: str | None = None) -> str:
    """The ledger URI ``uri`` stands for: itself, ``$TITAN_LEDGER`` or the store's file."""
    return uri_beside_store(uri, "TITAN_LEDGER", "ledger.sqlite", "dynamodb://<table>")


def uri_beside_store(uri: str | None, variable: str, file_name: str, remote: str) -> str:
    """``uri``, else ``$variable``, else the SQLite file ``file_name`` in the local store.

    Raises
    ------
    ParameterError
        Neither is set and the store is on S3 (the message suggests ``remote``).
    """
    resolved = uri or os.environ.get(variable)
    if not resolved:
        from titan_lib.config import store_uri

        store = store_uri()
        if store.startswith("s3://"):
            raise ParameterError(
                f"{variable} is not set and the store is on S3; set {variable} to "
                f"{remote} or a SQLite path"
            )
        resolved = os.path.join(store, file_name)
    return resolved
