"""Publishing an event to a channel's subscribers.

Every pushed message is ``{"channel", "event", "data", "sent_at"}`` (see
lambdas/asyncapi.yaml). A subscriber whose connection is gone is removed with its
subscriptions; any other failure to deliver to one subscriber is counted and does not
stop the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from titan_lib.core.execution.ledger import utc_now_iso
from titan_lib.core.push.connections import ConnectionStore
from titan_lib.core.push.gateway import ConnectionGoneError, Sender
from titan_lib.exceptions import TitanError


@dataclass(frozen=True)
class Delivery:
    """How a publish went: messages sent, gone connections removed, other failures."""

    sent: int = 0
    gone: int = 0
    failed: int = 0


def push_message(channel: str | None, event: str, data: Any) -> bytes:
    """The bytes of one pushed message."""
    doc = {"channel": channel, "event": event, "data": data, "sent_at": utc_now_iso()}
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def publish(
    connections: ConnectionStore,
    sender: Sender | None,
    channel: str,
    event: str,
    data: Any,
    principal: str | None = None,
) -> Delivery:
    """Send ``event`` with ``data`` to every subscriber of ``channel``.

    Parameters
    ----------
    principal
        When given, only subscribers authenticated as this principal receive it (a fill
        goes to its order's owner only).
    """
    if sender is None:
        return Delivery()
    message = push_message(channel, event, data)
    sent = gone = failed = 0
    for subscriber in connections.subscribers(channel):
        if principal is not None and subscriber.principal != principal:
            continue
        try:
            sender.send(subscriber.connection_id, message)
            sent += 1
        except ConnectionGoneError:
            connections.remove_connection(subscriber.connection_id)
            gone += 1
        except TitanError:
            failed += 1
    return Delivery(sent=sent, gone=gone, failed=failed)
