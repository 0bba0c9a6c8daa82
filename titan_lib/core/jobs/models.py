"""Research jobs: a notebook run requested over the API and carried out by a worker.

A job moves ``queued -> running -> succeeded | failed``. ``running`` is a lease: the worker
that claimed the job renews ``lease_expires`` while the notebook runs; a job whose lease
expired is claimed again (``attempts`` counts the claims) or, after the last attempt,
failed. Timestamps are ISO-8601 UTC strings; ``lease_expires`` is seconds since the epoch.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed")
FINAL_JOB_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})


@dataclass(frozen=True)
class JobRequest:
    """What a client asked to run: a notebook by name, parameter values, a profile."""

    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "parameters": self.parameters, "profile": self.profile}

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the request (same body -> same fingerprint)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Job:
    """A research job as kept in the job store.

    Attributes
    ----------
    job_id
        ``job_<24 hex>``: derived from the principal and the Idempotency-Key
        (:func:`job_id_for`), random without a key.
    principal
        The token subject that asked for it; only it (or ``admin``) can read it.
    request
        The notebook, parameter values and profile.
    status
        ``queued``, ``running``, ``succeeded`` or ``failed``.
    enqueued
        Whether its queue message was sent (a replay of the same key re-sends otherwise).
    attempts
        How many times a worker claimed it.
    worker
        The worker holding (or that last held) it.
    lease_expires
        While ``running``: until when (epoch seconds) the worker's claim holds.
    run_id
        The run record of the notebook run (also for failed runs that left one).
    error
        Why it failed.
    """

    job_id: str
    principal: str
    request: JobRequest
    request_hash: str
    status: JobStatus
    created_at: str
    updated_at: str
    enqueued: bool = False
    attempts: int = 0
    worker: str | None = None
    lease_expires: float | None = None
    started_at: str | None = None
    ended_at: str | None = None
    run_id: str | None = None
    error: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES

    def with_changes(self, **changes: Any) -> Job:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        req = data["request"]
        lease = data.get("lease_expires")
        return cls(
            job_id=str(data["job_id"]),
            principal=str(data["principal"]),
            request=JobRequest(
                notebook=str(req["notebook"]),
                parameters=dict(req.get("parameters") or {}),
                profile=req.get("profile"),
            ),
            request_hash=str(data["request_hash"]),
            status=data["status"],
            created_at=str(data["created_at"]),
            updated_at=str(data["updated_at"]),
            enqueued=bool(data.get("enqueued", False)),
            attempts=int(data.get("attempts", 0)),
            worker=data.get("worker"),
            lease_expires=None if lease is None else float(lease),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            run_id=data.get("run_id"),
            error=data.get("error"),
        )

    def public_dict(self) -> dict[str, Any]:
        """The job as the API shows it (no request hash, lease or worker internals)."""
        return {
            "job_id": self.job_id,
            "notebook": self.request.notebook,
            "parameters": self.request.parameters,
            "profile": self.request.profile,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "attempts": self.attempts,
            "run_id": self.run_id,
            "error": self.error,
        }


def job_id_for(principal: str, idempotency_key: str | None) -> str:
    """The job id of a request: derived from the principal and the key, random without one."""
    if idempotency_key is None:
        return "job_" + secrets.token_hex(12)
    digest = hashlib.sha256(f"job\x00{principal}\x00{idempotency_key}".encode()).hexdigest()
    return "job_" + digest[:24]
