"""Research jobs: requests to run a notebook, their store, their queue and the catalog of
notebooks they may run. Standard library only (boto3 is imported by the DynamoDB store and
the SQS queue when they are opened)."""

from titan_lib.core.jobs.catalog import NotebookCatalog, value_matches
from titan_lib.core.jobs.models import (
    FINAL_JOB_STATUSES,
    JOB_STATUSES,
    Job,
    JobRequest,
    JobStatus,
    job_id_for,
)
from titan_lib.core.jobs.queue import MAX_RECEIVES, JobQueue, QueueMessage
from titan_lib.core.jobs.queues import open_queue
from titan_lib.core.jobs.store import (
    MAX_PAGE_SIZE,
    JobStore,
    decode_cursor,
    encode_cursor,
)
from titan_lib.core.jobs.stores import open_job_store

__all__ = [
    "FINAL_JOB_STATUSES",
    "JOB_STATUSES",
    "MAX_PAGE_SIZE",
    "MAX_RECEIVES",
    "Job",
    "JobQueue",
    "JobRequest",
    "JobStatus",
    "JobStore",
    "NotebookCatalog",
    "QueueMessage",
    "decode_cursor",
    "encode_cursor",
    "job_id_for",
    "open_job_store",
    "open_queue",
    "value_matches",
]
