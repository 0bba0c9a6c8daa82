"""Research jobs over HTTP: ``POST /jobs``, ``GET /jobs``, ``GET /jobs/{job_id}``.

Scope ``jobs:write``. ``POST /jobs`` validates the notebook, profile and parameters
against the notebook catalog (:mod:`titan_lib.core.jobs.catalog`) before anything is
stored or queued, and answers 202 with the job; the same ``Idempotency-Key`` returns the
same job (``Idempotent-Replayed: true``) and queues nothing again. A principal sees only
its own jobs (``admin`` sees any by id). Workers (``titan worker``) run them.
"""

from __future__ import annotations

import re
from typing import Any

from chalice import Blueprint, Response

from chalicelib.http import endpoint, ok, principal_of
from chalicelib.live import live, notify_job
from chalicelib.runtime import runtime
from chalicelib.validation import (
    IDENTIFIER,
    Field,
    idempotency_key,
    parse_body,
    text,
    validate,
)
from titan_lib.core.http_errors import BadRequestError, RouteNotFoundError
from titan_lib.core.jobs.lifecycle import submit_job
from titan_lib.core.jobs.models import JobRequest
from titan_lib.core.jobs.store import MAX_PAGE_SIZE, decode_cursor, encode_cursor

JOB_ID = re.compile(r"job_[0-9a-f]{24}")
DEFAULT_PAGE_SIZE = 20
MAX_PARAMETERS = 100
NOTEBOOK_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")
PROFILE_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")
CURSOR = re.compile(r"[A-Za-z0-9_\-]{1,512}")


def parameter_values(name: str, value: Any) -> dict[str, Any]:
    """Checker: an object of at most :data:`MAX_PARAMETERS` identifier-named values."""
    if not isinstance(value, dict) or len(value) > MAX_PARAMETERS:
        raise BadRequestError(
            f"field {name!r} must be an object of at most {MAX_PARAMETERS} parameters",
            {"field": name},
        )
    for key in value:
        if not IDENTIFIER.fullmatch(key):
            raise BadRequestError(
                f"field {name!r} has a parameter name {key[:60]!r} that is not an identifier",
                {"field": name},
            )
    return dict(value)


def _page_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise BadRequestError(
            f"limit must be an integer from 1 to {MAX_PAGE_SIZE}", {"parameter": "limit"}
        )
    return int(raw)


def jobs_blueprint(authorizer: Any) -> Blueprint:
    """The jobs routes, guarded by ``authorizer`` (the app's bearer-token authorizer)."""
    bp = Blueprint(__name__)

    @bp.route("/jobs", methods=["POST"], authorizer=authorizer)
    @endpoint(bp, ("jobs:write",))
    def submit() -> Response:
        request = bp.current_request
        key = idempotency_key(request.headers, required=False)
        body = validate(
            parse_body(request.raw_body),
            [
                Field("notebook", text(NOTEBOOK_NAME, 64)),
                Field("parameters", parameter_values, required=False),
                Field("profile", text(PROFILE_NAME, 64), required=False),
            ],
        )
        job_request = JobRequest(
            notebook=body["notebook"], parameters=body["parameters"] or {}, profile=body["profile"]
        )
        rt = runtime()
        services = live(rt)
        services.notebooks.check(job_request)
        job, created = submit_job(
            services.jobs, services.queue, principal_of(request).subject, key, job_request
        )
        if created:
            notify_job(rt, job)
        headers = {"Location": f"/jobs/{job.job_id}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return ok(job.public_dict(), 202, headers)

    @bp.route("/jobs", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, ("jobs:write",))
    def list_jobs() -> Response:
        request = bp.current_request
        query = dict(request.query_params or {})
        unknown = sorted(set(query) - {"limit", "cursor"})
        if unknown:
            raise BadRequestError(
                f"unknown query parameter(s) {', '.join(unknown)}; allowed: cursor, limit",
                {"parameters": unknown},
            )
        limit = _page_size(query.get("limit"))
        cursor = query.get("cursor")
        if cursor is not None and not CURSOR.fullmatch(cursor):
            raise BadRequestError("cursor is not one this API returned", {"parameter": "cursor"})
        after = None if cursor is None else decode_cursor(cursor)
        jobs = live(runtime()).jobs.list_jobs(principal_of(request).subject, limit + 1, after)
        page: dict[str, Any] = {"items": [j.public_dict() for j in jobs[:limit]]}
        if len(jobs) > limit:
            last = jobs[limit - 1]
            page["next_cursor"] = encode_cursor((last.created_at, last.job_id))
        return ok(page)

    @bp.route("/jobs/{job_id}", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, ("jobs:write",))
    def get_job(job_id: str) -> Response:
        if not JOB_ID.fullmatch(job_id):
            raise BadRequestError("job id must be job_ and 24 hex digits", {"job_id": job_id[:64]})
        job = live(runtime()).jobs.get_job(job_id)
        principal = principal_of(bp.current_request)
        if job is None or (job.principal != principal.subject and not principal.has("admin")):
            raise RouteNotFoundError(f"no job {job_id}", {"job_id": job_id})
        return ok(job.public_dict())

    return bp
