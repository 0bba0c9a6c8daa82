"""Live push over WebSockets: channels, connections and subscriptions, delivery.

Standard library only (boto3 is imported by the DynamoDB store and the management API
sender when they are made).
"""

from titan_lib.core.push.channels import Channel, parse_channel
from titan_lib.core.push.connection_stores import open_connections
from titan_lib.core.push.connections import (
    Connection,
    ConnectionStore,
    Subscriber,
)
from titan_lib.core.push.gateway import (
    ConnectionGoneError,
    ManagementApiSender,
    Sender,
    default_sender,
    use_local_sender,
)
from titan_lib.core.push.publisher import Delivery, publish, push_message

__all__ = [
    "Channel",
    "Connection",
    "ConnectionGoneError",
    "ConnectionStore",
    "Delivery",
    "ManagementApiSender",
    "Sender",
    "Subscriber",
    "default_sender",
    "open_connections",
    "parse_channel",
    "publish",
    "push_message",
    "use_local_sender",
]
