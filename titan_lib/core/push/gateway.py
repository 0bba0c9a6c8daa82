"""Sending a message to one WebSocket connection.

In AWS the API Gateway management API does it (``post_to_connection``;
``GoneException`` / HTTP 410 when the client left). ``titan lambdas local`` serves the
same ``POST /@connections/{id}`` endpoint, so a worker in another process pushes to local
clients through the same code; in its own process it installs a direct sender
(:func:`use_local_sender`). boto3 is imported only when a management API sender is made.
"""

from __future__ import annotations

import os
from typing import Any, Protocol
from urllib.parse import urlparse

from titan_lib.exceptions import TitanError, UnavailableError

ENDPOINT_ENV = "TITAN_WS_ENDPOINT"
"""The management API endpoint, ``https://<api id>.execute-api.<region>.amazonaws.com/<stage>``
(or ``http://127.0.0.1:<port>`` for ``titan lambdas local``)."""


class ConnectionGoneError(TitanError):
    """The connection is closed: the client left or the gateway dropped it."""

    code = "connection_gone"


class Sender(Protocol):
    """Delivers one message to one connection."""

    def send(self, connection_id: str, data: bytes) -> None:
        """Deliver ``data``; raise :class:`ConnectionGoneError` when the connection is gone."""
        ...


class ManagementApiSender:
    """Posts to connections through the API Gateway management API.

    Parameters
    ----------
    endpoint
        The API's management endpoint. Calls are signed with the environment's AWS
        credentials; without credentials, a loopback endpoint (the local server) is
        called unsigned.
    client
        A boto3 ``apigatewaymanagementapi`` client; made for ``endpoint`` when omitted.
    """

    def __init__(self, endpoint: str, client: Any | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        if client is None:
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config

            session = boto3.session.Session()
            unsigned = session.get_credentials() is None and self._is_local()
            config = Config(
                signature_version=UNSIGNED if unsigned else None,
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=2,
                read_timeout=5,
            )
            client = session.client(
                "apigatewaymanagementapi", endpoint_url=self.endpoint, config=config
            )
        self.client = client

    def _is_local(self) -> bool:
        return urlparse(self.endpoint).hostname in ("127.0.0.1", "localhost", "::1")

    def send(self, connection_id: str, data: bytes) -> None:
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except Exception as exc:
            response = getattr(exc, "response", None) or {}
            code = str(response.get("Error", {}).get("Code", ""))
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "GoneException" or status == 410:
                raise ConnectionGoneError(
                    f"connection {connection_id} is gone", {"connection_id": connection_id}
                ) from None
            raise UnavailableError(
                f"could not push to connection {connection_id}: {code or type(exc).__name__}",
                {"connection_id": connection_id},
            ) from exc


_local_sender: Sender | None = None


def use_local_sender(sender: Sender | None) -> None:
    """Make ``sender`` this process's sender (the local server's own sockets), or stop."""
    global _local_sender
    _local_sender = sender


def local_sender() -> Sender | None:
    """The sender :func:`use_local_sender` installed, if any."""
    return _local_sender


def default_sender(endpoint: str | None = None) -> Sender | None:
    """This process's sender: the local one, else the management API at ``endpoint``
    (default ``$TITAN_WS_ENDPOINT``); ``None`` when neither exists (nothing is pushed)."""
    if _local_sender is not None:
        return _local_sender
    resolved = endpoint or os.environ.get(ENDPOINT_ENV)
    return ManagementApiSender(resolved) if resolved else None
