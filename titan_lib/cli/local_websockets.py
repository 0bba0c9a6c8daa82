"""The WebSocket API of ``titan lambdas local``: ``ws://HOST:PORT/ws`` on the HTTP port.

A standard-library RFC 6455 server inside the local HTTP server. It plays API Gateway's
part: the upgrade of ``GET /ws?token=...`` runs the app's ``$connect`` handler (a refusal
answers the upgrade with the handler's status and error body), each text message runs the
``$default`` handler, a close runs ``$disconnect``. Handlers get API Gateway's event
shape. Messages to clients go through :class:`LocalWebsocketGateway`: directly in this
process (installed as the process's push sender), and from other processes (``titan
worker``) through ``POST /@connections/{id}``, the management API's call, answered 410
``GoneException`` for a connection that is not open.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import socket
import struct
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from titan_lib.core.push.gateway import ConnectionGoneError

WEBSOCKET_PATH = "/ws"
MANAGEMENT_PREFIX = "/@connections/"
MAX_MESSAGE_BYTES = 1_000_000
_ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CLOSE, _PING, _PONG, _CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class _ClosedError(Exception):
    """The peer closed the connection (or broke the protocol: ``code`` says how)."""

    def __init__(self, code: int = 1000) -> None:
        super().__init__(code)
        self.code = code


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key`` (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + _ACCEPT_GUID).encode()).digest()).decode()


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload


class _Peer:
    """One open client socket: frames are read by its handler thread, written under a lock."""

    def __init__(self, sock: socket.socket, reader: Any) -> None:
        self.sock = sock
        self.reader = reader
        self.lock = threading.Lock()

    def write(self, opcode: int, payload: bytes) -> None:
        with self.lock:
            self.sock.sendall(frame(opcode, payload))

    def _exactly(self, n: int) -> bytes:
        data = self.reader.read(n) if n else b""
        if len(data) != n:
            raise _ClosedError(1006)
        return bytes(data)

    def read_message(self) -> tuple[int, bytes]:
        """The next data message (fragments joined); answers pings; raises on close."""
        opcode_of_message, parts, size = None, [], 0
        while True:
            first, second = self._exactly(2)
            fin, opcode = first & 0x80, first & 0x0F
            if first & 0x70 or not second & 0x80:
                raise _ClosedError(1002)  # reserved bits set, or a client frame without a mask
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._exactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._exactly(8))[0]
            if opcode >= 0x8 and (length > 125 or not fin):
                raise _ClosedError(1002)
            size += length
            if size > MAX_MESSAGE_BYTES:
                raise _ClosedError(1009)
            mask = self._exactly(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._exactly(length)))
            if opcode == _CLOSE:
                raise _ClosedError(
                    struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000
                )
            if opcode == _PING:
                self.write(_PONG, payload)
                size -= length
                continue
            if opcode == _PONG:
                size -= length
                continue
            if opcode in (_TEXT, _BINARY):
                if opcode_of_message is not None:
                    raise _ClosedError(1002)
                opcode_of_message = opcode
            elif opcode != _CONTINUATION or opcode_of_message is None:
                raise _ClosedError(1002)
            parts.append(payload)
            if fin:
                return opcode_of_message, b"".join(parts)


class LocalWebsocketGateway:
    """Open connections of the local server and the app's WebSocket handlers.

    Parameters
    ----------
    app
        The chalice app (its ``websocket_handlers``).
    domain
        ``HOST:PORT`` as the events' ``domainName``.
    """

    def __init__(self, app: Any, domain: str) -> None:
        self.app = app
        self.domain = domain
        self._peers: dict[str, _Peer] = {}
        self._lock = threading.Lock()

    def _event(self, route: str, connection_id: str, **extra: Any) -> dict[str, Any]:
        event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
        return {
            "requestContext": {
                "routeKey": route,
                "eventType": event_type,
                "connectionId": connection_id,
                "domainName": self.domain,
                "stage": "local",
                "apiId": "local",
                "requestId": secrets.token_hex(8),
                "requestTimeEpoch": int(time.time() * 1000),
            },
            "isBase64Encoded": False,
            **extra,
        }

    def _invoke(self, route: str, event: dict[str, Any]) -> dict[str, Any]:
        handler = self.app.websocket_handlers.get(route)
        if handler is None:
            return {"statusCode": 200}
        result = handler.handler_function(event, None)
        return result if isinstance(result, dict) else {"statusCode": 200}

    def send(self, connection_id: str, data: bytes) -> None:
        """Send a text message to an open connection (the push sender of this process)."""
        with self._lock:
            peer = self._peers.get(connection_id)
        if peer is None:
            raise ConnectionGoneError(
                f"connection {connection_id} is gone", {"connection_id": connection_id}
            )
        try:
            peer.write(_TEXT, data)
        except OSError:
            raise ConnectionGoneError(
                f"connection {connection_id} is gone", {"connection_id": connection_id}
            ) from None

    def serve(self, handler: Any) -> bool:
        """Handle the request if it is the gateway's (an upgrade or a management call)."""
        path = urlsplit(handler.path).path
        if path.startswith(MANAGEMENT_PREFIX):
            self._manage(handler, path[len(MANAGEMENT_PREFIX) :])
            return True
        upgrade = handler.headers.get("Upgrade", "").lower() == "websocket"
        if path == WEBSOCKET_PATH and handler.command == "GET" and upgrade:
            handler.requestline = f"GET {WEBSOCKET_PATH} (upgrade)"  # never log the token
            self._upgrade(handler)
            return True
        return False

    def _reply(self, handler: Any, status: int, body: dict[str, Any], **headers: str) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(data)
        handler.close_connection = True

    def _manage(self, handler: Any, connection_id: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        data = handler.rfile.read(length) if length else b""
        with self._lock:
            peer = self._peers.get(connection_id)
        if peer is None:
            self._reply(handler, 410, {"message": "Gone"}, **{"x-amzn-ErrorType": "GoneException"})
            return
        if handler.command == "POST":
            try:
                self.send(connection_id, data)
            except ConnectionGoneError:
                self._reply(
                    handler, 410, {"message": "Gone"}, **{"x-amzn-ErrorType": "GoneException"}
                )
                return
        elif handler.command == "DELETE":
            peer.sock.shutdown(socket.SHUT_RDWR)
        self._reply(handler, 200, {"connectionId": connection_id})

    def _upgrade(self, handler: Any) -> None:
        key = handler.headers.get("Sec-WebSocket-Key", "")
        if handler.headers.get("Sec-WebSocket-Version") != "13" or len(key) != 24:
            self._reply(
                handler,
                400,
                {"error": {"code": "bad_request", "message": "not a WebSocket 13 upgrade",
                           "details": {}}},
                **{"Sec-WebSocket-Version": "13"},
            )  # fmt: skip
            return
        connection_id = base64.urlsafe_b64encode(secrets.token_bytes(12)).decode()
        query = {k: v[-1] for k, v in parse_qs(urlsplit(handler.path).query).items()}
        headers = {k: v for k, v in handler.headers.items()}
        answer = self._invoke(
            "$connect",
            self._event(
                "$connect", connection_id, queryStringParameters=query or None, headers=headers
            ),
        )
        status = int(answer.get("statusCode", 200))
        if not 200 <= status < 300:
            body = answer.get("body") or "{}"
            self._reply(handler, status, json.loads(body) if isinstance(body, str) else body)
            return
        handler.send_response(101, "Switching Protocols")
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept_key(key))
        handler.end_headers()
        handler.wfile.flush()
        peer = _Peer(handler.connection, handler.rfile)
        with self._lock:
            self._peers[connection_id] = peer
        handler.close_connection = True
        code = 1000
        try:
            while True:
                _, payload = peer.read_message()
                self._invoke(
                    "$default",
                    self._event("$default", connection_id, body=payload.decode("utf-8", "replace")),
                )
        except _ClosedError as closed:
            code = closed.code
        except OSError:
            code = 1006
        finally:
            with self._lock:
                self._peers.pop(connection_id, None)
            if code != 1006:
                with contextlib.suppress(OSError):
                    peer.write(_CLOSE, struct.pack("!H", 1000 if code == 1005 else code))
            self._invoke("$disconnect", self._event("$disconnect", connection_id))
