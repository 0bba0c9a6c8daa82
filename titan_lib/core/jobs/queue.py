"""The job queue: at-least-once delivery of job ids, with leases and a dead-letter queue.

A received message is invisible to other receivers for ``visibility_seconds``; the
receiver deletes it when the job is done or extends it while it works. A receiver that
dies leaves it to reappear. A message received :data:`MAX_RECEIVES` times without being
deleted moves to the dead-letter queue. Exactly-once execution comes from the job store's
atomic claim, not from the queue (a message may be delivered twice).

Two implementations: :class:`~titan_lib.core.jobs.queue_sqlite.SQLiteQueue` (a local
file, needs no server: the default) and :class:`~titan_lib.core.jobs.queue_sqs.SQSQueue`
(Amazon SQS with a redrive policy), opened by URI with
:func:`~titan_lib.core.jobs.queues.open_queue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

MAX_RECEIVES = 5
"""Deliveries of one message before it moves to the dead-letter queue (above the job
attempts a worker allows, so a job is failed by a worker before its message dead-letters)."""


@dataclass(frozen=True)
class QueueMessage:
    """A received message: the job id, the receipt to delete or extend it, its deliveries."""

    job_id: str
    receipt: str
    receive_count: int


@runtime_checkable
class JobQueue(Protocol):
    """A queue of job ids."""

    uri: str

    def send(self, job_id: str) -> None:
        """Queue ``job_id``."""
        ...

    def receive(self, wait_seconds: float, visibility_seconds: float) -> QueueMessage | None:
        """The next visible message (hidden for ``visibility_seconds``), waiting up to
        ``wait_seconds`` for one; ``None`` when none came."""
        ...

    def extend(self, receipt: str, visibility_seconds: float) -> None:
        """Keep a received message hidden for ``visibility_seconds`` from now."""
        ...

    def delete(self, receipt: str) -> None:
        """Remove a received message (its job is done)."""
        ...
