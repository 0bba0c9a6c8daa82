"""The job store interface, its page cursors, and opening it next to the order ledger.

Jobs live in the ledger store: the same SQLite file (tables ``jobs``) or the same
DynamoDB table (items ``JOB#<job_id>``) as the orders, named by the same URI
(:func:`titan_lib.core.execution.ledgers.ledger_uri`). Every state change is a
compare-and-set on ``(status, attempts)``, so two workers can never both claim a job
and a worker whose lease was taken over can no longer finish it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Protocol, runtime_checkable

from titan_lib.core.jobs.models import Job, JobStatus
from titan_lib.exceptions import ParameterError

MAX_PAGE_SIZE = 100
"""Most jobs one page lists."""

PageKey = tuple[str, str]
"""Where a page ends: ``(created_at, job_id)`` of its last job (pages go newest first)."""


@runtime_checkable
class JobStore(Protocol):
    """Durable research jobs with conditional writes."""

    uri: str

    def create_job(self, job: Job) -> tuple[Job, bool]:
        """Store ``job`` if its id is free. Return ``(stored job, created)``."""
        ...

    def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or ``None``."""
        ...

    def list_jobs(self, principal: str, limit: int, after: PageKey | None = None) -> list[Job]:
        """The principal's jobs, newest first, at most ``limit``, strictly after ``after``."""
        ...

    def replace_job(self, job: Job, status: JobStatus, attempts: int) -> bool:
        """Replace the stored job with ``job`` only while it has ``status`` and ``attempts``.

        Returns whether it was replaced (``False``: another writer changed it first).
        """
        ...


def encode_cursor(key: PageKey) -> str:
    """The opaque cursor of a page end."""
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> PageKey:
    """The page end of a cursor made by :func:`encode_cursor`.

    Raises
    ------
    ParameterError
        The cursor was not made by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise ParameterError("cursor is not one this API returned", {"field": "cursor"}) from None
    if not isinstance(created_at, str) or not isinstance(job_id, str):
        raise ParameterError("cursor is not one this API returned", {"field": "cursor"})
    return created_at, job_id
