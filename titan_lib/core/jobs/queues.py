"""Opening the job queue named by a URI: a SQLite file or an SQS queue.

Each implementation is imported only when it is opened (boto3 only for SQS).
"""

from __future__ import annotations

from titan_lib.core.jobs.queue import JobQueue


def open_queue(uri: str | None = None) -> JobQueue:
    """Open the queue named by ``uri`` (default ``$TITAN_QUEUE``).

    ``sqs://<queue name>`` opens an SQS queue (boto3, honours ``AWS_ENDPOINT_URL``);
    ``sqlite:///<path>`` or a plain path opens a SQLite file. Without a URI, the queue is
    ``queue.sqlite`` inside the local store folder (``$TITAN_STORE``).
    """
    from titan_lib.core.execution.ledgers import uri_beside_store

    resolved = uri_beside_store(uri, "TITAN_QUEUE", "queue.sqlite", "sqs://<queue>")
    if resolved.startswith("sqs://"):
        from titan_lib.core.jobs.queue_sqs import SQSQueue

        return SQSQueue(resolved[len("sqs://") :])
    from titan_lib.core.jobs.queue_sqlite import SQLiteQueue

    return SQLiteQueue(resolved.removeprefix("sqlite://"))
