"""TITAN signal and execution API (AWS Chalice).

Routes (JSON; every error is ``{"error": {"code", "message", "details"}}``):

- ``GET /health``                        public
- ``GET /models``, ``GET /signals/{id}``, ``POST /signals/evaluate``    scope signals:read
- ``POST /orders`` (``Idempotency-Key`` header), ``GET /orders/{id}``,
  ``GET /positions``, ``GET /pnl``                                    scope orders:write
- ``GET|POST /admin/kill-switch``                                     scope admin

Bearer tokens are verified by the built-in authorizer ``jwt_auth``; scopes are checked in
the views, so a missing scope is a 403 with the one error shape. Scheduled functions
refresh the signal snapshot after the close and reconcile pending orders; an SNS handler
drops the warm caches when a model is published or retired. See lambdas/README.md.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

from chalice import AuthResponse, Chalice, Cron, Rate, Response
from chalice.app import Request
from chalicelib.http import conform_error, endpoint, ok, principal_of
from chalicelib.logs import logger
from chalicelib.runtime import CACHE_GENERATION_KEY, runtime
from chalicelib.validation import (
    IDEMPOTENCY_KEY,
    IDENTIFIER,
    ORDER_ID,
    Field,
    boolean,
    choice,
    number,
    parse_body,
    price_series,
    symbol_prices,
    text,
    validate,
)

import titan_lib
from titan_lib.core.auth import TokenError, verify_token
from titan_lib.core.http_errors import (
    BadRequestError,
    OrderFailedError,
    RiskRejectedError,
    RouteNotFoundError,
    UnauthorizedError,
    error_body,
)
from titan_lib.exceptions import TitanError

app = Chalice(app_name="titan")
MODEL_EVENTS_TOPIC = os.environ.get("TITAN_MODEL_EVENTS_TOPIC", "titan-model-events")


def _current() -> Request:
    """The request being handled (always set while a route runs)."""
    request = app.current_request
    if request is None:
        raise BadRequestError("no request is being handled")
    return request


# -- authentication -----------------------------------------------------------------------


def _refuse(exc: TitanError) -> None:
    """End the authorizer with a 401.

    API Gateway turns the exception message ``Unauthorized`` into a 401 (its gateway
    response renders the one error shape, see the packaged template). The local gateway
    of ``chalice local`` and ``chalice.test`` needs its own exception type for a 401.
    """
    try:
        from chalice.local import NotAuthorizedError
    except ImportError:  # in Lambda: only chalice.app is packaged
        raise Exception("Unauthorized") from None
    body = json.dumps(error_body(UnauthorizedError(exc.message))).encode()
    raise NotAuthorizedError(
        {"x-amzn-ErrorType": "UnauthorizedException", "Content-Type": "application/json"}, body
    )


@app.authorizer(ttl_seconds=300)
def jwt_auth(auth_request: Any) -> AuthResponse:
    """Verify the bearer token; allow every route, passing the principal and its scopes."""
    try:
        principal = verify_token(auth_request.token or "", runtime().auth)
    except TitanError as exc:
        if not isinstance(exc, TokenError):
            logger().error("token verification is misconfigured", error=exc.to_dict())
        _refuse(exc)
        raise  # unreachable: _refuse always raises
    return AuthResponse(
        routes=["*"],
        principal_id=principal.subject,
        context={"scopes": " ".join(sorted(principal.scopes))},
    )


@app.middleware("http")
def observe(event: Any, get_response: Any) -> Response:
    """One structured log line per request; chalice's own error bodies get the one shape."""
    started = time.perf_counter()
    context = getattr(event, "context", None) or {}
    lambda_context = getattr(event, "lambda_context", None)
    request_id = context.get("requestId") or getattr(lambda_context, "aws_request_id", None)
    principal = (context.get("authorizer") or {}).get("principalId")
    log = logger()
    log.append_keys(request_id=request_id, principal=principal)
    try:
        response = conform_error(get_response(event), request_id)
        if request_id:
            response.headers = {**response.headers, "X-Request-Id": str(request_id)}
        log.info(
            "request",
            method=getattr(event, "method", None),
            route=context.get("resourcePath"),
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000.0, 3),
        )
        return response
    finally:
        log.remove_keys(["request_id", "principal"])


# -- routes --------------------------------------------------------------------------------


@app.route("/health", methods=["GET"])
@endpoint(app)
def health() -> Response:
    # a namespace-package import (a stale editable install) has no __version__
    version = getattr(titan_lib, "__version__", "unknown")
    return ok({"status": "ok", "version": version, "time": datetime.now(UTC).isoformat()})


@app.route("/models", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("signals:read",))
def models() -> Response:
    from chalicelib.signals import model_summary, served_models

    return ok({"models": [model_summary(m) for m in served_models(runtime())]})


@app.route("/signals/{model_id}", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("signals:read",))
def signal(model_id: str) -> Response:
    from chalicelib.signals import current_signal

    return ok(current_signal(runtime(), model_id))


@app.route("/signals/evaluate", methods=["POST"], authorizer=jwt_auth)
@endpoint(app, ("signals:read",))
def evaluate_signal() -> Response:
    from chalicelib.signals import evaluate_given

    body = validate(
        parse_body(_current().raw_body),
        [
            Field("model_id", text(IDENTIFIER, 128)),
            Field("prices", price_series),
            Field("position", choice(-1, 0, 1), required=False),
        ],
    )
    return ok(evaluate_given(runtime(), body["model_id"], body["prices"], body["position"]))


@app.route("/orders", methods=["POST"], authorizer=jwt_auth)
@endpoint(app, ("orders:write",))
def place_order() -> Response:
    from chalicelib.signals import model

    from titan_lib.core.execution.models import OrderRequest

    request = _current()
    key = request.headers.get("idempotency-key")
    if key is None:
        raise BadRequestError(
            "the Idempotency-Key header is required", {"header": "Idempotency-Key"}
        )
    if not IDEMPOTENCY_KEY.match(key):
        raise BadRequestError(
            "Idempotency-Key must be 8 to 128 characters of A-Z a-z 0-9 _ . : -",
            {"header": "Idempotency-Key"},
        )
    body = validate(
        parse_body(request.raw_body),
        [
            Field("model_id", text(IDENTIFIER, 128)),
            Field("notional", number(0.0, 1e9, strict_low=True)),
            Field("target_position", choice(-1, 0, 1), required=False),
            Field("expected_prices", symbol_prices, required=False),
        ],
    )
    rt = runtime()
    model(rt, body["model_id"])  # unknown model: 404 before anything is recorded
    outcome = rt.execution.place_order(
        principal_of(request).subject,
        key,
        OrderRequest(
            model_id=body["model_id"],
            notional=body["notional"],
            target_position=body["target_position"],
            expected_prices=body["expected_prices"] or {},
        ),
    )
    order = outcome.order
    replayed = {} if outcome.created else {"Idempotent-Replayed": "true"}
    details = {"order_id": order.order_id}
    if order.status == "rejected":
        raise RiskRejectedError(order.reason or "refused", {**details, "rule": order.rule})
    if order.status == "failed":
        raise OrderFailedError(order.reason or "failed", details)
    if order.status == "pending":
        return ok(order.public_dict(), 202, replayed)
    return ok(order.public_dict(), 201 if outcome.created else 200, replayed)


@app.route("/orders/{order_id}", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("orders:write",))
def get_order(order_id: str) -> Response:
    if not ORDER_ID.match(order_id):
        raise BadRequestError("order id must be 1 to 128 characters of A-Z a-z 0-9 _")
    order = runtime().execution.get_order(order_id)
    principal = principal_of(_current())
    if order is None or (order.principal != principal.subject and not principal.has("admin")):
        raise RouteNotFoundError(f"no order {order_id}", {"order_id": order_id})
    return ok(order.public_dict())


@app.route("/positions", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("orders:write", "admin"))
def positions() -> Response:
    held = runtime().ledger.positions()
    open_pairs = sorted({p.model_id for p in held if abs(p.quantity) > 1e-9})
    return ok({"positions": [p.to_dict() for p in held], "open_pairs": open_pairs})


@app.route("/pnl", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("orders:write", "admin"))
def pnl() -> Response:
    from chalicelib.signals import last_close

    rt = runtime()
    lines, total = [], 0.0
    for p in rt.ledger.positions():
        price = last_close(rt, p.symbol)
        value = p.quantity * price
        lines.append(
            {**p.to_dict(), "last_price": price, "market_value": value, "pnl": p.cash + value}
        )
        total += p.cash + value
    return ok({"positions": lines, "total_pnl": total, "as_of": datetime.now(UTC).isoformat()})


@app.route("/admin/kill-switch", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("admin",))
def kill_switch_state() -> Response:
    return ok(runtime().ledger.kill_switch().to_dict())


@app.route("/admin/kill-switch", methods=["POST"], authorizer=jwt_auth)
@endpoint(app, ("admin",))
def set_kill_switch() -> Response:
    from titan_lib.core.execution.ledger import utc_now_iso
    from titan_lib.core.execution.models import KillSwitch

    body = validate(
        parse_body(_current().raw_body),
        [Field("on", boolean), Field("reason", text(None, 500), required=False)],
    )
    state = KillSwitch(
        on=body["on"],
        reason=body["reason"] or "",
        updated_by=principal_of(_current()).subject,
        updated_at=utc_now_iso(),
    )
    runtime().ledger.set_kill_switch(state)
    logger().warning("kill switch set", on=state.on)
    return ok(state.to_dict())


# -- events --------------------------------------------------------------------------------


@app.schedule(Cron(30, 21, "?", "*", "MON-FRI", "*"))
def refresh_signals(event: Any) -> dict[str, Any]:
    """After the US close (21:30 UTC): evaluate every served model, store the snapshot."""
    from chalicelib.signals import refresh_snapshot

    snapshot = refresh_snapshot(runtime())
    logger().info("signal snapshot", signals=len(snapshot["signals"]), errors=snapshot["errors"])
    return {"signals": len(snapshot["signals"]), "errors": len(snapshot["errors"])}


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile_orders(event: Any) -> dict[str, Any]:
    """Settle pending orders left by interrupted requests (see the execution service)."""
    settled = runtime().execution.reconcile_pending()
    if settled:
        logger().warning("reconciled orders", orders=[o.order_id for o in settled])
    return {"reconciled": len(settled)}


@app.on_sns_message(topic=MODEL_EVENTS_TOPIC)
def on_model_event(event: Any) -> dict[str, Any]:
    """A model was published or retired: bump the cache generation, refresh the snapshot.

    Message: ``{"event": "published" | "retired", "model_id": "<64 hex>"}``. The API runs
    in other containers, so the generation marker in the store is what tells them to drop
    their warm caches (they check it at most every 5 seconds).
    """
    from chalicelib.signals import refresh_snapshot

    try:
        message = json.loads(event.message)
    except ValueError:
        message = {"event": "unknown", "raw": str(event.message)[:200]}
    rt = runtime()
    rt.store.write_bytes(
        CACHE_GENERATION_KEY,
        json.dumps({"at": datetime.now(UTC).isoformat(), "cause": message}).encode(),
    )
    snapshot = refresh_snapshot(rt)
    logger().info("model event", model_event=message, signals=len(snapshot["signals"]))
    return {"invalidated": True, "signals": len(snapshot["signals"])}
