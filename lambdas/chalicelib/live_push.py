"""Live push over WebSockets: connect with a token, subscribe to channels, receive events.

The token is verified at connect (query parameter ``token``: browsers cannot set headers
on a WebSocket) with the API's verifier and scopes; a refused token refuses the
connection (401). A client then sends::

    {"action": "subscribe",   "channels": ["signals:<model_id>", "fills", "jobs:<job_id>"]}
    {"action": "unsubscribe", "channels": [...]}

and receives ``{"channel", "event", "data", "sent_at"}`` messages: ``subscribed`` /
``unsubscribed`` replies, the current state of a job on subscribing to it, then ``job``,
``fill`` and ``signal`` events (lambdas/asyncapi.yaml). A bad message gets an error
message in the one error shape ``{"error": {"code", "message", "details"}}``; the
connection stays open. Connections and subscriptions live in the ledger store; the
gateway's ``GoneException`` removes a connection.

The handlers take the API Gateway WebSocket event as it arrives (``(event, context)``):
chalice registers a blueprint's WebSocket handlers unwrapped, and ``titan lambdas local``
calls them with the same events. :data:`live_push` also carries the 5-minute schedule
that pushes changed signals.
"""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint, Rate

from chalicelib.live import live, push_changed_signals
from chalicelib.logs import logger
from chalicelib.runtime import runtime
from chalicelib.validation import parse_body
from titan_lib.core.auth import TokenError, verify_token
from titan_lib.core.execution.ledger import utc_now_iso
from titan_lib.core.http_errors import (
    BadRequestError,
    ForbiddenError,
    RouteNotFoundError,
    UnauthorizedError,
    error_body,
    internal_error_body,
    status_for,
)
from titan_lib.core.push.channels import MAX_CHANNELS_PER_MESSAGE, parse_channel
from titan_lib.core.push.connections import Connection
from titan_lib.core.push.gateway import ConnectionGoneError
from titan_lib.core.push.publisher import push_message
from titan_lib.exceptions import NotFoundError, TitanError

live_push = Blueprint(__name__)
ACTIONS = ("subscribe", "unsubscribe")
OK = {"statusCode": 200}


def _context(event: dict[str, Any]) -> tuple[str, str | None]:
    """The connection id and the management endpoint the event came through."""
    context = event.get("requestContext") or {}
    domain, stage = context.get("domainName"), context.get("stage")
    endpoint = f"https://{domain}/{stage}" if domain and stage else None
    return str(context.get("connectionId") or ""), endpoint


def _refusal(exc: TitanError) -> dict[str, Any]:
    return {
        "statusCode": status_for(exc),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(error_body(exc)),
    }


@live_push.on_ws_connect()
def ws_connect(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Verify the ``token`` query parameter; record the connection or refuse it (401)."""
    connection_id, _ = _context(event)
    token = (event.get("queryStringParameters") or {}).get("token") or ""
    rt = runtime()
    try:
        if not token.strip():
            raise UnauthorizedError("no token was sent (query parameter token)")
        try:
            principal = verify_token(token, rt.auth)
        except TokenError as exc:
            raise UnauthorizedError(exc.message, exc.details) from None
        live(rt).connections.add_connection(
            Connection(connection_id, principal.subject, principal.scopes, utc_now_iso())
        )
    except TitanError as exc:
        if status_for(exc) >= 500:
            logger().error("websocket connect failed", error=exc.to_dict())
        return _refusal(exc)
    except Exception:
        logger().exception("websocket connect failed")
        return {"statusCode": 500, "body": json.dumps(internal_error_body())}
    return OK


def _channels(body: dict[str, Any]) -> list[str]:
    channels = body.get("channels")
    if (
        not isinstance(channels, list)
        or not 1 <= len(channels) <= MAX_CHANNELS_PER_MESSAGE
        or set(body) != {"action", "channels"}
    ):
        raise BadRequestError(
            f'a {body.get("action")} message is {{"action", "channels"}} with 1 to '
            f"{MAX_CHANNELS_PER_MESSAGE} channel names",
            {"field": "channels"},
        )
    return [parse_channel(c).name for c in dict.fromkeys(channels)]


def _subscribe(connection: Connection, names: list[str]) -> list[bytes]:
    """Check each channel's scope and ownership, subscribe; the current state of jobs."""
    rt = runtime()
    services = live(rt)
    snapshots: list[bytes] = []
    for name in names:
        channel = parse_channel(name)
        if channel.scope not in connection.scopes:
            raise ForbiddenError(
                f"channel {name} needs the scope {channel.scope}",
                {"channel": name, "required": [channel.scope]},
            )
        if channel.kind == "jobs":
            job = services.jobs.get_job(channel.key or "")
            owner = job is not None and (
                job.principal == connection.principal or "admin" in connection.scopes
            )
            if job is None or not owner:
                raise RouteNotFoundError(f"no job {channel.key}", {"channel": name})
            snapshots.append(push_message(name, "job", job.public_dict()))
        elif channel.kind == "signals":
            try:
                rt.catalog.model(channel.key or "")
            except NotFoundError:
                raise RouteNotFoundError(f"no model {channel.key}", {"channel": name}) from None
    services.connections.subscribe(connection, names)
    return snapshots


def _answer(connection_id: str, raw: Any) -> list[bytes]:
    """The messages answering one client message (replies, snapshots or an error)."""
    services = live(runtime())
    connection = services.connections.get_connection(connection_id)
    if connection is None:
        raise UnauthorizedError("this connection is not open; connect again with a token")
    body = parse_body(raw if isinstance(raw, (str, bytes)) else None)
    action = body.get("action")
    if action not in ACTIONS:
        raise BadRequestError(
            f"action must be one of {', '.join(ACTIONS)}, got {json.dumps(action)[:60]}",
            {"field": "action"},
        )
    names = _channels(body)
    if action == "subscribe":
        snapshots = _subscribe(connection, names)
        return [push_message(None, "subscribed", {"channels": names}), *snapshots]
    services.connections.unsubscribe(connection_id, names)
    return [push_message(None, "unsubscribed", {"channels": names})]


@live_push.on_ws_message()
def ws_message(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Handle a client message; answer through the gateway (an error keeps the connection)."""
    connection_id, endpoint = _context(event)
    try:
        replies = _answer(connection_id, event.get("body"))
    except TitanError as exc:
        if status_for(exc) >= 500:
            logger().error("websocket message failed", error=exc.to_dict())
        replies = [json.dumps(error_body(exc)).encode()]
    except Exception:
        logger().exception("websocket message failed")
        replies = [json.dumps(internal_error_body()).encode()]
    services = live(runtime())
    sender = services.sender(endpoint)
    if sender is None:
        logger().error("no WebSocket sender: set TITAN_WS_ENDPOINT")
        return OK
    try:
        for reply in replies:
            sender.send(connection_id, reply)
    except ConnectionGoneError:
        services.connections.remove_connection(connection_id)
    return OK


@live_push.on_ws_disconnect()
def ws_disconnect(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Forget the connection and its subscriptions."""
    connection_id, _ = _context(event)
    live(runtime()).connections.remove_connection(connection_id)
    return OK


@live_push.schedule(Rate(5, unit=Rate.MINUTES))
def push_signals(event: Any) -> dict[str, int]:
    """Every 5 minutes: push each served model's signal that changed since its last push."""
    outcome = push_changed_signals(runtime())
    logger().info("signal push", **outcome)
    return outcome
