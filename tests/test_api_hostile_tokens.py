"""Hostile bearer tokens sent over real HTTP to the running app (`titan lambdas local`).

Every token class is refused with a 401 in the one error body and a
``WWW-Authenticate: Bearer`` challenge naming the error; the connection stays usable and
nothing reaches the ledger. Identity-provider key rotation is picked up by the running
server (no restart) from a real JWKS server, and the gateway responses of the packaged
template carry the same challenge.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fixtures.hostile_tokens import hostile_tokens
from fixtures.identity_provider import JwksServer, jwks_of, pem_private
from fixtures.lambda_world import SECRET, lambda_env, load_app, serve, token, world_store

from titan_lib.core.auth import AUTHORIZER_CACHE_SECONDS, MIN_TOKEN_LIFETIME_SECONDS

REPO = Path(__file__).resolve().parents[1]
CHALLENGE = 'Bearer realm="titan", error="invalid_token", error_description="'


class Live:
    """The running app, its identity provider and one persistent client connection."""

    def __init__(self, port: int, ids: list[str], runtime: Any, idp: JwksServer) -> None:
        self.port, self.ids, self.runtime, self.idp = port, ids, runtime, idp
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(
        self,
        method: str,
        path: str,
        authorization: str | bytes | None,
        body: dict | None = None,
        headers: dict | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """One request on the persistent connection: ``(status, headers, JSON body)``."""
        sent: dict[str, Any] = dict(headers or {})
        if authorization is not None:
            sent["Authorization"] = authorization
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        self.connection.request(method, path, body=data, headers=sent)
        response = self.connection.getresponse()
        raw = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[Live]:
    """The local server with HS256 and a JWKS URL (refetched at once on an unknown kid)."""
    tmp = tmp_path_factory.mktemp("hostile")
    store, ids = world_store(tmp)
    idp = JwksServer(jwks_of(_idp_key(1), "idp-1"))
    env = lambda_env(
        str(store),
        str(tmp / "ledger.sqlite"),
        TITAN_JWT_JWKS_URL=idp.url,
        TITAN_JWT_JWKS_MIN_REFRESH_SECONDS="0",
    )
    try:
        with serve(env) as url:
            from chalicelib.runtime import runtime

            live = Live(int(url.rsplit(":", 1)[1]), ids, runtime, idp)
            yield live
            live.connection.close()
    finally:
        idp.close()


_KEYS: dict[int, rsa.RSAPrivateKey] = {}


def _idp_key(generation: int) -> rsa.RSAPrivateKey:
    if generation not in _KEYS:
        _KEYS[generation] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _KEYS[generation]


def _rs256(generation: int, kid: str) -> str:
    claims = {
        "sub": "idp-user",
        "iss": "titan",
        "aud": "titan-api",
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
        "scope": "signals:read orders:write admin",
    }
    return jwt.encode(claims, pem_private(_idp_key(generation)), "RS256", headers={"kid": kid})


def _ledger_state(live: Live) -> tuple[int, int, Any]:
    ledger = live.runtime().ledger
    return len(ledger.list_orders()), len(ledger.list_fills()), ledger.kill_switch().to_dict()


def _assert_refused(live: Live, authorization: str | bytes, label: str) -> None:
    """POST /orders, POST /admin/kill-switch and GET /models all answer 401 properly."""
    key = f"hostile-{abs(hash(label)):x}"[:40]
    order = {"model_id": live.ids[0], "notional": 10_000, "target_position": 1}
    calls = [
        ("POST", "/orders", order, {"Idempotency-Key": key}),
        ("POST", "/admin/kill-switch", {"on": True, "reason": "hostile"}, {}),
        ("GET", "/models", None, {}),
    ]
    for method, path, body, headers in calls:
        status, sent_headers, doc = live.send(method, path, authorization, body, headers)
        where = f"{label}: {method} {path}"
        assert status == 401, where
        assert set(doc) == {"error"} and set(doc["error"]) == {"code", "message", "details"}
        assert doc["error"]["code"] == "unauthorized", where
        assert isinstance(doc["error"]["message"], str) and doc["error"]["message"], where
        assert isinstance(doc["error"]["details"], dict), where
        assert sent_headers["www-authenticate"].startswith(CHALLENGE), where
        assert sent_headers["content-type"] == "application/json", where
        if isinstance(authorization, str) and len(authorization) > 27:
            assert authorization[7:27] not in json.dumps(doc), f"{where}: the token is echoed"


def test_every_hostile_token_class_gets_a_401_and_writes_nothing(live: Live) -> None:
    before = _ledger_state(live)
    tokens = hostile_tokens(SECRET)
    assert len(tokens) >= 35
    for name, bad in tokens.items():
        _assert_refused(live, f"Bearer {bad}", name)
    others: dict[str, str | bytes] = {
        "empty bearer": "Bearer ",
        "basic scheme": "Basic dXNlcjpwYXNz",
        "unknown kid": "Bearer " + _rs256(1, "idp-404"),
        "known kid, another key": "Bearer " + _rs256(2, "idp-1"),
        "latin-1 byte": b"Bearer " + token().encode()[:-1] + b"\xe9",
        "utf-8 bytes": b"Bearer " + token().encode() + "é".encode(),
    }
    for name, bad in others.items():
        _assert_refused(live, bad, name)
    assert _ledger_state(live) == before
    # the same connection still serves a good request: nothing was dropped
    status, _, doc = live.send(
        "POST",
        "/orders",
        f"Bearer {token()}",
        {"model_id": live.ids[0], "notional": 10_000, "target_position": 1},
        {"Idempotency-Key": "after-the-attack-1"},
    )
    assert status == 201, doc
    assert _ledger_state(live)[0] == before[0] + 1


def test_no_token_gets_a_challenge_without_an_error_code(live: Live) -> None:
    status, headers, doc = live.send("GET", "/models", None)
    assert status == 401 and doc["error"]["code"] == "unauthorized"
    assert headers["www-authenticate"] == 'Bearer realm="titan"'


def test_non_ascii_authorization_on_an_unknown_route_is_answered(live: Live) -> None:
    with socket.create_connection(("127.0.0.1", live.port), timeout=30) as sock:
        sock.sendall(
            b"GET /no/such/route HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xe9\xff\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        response = http.client.HTTPResponse(sock)
        response.begin()
        doc = json.loads(response.read())
    assert response.status == 404 and doc["error"]["code"] == "not_found"


def test_a_token_too_large_to_read_is_answered_in_the_error_body(live: Live) -> None:
    """Beyond the server's 64 KiB header line the request cannot be read: 431, one body."""
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=60)
    connection.request("GET", "/models", headers={"Authorization": "Bearer " + "A" * 70_000})
    response = connection.getresponse()
    doc = json.loads(response.read())
    connection.close()
    assert response.status == 431
    assert set(doc["error"]) == {"code", "message", "details"}
    assert response.getheader("Content-Type") == "application/json"


def test_key_rotation_at_the_identity_provider_needs_no_restart(live: Live) -> None:
    status, _, _ = live.send("GET", "/models", "Bearer " + _rs256(1, "idp-1"))
    assert status == 200
    live.idp.document = jwks_of(_idp_key(3), "idp-3")
    hits = live.idp.hits
    status, _, doc = live.send("GET", "/models", "Bearer " + _rs256(3, "idp-3"))
    assert status == 200, doc
    assert live.idp.hits == hits + 1
    status, headers, doc = live.send("GET", "/models", "Bearer " + _rs256(1, "idp-1"))
    assert status == 401 and "kid" in doc["error"]["message"]
    assert headers["www-authenticate"].startswith(CHALLENGE)


def test_authorizer_cache_is_well_below_the_shortest_token() -> None:
    authorizer = load_app().jwt_auth
    assert authorizer.config.ttl_seconds == AUTHORIZER_CACHE_SECONDS
    assert AUTHORIZER_CACHE_SECONDS * 5 <= MIN_TOKEN_LIFETIME_SECONDS


def test_packaged_gateway_401_carries_the_bearer_challenge() -> None:
    from titan_lib.cli.lambdas import gateway_responses

    responses = gateway_responses()
    unauthorized = responses["UNAUTHORIZED"]
    assert unauthorized["statusCode"] == "401"
    value = unauthorized["responseParameters"]["gatewayresponse.header.WWW-Authenticate"]
    assert value.startswith("'" + CHALLENGE) and value.endswith("\"'")
    assert value.count("'") == 2  # a static value in single quotes, nothing inside
    body = unauthorized["responseTemplates"]["application/json"]
    assert '"code": "unauthorized"' in body
    others = {k: r for k, r in responses.items() if k != "UNAUTHORIZED"}
    assert all(
        "gatewayresponse.header.WWW-Authenticate" not in r["responseParameters"]
        for r in others.values()
    )
