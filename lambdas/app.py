"""TITAN signal and execution API (AWS Chalice).

Routes (JSON; every error is ``{"error": {"code", "message", "details"}}``):

- ``GET /health``                        public
- ``GET /models``, ``GET /signals/{id}``, ``POST /signals/evaluate``    scope signals:read
- ``POST /orders`` (``Idempotency-Key`` header), ``GET /orders/{id}``,
  ``GET /positions``, ``GET /pnl``                                    scope orders:write
- ``GET|POST /admin/kill-switch``                                     scope admin
- ``GET /me``                                    any scope: own profile, limits, usage
- ``GET /principals/{sub}``, ``PUT /principals/{sub}/limits``          scope admin
- ``POST /jobs``, ``GET /jobs``, ``GET /jobs/{id}`` (chalicelib.jobs_api)  scope jobs:write
- WebSocket ``$connect`` / ``$default`` / ``$disconnect`` and the 5-minute signal push
  (chalicelib.live_push): fills, job states and changed signals pushed to subscribers

Bearer tokens are verified by the built-in authorizer ``jwt_auth``; scopes are checked in
the views, so a missing scope is a 403 with the one error shape. Scheduled functions
check every served model's health after the close (retiring broken ones), refresh the
signal snapshot, and reconcile pending orders; an SNS handler drops the warm caches when a
model is published or retired. See lambdas/README.md.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

from chalice import AuthResponse, Chalice, Cron, Rate, Response
from chalice.app import Request
from chalicelib.http import conform_error, endpoint, ok, principal_of
from chalicelib.jobs_api import jobs_blueprint
from chalicelib.live import notify_fills
from chalicelib.live_push import live_push
from chalicelib.logs import logger
from chalicelib.read_api import read_api_routes
from chalicelib.runtime import CACHE_GENERATION_KEY, runtime
from chalicelib.validation import (
    IDENTIFIER,
    ORDER_ID,
    Field,
    boolean,
    choice,
    idempotency_key,
    number,
    parse_body,
    price_series,
    principal_limits_fields,
    symbol_prices,
    text,
    validate,
)

import titan_lib
from titan_lib.core.auth import AUTHORIZER_CACHE_SECONDS, SCOPES, TokenError, verify_token
from titan_lib.core.http_errors import (
    BadRequestError,
    OrderFailedError,
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


def _refuse(exc: UnauthorizedError) -> NoReturn:
    """End the authorizer with a 401 whose ``WWW-Authenticate`` names the error.

    API Gateway turns the exception message ``Unauthorized`` into a 401; its UNAUTHORIZED
    gateway response renders the one error shape and a ``WWW-Authenticate: Bearer``
    challenge (see the packaged template). The local gateway of ``chalice local`` and
    ``chalice.test`` needs its own exception type, which carries the body and the
    challenge with the reason the token was refused.
    """
    try:
        from chalice.local import NotAuthorizedError
    except ImportError:  # in Lambda: only chalice.app is packaged
        raise Exception("Unauthorized") from None
    headers = {
        "x-amzn-ErrorType": "UnauthorizedException",
        "Content-Type": "application/json",
        **exc.headers(),
    }
    raise NotAuthorizedError(headers, json.dumps(error_body(exc)).encode())


@app.authorizer(ttl_seconds=AUTHORIZER_CACHE_SECONDS)
def jwt_auth(auth_request: Any) -> AuthResponse:
    """Verify the bearer token; allow every route, passing the principal and its scopes.

    API Gateway reuses a decision for the same token for ``AUTHORIZER_CACHE_SECONDS``,
    well below the shortest token lifetime ``titan token issue`` mints (lambdas/README.md,
    "Tokens"). Whatever the token holds, the answer is the decision or a 401.
    """
    token = auth_request.token or ""
    if not token.strip():
        _refuse(UnauthorizedError("no bearer token was sent", bearer_error=None))
    try:
        principal = verify_token(token, runtime().auth)
    except TokenError as exc:
        _refuse(UnauthorizedError(exc.message, exc.details))
    except TitanError as exc:
        logger().error("token verification is misconfigured", error=exc.to_dict())
        _refuse(UnauthorizedError("the token could not be verified"))
    except Exception:
        logger().exception("token verification failed")
        _refuse(UnauthorizedError("the token could not be verified"))
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

app.register_blueprint(read_api_routes(jwt_auth))  # the read API, scope research:read
app.register_blueprint(jobs_blueprint(jwt_auth))  # research jobs, scope jobs:write
app.experimental_feature_flags.update(["WEBSOCKETS"])
app.register_blueprint(live_push)  # WebSocket connect/message/disconnect, signal pushes


@app.route("/health", methods=["GET"])
@endpoint(app)
def health() -> Response:
    # a namespace-package import (a stale editable install) has no __version__
    version = getattr(titan_lib, "__version__", "unknown")
    return ok({"status": "ok", "version": version, "time": datetime.now(UTC).isoformat()})


@app.route("/models", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("signals:read",))
def models() -> Response:
    from titan_lib.core.serving.documents import model_summary

    catalog = runtime().catalog
    served = catalog.served_models()
    return ok({"models": [model_summary(m, catalog.health(m.model_id)) for m in served]})


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
    from titan_lib.core.execution.errors import refusal_for
    from titan_lib.core.execution.models import OrderRequest

    request = _current()
    key = idempotency_key(request.headers, required=True)
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
    rt.catalog.model(body["model_id"])  # unknown model: 404 before anything is recorded
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
    if outcome.created:
        notify_fills(rt, [order])  # push a new fill to the owner's `fills` subscribers
    replayed = {} if outcome.created else {"Idempotent-Replayed": "true"}
    details = {"order_id": order.order_id}
    if order.status == "rejected":
        raise refusal_for(order.rule, order.reason or "refused", {**details, "rule": order.rule})
    if order.status == "failed":
        raise OrderFailedError(order.reason or "failed", details)
    if order.status == "pending":
        return ok(order.public_dict(), 202, replayed)
    return ok(order.public_dict(), 201 if outcome.created else 200, replayed)


@app.route("/orders/{order_id}", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("orders:write",))
def get_order(order_id: str) -> Response:
    if not ORDER_ID.fullmatch(order_id):
        raise BadRequestError("order id must be 1 to 128 characters of A-Z a-z 0-9 _")
    order = runtime().execution.get_order(order_id)
    principal = principal_of(_current())
    if order is None or (order.principal != principal.subject and not principal.has("admin")):
        raise RouteNotFoundError(f"no order {order_id}", {"order_id": order_id})
    return ok(order.public_dict())


@app.route("/positions", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("orders:write", "admin"))
def positions() -> Response:
    from titan_lib.core.serving.holdings import open_pairs

    held = runtime().ledger.positions()
    return ok({"positions": [p.to_dict() for p in held], "open_pairs": open_pairs(held)})


@app.route("/pnl", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("orders:write", "admin"))
def pnl() -> Response:
    from titan_lib.core.serving.marks import mark_to_market, total_pnl

    rt = runtime()
    marks = mark_to_market(rt.ledger.positions(), rt.catalog.last_close)
    return ok(
        {
            "positions": [m.to_dict() for m in marks],
            "total_pnl": total_pnl(marks),
            "as_of": datetime.now(UTC).isoformat(),
        }
    )


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


@app.route("/me", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, SCOPES)  # any scope: every principal may read its own profile
def me() -> Response:
    from titan_lib.core.serving.principals import principal_document

    rt = runtime()
    principal = principal_of(_current())
    return ok(principal_document(rt.ledger, principal.subject, rt.limits, time.time()))


def _subject(sub: str) -> str:
    """The principal of a ``/principals/{sub}`` path, validated.

    API Gateway passes path parameters decoded; the local gateway passes them as sent, so
    percent-escapes are decoded here (a literal ``%`` is never part of a principal).
    """
    from urllib.parse import unquote

    from titan_lib.core.execution.principals import SUBJECT

    sub = unquote(sub)
    if not SUBJECT.fullmatch(sub):
        raise BadRequestError(
            "a principal is 1 to 128 characters of A-Z a-z 0-9 _ . : @ -",
            {"principal": sub[:128]},
        )
    return sub


@app.route("/principals/{sub}", methods=["GET"], authorizer=jwt_auth)
@endpoint(app, ("admin",))
def get_principal(sub: str) -> Response:
    from titan_lib.core.serving.principals import principal_document

    rt = runtime()
    return ok(principal_document(rt.ledger, _subject(sub), rt.limits, time.time()))


@app.route("/principals/{sub}/limits", methods=["PUT"], authorizer=jwt_auth)
@endpoint(app, ("admin",))
def set_principal_limits(sub: str) -> Response:
    from titan_lib.core.execution.ledger import utc_now_iso
    from titan_lib.core.execution.principals import PrincipalLimits, PrincipalProfile
    from titan_lib.core.serving.principals import principal_document

    subject = _subject(sub)
    body = validate(parse_body(_current().raw_body), principal_limits_fields())
    preferences = body.pop("preferences")
    profile = PrincipalProfile(
        subject=subject,
        limits=PrincipalLimits(**body),
        preferences=preferences or {},
        updated_at=utc_now_iso(),
        updated_by=principal_of(_current()).subject,
    )
    rt = runtime()
    rt.ledger.set_principal_profile(profile)
    logger().warning("principal limits set", subject=subject)
    return ok(principal_document(rt.ledger, subject, rt.limits, time.time()))


# -- events --------------------------------------------------------------------------------


@app.schedule(Cron(30, 21, "?", "*", "MON-FRI", "*"))
def refresh_signals(event: Any) -> dict[str, Any]:
    """After the US close (21:30 UTC): check every served model's health, then store the
    signal snapshot.

    The health check (:func:`titan_lib.core.serving.monitoring.monitor_models`, the code
    of ``titan models monitor``) keeps one record per model, retires broken models with
    the reason and announces them; under ``TITAN_BROKEN_MODEL_POLICY=flatten`` it also
    places their closing orders. The snapshot then reflects the retirements. A health
    check that cannot run at all (a misconfigured threshold) is logged and reported; the
    snapshot is still stored.
    """
    from chalicelib.signals import refresh_snapshot

    from titan_lib.core.serving.monitoring import MonitorSettings, monitor_models

    rt = runtime()
    log = logger()
    health: dict[str, Any]
    try:
        settings = MonitorSettings.from_env()
        report = monitor_models(
            rt.store,
            rt.ledger,
            settings=settings,
            execution=rt.execution if settings.policy == "flatten" else None,
        )
        health = {"health": report.counts, "retired": report.retired}
        for check in report.checks:
            if check.state in ("broken", "error") or check.flatten is not None:
                log.warning("model health", model_health=check.to_dict())
    except TitanError as exc:
        log.error("model health check failed", error=exc.to_dict())
        health = {"health": {"failed": exc.message}, "retired": []}
    snapshot = refresh_snapshot(rt)
    log.info("signal snapshot", signals=len(snapshot["signals"]), errors=snapshot["errors"])
    return {"signals": len(snapshot["signals"]), "errors": len(snapshot["errors"]), **health}


@app.schedule(Rate(5, unit=Rate.MINUTES))
def reconcile_orders(event: Any) -> dict[str, Any]:
    """Settle pending orders left by interrupted requests (see the execution service)."""
    settled = runtime().execution.reconcile_pending()
    notify_fills(runtime(), settled)
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
