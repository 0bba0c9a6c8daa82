"""A job's life: submitted once per key, claimed by one worker at a time, finished once.

- :func:`submit_job` stores the job, then sends its queue message and marks it
  ``enqueued``. The same Idempotency-Key with the same body returns the stored job and
  sends nothing (unless the first attempt stopped before its message was sent); with a
  different body it is refused (:class:`IdempotencyConflictError`).
- :func:`claim_job` turns ``queued`` (or ``running`` whose lease expired: its worker was
  lost) into ``running`` for one worker, counting the attempt; past ``max_attempts`` the
  job is failed instead. Every step is a compare-and-set on ``(status, attempts)``.
- :func:`renew_lease` and :func:`finish_job` succeed only for the attempt that holds the
  job, so a worker that lost its lease can no longer change it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from titan_lib.core.execution.errors import IdempotencyConflictError
from titan_lib.core.execution.ledger import utc_now_iso
from titan_lib.core.jobs.models import Job, JobRequest, job_id_for
from titan_lib.core.jobs.queue import JobQueue
from titan_lib.core.jobs.store import JobStore

JobListener = Callable[[Job], None]
"""Called with the job after each state change (pushes it to subscribers)."""

ClaimOutcome = Literal["claimed", "done", "busy", "exhausted", "missing"]


@dataclass(frozen=True)
class Claim:
    """What :func:`claim_job` found: ``claimed`` (``job`` is now this worker's),
    ``done`` (already final), ``busy`` (another worker's lease holds), ``exhausted``
    (failed after its last attempt: ``job`` is the failed job) or ``missing``."""

    outcome: ClaimOutcome
    job: Job | None


def submit_job(
    jobs: JobStore,
    queue: JobQueue,
    principal: str,
    idempotency_key: str | None,
    request: JobRequest,
) -> tuple[Job, bool]:
    """Store and queue a job. Return ``(job, created)``.

    Raises
    ------
    IdempotencyConflictError
        The key was used by this principal for a different request.
    """
    now = utc_now_iso()
    candidate = Job(
        job_id=job_id_for(principal, idempotency_key),
        principal=principal,
        request=request,
        request_hash=request.fingerprint(),
        status="queued",
        created_at=now,
        updated_at=now,
    )
    job, created = jobs.create_job(candidate)
    if not created and job.request_hash != candidate.request_hash:
        raise IdempotencyConflictError(
            "this Idempotency-Key was used for a different job request",
            {"job_id": job.job_id},
        )
    if job.enqueued:
        return job, created
    queue.send(job.job_id)
    marked = job.with_changes(enqueued=True)
    if jobs.replace_job(marked, job.status, job.attempts):
        job = marked
    else:  # a worker claimed it already: it was queued, the stored job says more
        job = jobs.get_job(job.job_id) or job
    return job, created


def claim_job(
    jobs: JobStore, job_id: str, worker: str, now: float, lease_seconds: float, max_attempts: int
) -> Claim:
    """Take ``job_id`` for ``worker`` until ``now + lease_seconds`` (see the module)."""
    job = jobs.get_job(job_id)
    if job is None:
        return Claim("missing", None)
    if job.is_final:
        return Claim("done", job)
    if job.status == "running" and (job.lease_expires or 0.0) >= now:
        return Claim("busy", job)
    stamp = utc_now_iso(now)
    if job.attempts >= max_attempts:
        failed = job.with_changes(
            status="failed",
            updated_at=stamp,
            ended_at=stamp,
            lease_expires=None,
            error=f"the job's worker was lost {job.attempts} time(s); no attempt is left",
        )
        if jobs.replace_job(failed, job.status, job.attempts):
            return Claim("exhausted", failed)
        return claim_job(jobs, job_id, worker, now, lease_seconds, max_attempts)
    running = job.with_changes(
        status="running",
        attempts=job.attempts + 1,
        worker=worker,
        lease_expires=now + lease_seconds,
        started_at=stamp,
        updated_at=stamp,
        enqueued=True,
    )
    if jobs.replace_job(running, job.status, job.attempts):
        return Claim("claimed", running)
    return Claim("busy", jobs.get_job(job_id))


def renew_lease(jobs: JobStore, job: Job, now: float, lease_seconds: float) -> Job | None:
    """Extend the lease of a job this worker holds; ``None`` when it no longer holds it."""
    renewed = job.with_changes(lease_expires=now + lease_seconds)
    return renewed if jobs.replace_job(renewed, "running", job.attempts) else None


def finish_job(
    jobs: JobStore,
    job: Job,
    succeeded: bool,
    run_id: str | None,
    error: str | None,
) -> Job | None:
    """Record the outcome of the attempt ``job`` holds; ``None`` when it lost the job."""
    stamp = utc_now_iso()
    done = job.with_changes(
        status="succeeded" if succeeded else "failed",
        run_id=run_id,
        error=error,
        ended_at=stamp,
        updated_at=stamp,
        lease_expires=None,
    )
    return done if jobs.replace_job(done, "running", job.attempts) else None
