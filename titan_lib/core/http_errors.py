"""HTTP errors: status codes for :mod:`titan_lib.exceptions` and the one error body.

Every error response of the HTTP API has the body::

    {"error": {"code": "<machine code>", "message": "<what is wrong and where>",
               "details": {...}}}

:class:`HTTPError` subclasses carry their own status; other :class:`TitanError` classes,
among them the domain errors of execution (:mod:`titan_lib.core.execution.errors`), are
mapped by :func:`status_for` and :func:`headers_for`, the only place that maps them to HTTP.
Standard library only (the Lambda imports this module).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from titan_lib.core.execution.errors import OrderRefusedError, RateLimitedError
from titan_lib.exceptions import (
    ConflictError,
    DataValidationError,
    NotFoundError,
    ParameterError,
    StoreError,
    TitanError,
    UnavailableError,
)

BearerError = Literal["invalid_request", "invalid_token", "insufficient_scope"]
REALM = "titan"
_CHALLENGE_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def bearer_challenge(error: BearerError | None = None, description: str | None = None) -> str:
    """The ``WWW-Authenticate`` value of a refused bearer token (RFC 6750, section 3).

    ``Bearer realm="titan", error="invalid_token", error_description="..."``; the
    description keeps only the characters RFC 6750 allows (others become ``?``) and at
    most 200 of them, so no header can be broken by what a token contained.
    """
    params = [f'realm="{REALM}"']
    if error:
        params.append(f'error="{error}"')
    if error and description:
        params.append(f'error_description="{_CHALLENGE_UNSAFE.sub("?", description[:200])}"')
    return "Bearer " + ", ".join(params)


class HTTPError(TitanError):
    """A :class:`TitanError` that knows its HTTP status and extra response headers."""

    status: int = 500
    code = "internal_error"

    def headers(self) -> dict[str, str]:
        """Extra response headers (none by default)."""
        return {}


class BadRequestError(HTTPError, ParameterError):
    """The request is malformed: bad JSON, wrong types, unknown fields, out-of-range values."""

    status = 400
    code = "bad_request"


class UnauthorizedError(HTTPError):
    """No bearer token, or a token that fails verification.

    Parameters
    ----------
    bearer_error
        The RFC 6750 error code sent in ``WWW-Authenticate``; ``None`` when the request
        carried no token at all (RFC 6750, section 3.1: then no error code is sent).
    """

    status = 401
    code = "unauthorized"

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        bearer_error: BearerError | None = "invalid_token",
    ) -> None:
        super().__init__(message, details)
        self.bearer_error = bearer_error

    def headers(self) -> dict[str, str]:
        description = self.message if self.bearer_error else None
        return {"WWW-Authenticate": bearer_challenge(self.bearer_error, description)}


class ForbiddenError(HTTPError):
    """A valid token that lacks the scope the route needs."""

    status = 403
    code = "forbidden"


class RouteNotFoundError(HTTPError, NotFoundError):
    """No route, or no resource at this path."""

    status = 404
    code = "not_found"


class OrderFailedError(HTTPError):
    """The order failed (the broker refused it or never received it); nothing was traded."""

    status = 422
    code = "order_failed"


def status_for(exc: TitanError) -> int:
    """HTTP status of an error: its own for :class:`HTTPError`, else by class.

    ``ParameterError``/``DataValidationError`` -> 400, ``NotFoundError`` -> 404,
    ``ConflictError`` (an idempotency conflict among them) -> 409, ``OrderRefusedError``
    (a risk rule, a retired model, stale prices) -> 422, ``RateLimitedError`` -> 429,
    ``StoreError`` and ``UnavailableError`` -> 503, anything else -> 500.
    """
    if isinstance(exc, HTTPError):
        return exc.status
    if isinstance(exc, OrderRefusedError):
        return 422
    if isinstance(exc, RateLimitedError):
        return 429
    if isinstance(exc, (ParameterError, DataValidationError)):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, (StoreError, UnavailableError)):
        return 503
    return 500


def headers_for(exc: TitanError) -> dict[str, str]:
    """Extra response headers of an error (``Retry-After``, ``WWW-Authenticate``)."""
    if isinstance(exc, RateLimitedError):
        return {"Retry-After": str(exc.retry_after)}
    return exc.headers() if isinstance(exc, HTTPError) else {}


def error_body(exc: TitanError) -> dict[str, Any]:
    """The one error body: ``{"error": {"code", "message", "details"}}``."""
    return {"error": exc.to_dict()}


def internal_error_body(request_id: str | None = None) -> dict[str, Any]:
    """Body of an unexpected failure: no internals leak, the request id is given to quote."""
    details: dict[str, Any] = {"request_id": request_id} if request_id else {}
    return {
        "error": {
            "code": "internal_error",
            "message": "the server failed to handle this request; quote the request id",
            "details": details,
        }
    }
