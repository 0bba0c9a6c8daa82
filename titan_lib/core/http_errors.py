"""HTTP errors: status codes for :mod:`titan_lib.exceptions` and the one error body.

Every error response of the HTTP API has the body::

    {"error": {"code": "<machine code>", "message": "<what is wrong and where>",
               "details": {...}}}

:class:`HTTPError` subclasses carry their own status; other :class:`TitanError` classes are
mapped by :func:`status_for`. Standard library only (the Lambda imports this module).
"""

from __future__ import annotations

from typing import Any

from titan_lib.exceptions import (
    ConflictError,
    DataValidationError,
    NotFoundError,
    ParameterError,
    StoreError,
    TitanError,
)


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
    """No bearer token, or a token that fails verification."""

    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="titan"'}


class ForbiddenError(HTTPError):
    """A valid token that lacks the scope the route needs."""

    status = 403
    code = "forbidden"


class RouteNotFoundError(HTTPError, NotFoundError):
    """No route, or no resource at this path."""

    status = 404
    code = "not_found"


class IdempotencyConflictError(HTTPError, ConflictError):
    """The Idempotency-Key was used before with a different request body."""

    status = 409
    code = "idempotency_conflict"


class RiskRejectedError(HTTPError):
    """A risk rule refused the order; ``details["rule"]`` names the rule."""

    status = 422
    code = "risk_rejected"


class OrderFailedError(HTTPError):
    """The order failed (the broker refused it or never received it); nothing was traded."""

    status = 422
    code = "order_failed"


class RateLimitedError(HTTPError):
    """The principal exceeded its request quota for the current window.

    Parameters
    ----------
    retry_after
        Whole seconds until the window resets (sent as ``Retry-After``).
    """

    status = 429
    code = "rate_limited"

    def __init__(
        self, message: str, retry_after: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, {**(details or {}), "retry_after": retry_after})
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class BrokerUnavailableError(HTTPError):
    """The broker timed out or failed; the order stays pending and is reconciled."""

    status = 502
    code = "broker_unavailable"


class ServiceUnavailableError(HTTPError):
    """A backing service (store, ledger) is unreachable."""

    status = 503
    code = "service_unavailable"


def status_for(exc: TitanError) -> int:
    """HTTP status of an error: its own for :class:`HTTPError`, else by class.

    ``ParameterError``/``DataValidationError`` -> 400, ``NotFoundError`` -> 404,
    ``ConflictError`` -> 409, ``StoreError`` -> 503, anything else -> 500.
    """
    if isinstance(exc, HTTPError):
        return exc.status
    if isinstance(exc, (ParameterError, DataValidationError)):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, StoreError):
        return 503
    return 500


def headers_for(exc: TitanError) -> dict[str, str]:
    """Extra response headers of an error (``Retry-After``, ``WWW-Authenticate``)."""
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
