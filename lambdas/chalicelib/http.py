"""Responses, the error shape, scopes and rate limiting around every view.

Every error body is ``{"error": {"code", "message", "details"}}``
(:func:`titan_lib.core.http_errors.error_body`); chalice's own error bodies (405, 415,
500) are rewritten into it by :func:`conform_error`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib.logs import logger
from chalicelib.runtime import runtime
from titan_lib.core.auth import Principal, Scope
from titan_lib.core.execution.throttle import enforce_rate_limit
from titan_lib.core.http_errors import (
    ForbiddenError,
    UnauthorizedError,
    error_body,
    headers_for,
    internal_error_body,
    status_for,
)
from titan_lib.exceptions import TitanError

JSON: dict[str, str | list[str]] = {"Content-Type": "application/json"}
_CHALICE_CODES = {
    "MethodNotAllowedError": "method_not_allowed",
    "UnsupportedMediaType": "unsupported_media_type",
    "BadRequest": "bad_request",
    "BadRequestError": "bad_request",
    "NotFoundError": "not_found",
    "InternalServerError": "internal_error",
}


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(body=body, status_code=status, headers={**JSON, **(headers or {})})


def error_response(exc: TitanError) -> Response:
    """The one-shape error response of a :class:`TitanError`."""
    return Response(
        body=error_body(exc), status_code=status_for(exc), headers={**JSON, **headers_for(exc)}
    )


def conform_error(response: Response, request_id: str | None) -> Response:
    """Rewrite a chalice-generated error body (``{"Code", "Message"}``) into the one shape."""
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        if response.status_code >= 500:
            response.body = internal_error_body(request_id)
        else:
            response.body = {
                "error": {
                    "code": _CHALICE_CODES.get(str(body["Code"]), "bad_request"),
                    "message": str(body.get("Message", "")),
                    "details": {},
                }
            }
        response.headers = {**response.headers, **JSON}
    return response


def principal_of(request: Any) -> Principal:
    """The caller, as established by the authorizer (context ``principalId`` and ``scopes``)."""
    context = (getattr(request, "context", None) or {}).get("authorizer") or {}
    subject = context.get("principalId")
    if not subject:
        raise UnauthorizedError("no authenticated principal on this request")
    return Principal(subject=str(subject), scopes=frozenset(str(context.get("scopes", "")).split()))


def endpoint(
    app: Any, scopes: tuple[Scope, ...] = ()
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Wrap a view: scope check (403), per-principal rate limit (429), errors to the shape.

    ``scopes`` lists the scopes that each grant access; empty means a public route.
    """

    def wrap(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def handler(*args: Any, **kwargs: Any) -> Response:
            request = app.current_request
            try:
                if scopes:
                    principal = principal_of(request)
                    if not any(principal.has(s) for s in scopes):
                        raise ForbiddenError(
                            f"this route needs the scope {' or '.join(scopes)}",
                            {"required": list(scopes)},
                        )
                    rt = runtime()
                    enforce_rate_limit(rt.ledger, principal.subject, rt.rate, time.time())
                return view(*args, **kwargs)
            except TitanError as exc:
                if status_for(exc) >= 500:
                    logger().error("request failed", error=exc.to_dict())
                return error_response(exc)
            except Exception:
                request_id = (getattr(request, "context", None) or {}).get("requestId")
                logger().exception("unhandled error")
                return Response(body=internal_error_body(request_id), status_code=500, headers=JSON)

        return handler

    return wrap
