"""Opening the job store in the ledger named by a URI (SQLite file or DynamoDB table)."""

from __future__ import annotations

from titan_lib.core.jobs.store import JobStore


def open_job_store(uri: str | None = None) -> JobStore:
    """Open the job store in the ledger named by ``uri`` (default: the order ledger's)."""
    from titan_lib.core.execution.ledgers import ledger_uri

    resolved = ledger_uri(uri)
    if resolved.startswith("dynamodb://"):
        from titan_lib.core.jobs.store_dynamodb import DynamoDBJobStore

        return DynamoDBJobStore(resolved[len("dynamodb://") :])
    from titan_lib.core.jobs.store_sqlite import SQLiteJobStore

    return SQLiteJobStore(resolved.removeprefix("sqlite://"))
