"""Every route of the Chalice app through chalice.test.Client, on two backends:
a local store + SQLite ledger, and S3 + DynamoDB on the moto server."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path

import jwt
import pytest
from fixtures.lambda_world import (
    LAMBDAS,
    SECRET,
    copy_store_to,
    lambda_env,
    load_app,
    token,
    world_store,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "aws"])
def api(request, tmp_path, monkeypatch):
    """(client, model ids, store URI, ledger) with the app configured for one backend."""
    from chalice.test import Client

    local, ids = world_store(tmp_path)
    if request.param == "sqlite":
        store, ledger_uri = str(local), str(tmp_path / "ledger.sqlite")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        store = f"s3://{bucket}/store"
        copy_store_to(local, store)
        from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger

        table = f"ledger-{uuid.uuid4().hex[:10]}"
        DynamoDBLedger.create_table(table)
        ledger_uri = f"dynamodb://{table}"
    for key, value in lambda_env(store, ledger_uri).items():
        monkeypatch.setenv(key, value)
    module = load_app()
    from chalicelib.runtime import reset_runtime, runtime

    reset_runtime()
    with Client(module.app, project_dir=str(LAMBDAS)) as client:
        yield client, ids, store, runtime
    reset_runtime()


def _auth(scopes: str = "signals:read orders:write admin", sub: str = "alice") -> dict:
    return {"Authorization": f"Bearer {token(scopes, sub=sub)}"}


def _json(response) -> dict:
    return json.loads(response.body)


def _assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.body
    body = _json(response)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def _post(client, path: str, body, headers: dict, key: str | None = None):
    headers = {**headers, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.http.post(path, headers=headers, body=raw)


def test_health_is_public(api) -> None:
    client, *_ = api
    response = client.http.get("/health")
    assert response.status_code == 200 and _json(response)["status"] == "ok"


def test_models_and_signals(api) -> None:
    client, ids, store, _ = api
    from titan_lib.core.evaluate import evaluate
    from titan_lib.core.model_registry import get_model
    from titan_lib.core.prices import latest_prices
    from titan_lib.stores import open_store

    listed = _json(client.http.get("/models", headers=_auth("signals:read")))["models"]
    assert sorted(m["model_id"] for m in listed) == sorted(ids)
    signal = _json(client.http.get(f"/signals/{ids[0]}", headers=_auth("signals:read")))
    model = get_model(ids[0], store)
    tails = {s: latest_prices(open_store(store), s) for s in model.symbols}
    expected = evaluate(model, tails)
    assert signal["as_of"] == expected.as_of == tails[model.y].last_date
    assert signal["zscore"] == pytest.approx(expected.zscore)
    assert signal["target_position"] == expected.position and signal["action"] == expected.action
    assert {"regime", "gate"} <= set(signal)
    # The same prices posted to /signals/evaluate give the same signal.
    body = {
        "model_id": ids[0],
        "prices": {s: {"dates": list(t.dates), "close": list(t.close)} for s, t in tails.items()},
    }
    posted = _json(_post(client, "/signals/evaluate", body, _auth("signals:read")))
    assert posted == signal
    # Prices ending earlier give the signal as of that date (no look-ahead into the store).
    body["prices"] = {
        s: {"dates": list(t.dates[:-5]), "close": list(t.close[:-5])} for s, t in tails.items()
    }
    earlier = _json(_post(client, "/signals/evaluate", body, _auth("signals:read")))
    assert earlier["as_of"] == tails[model.y].dates[-6]
    _assert_error(client.http.get("/signals/" + "0" * 64, headers=_auth()), 404, "not_found")
    _assert_error(client.http.get("/signals/not-an-id", headers=_auth()), 400)


def test_orders_positions_pnl(api) -> None:
    client, ids, _, runtime = api
    order_body = {"model_id": ids[0], "notional": 10_000, "target_position": 1}
    created = _post(client, "/orders", order_body, _auth(), key="order-key-1")
    assert created.status_code == 201, created.body
    order = _json(created)
    assert order["status"] == "filled" and len(order["legs"]) == 2
    replay = _post(client, "/orders", order_body, _auth(), key="order-key-1")
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert _json(replay) == order
    _assert_error(
        _post(client, "/orders", {**order_body, "notional": 20_000}, _auth(), key="order-key-1"),
        409,
        "idempotency_conflict",
    )
    # An order from the signal: the target is the model's signal given the held position.
    from_signal = _json(
        _post(
            client, "/orders", {"model_id": ids[1], "notional": 5_000}, _auth(), key="order-key-2"
        )
    )
    assert from_signal["signal"]["model_id"] == ids[1]
    assert from_signal["target_position"] == from_signal["signal"]["target_position"]
    fetched = client.http.get(f"/orders/{order['order_id']}", headers=_auth())
    assert _json(fetched) == order
    _assert_error(
        client.http.get(
            f"/orders/{order['order_id']}", headers=_auth("orders:write", sub="mallory")
        ),
        404,
        "not_found",
    )
    positions = _json(client.http.get("/positions", headers=_auth()))
    fills = runtime().ledger.list_fills()
    sums: dict[tuple[str, str], float] = {}
    for fill in fills:
        for leg in fill.legs:
            key = (fill.model_id, leg.symbol)
            sums[key] = sums.get(key, 0.0) + leg.quantity
    assert {(p["model_id"], p["symbol"]): p["quantity"] for p in positions["positions"]} == (
        pytest.approx(sums)
    )
    assert ids[0] in positions["open_pairs"]
    pnl = _json(client.http.get("/pnl", headers=_auth()))
    for line in pnl["positions"]:
        assert line["pnl"] == pytest.approx(line["cash"] + line["quantity"] * line["last_price"])
    assert pnl["total_pnl"] == pytest.approx(sum(line["pnl"] for line in pnl["positions"]))
    # paper fills pay the slippage: the fresh position is marked slightly below cost
    ko = [line for line in pnl["positions"] if line["model_id"] == ids[0]]
    assert sum(line["pnl"] for line in ko) < 0
    _assert_error(
        _post(
            client, "/orders", {"model_id": "0" * 64, "notional": 1000}, _auth(), key="order-key-3"
        ),
        404,
    )


def test_kill_switch(api) -> None:
    client, ids, *_ = api
    body = {"model_id": ids[0], "notional": 10_000, "target_position": -1}
    _assert_error(_post(client, "/admin/kill-switch", {"on": True}, _auth("orders:write")), 403)
    on = _post(client, "/admin/kill-switch", {"on": True, "reason": "drill"}, _auth("admin"))
    assert on.status_code == 200 and _json(on)["on"] is True
    assert _json(client.http.get("/admin/kill-switch", headers=_auth("admin")))["reason"] == "drill"
    refused = _assert_error(
        _post(client, "/orders", body, _auth(), key="kill-key-1"), 422, "risk_rejected"
    )
    assert refused["details"]["rule"] == "kill_switch"
    _post(client, "/admin/kill-switch", {"on": False}, _auth("admin"))
    assert _post(client, "/orders", body, _auth(), key="kill-key-1").status_code == 201


def test_risk_rejection_names_the_rule_and_replays(api, monkeypatch) -> None:
    client, ids, *_ = api
    monkeypatch.setenv("TITAN_MAX_PAIR_NOTIONAL", "1000")
    from chalicelib.runtime import reset_runtime

    reset_runtime()
    body = {"model_id": ids[0], "notional": 10_000, "target_position": 1}
    first = _assert_error(_post(client, "/orders", body, _auth(), key="risk-key-1"), 422)
    assert first["details"]["rule"] == "max_pair_notional"
    again = _assert_error(_post(client, "/orders", body, _auth(), key="risk-key-1"), 422)
    assert again == first


def test_rate_limit_per_principal(api, monkeypatch) -> None:
    client, *_ = api
    monkeypatch.setenv("TITAN_RATE_LIMIT", "3")
    monkeypatch.setenv("TITAN_RATE_WINDOW_SECONDS", "60")
    from chalicelib.runtime import reset_runtime

    reset_runtime()
    headers = _auth("signals:read", sub="busy")
    window = int(time.time() // 60)
    statuses = [client.http.get("/models", headers=headers).status_code for _ in range(3)]
    limited = client.http.get("/models", headers=headers)
    if int(time.time() // 60) != window:  # crossed a window boundary: one more round
        statuses = [client.http.get("/models", headers=headers).status_code for _ in range(3)]
        limited = client.http.get("/models", headers=headers)
    assert statuses == [200, 200, 200]
    error = _assert_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert error["details"]["retry_after"] == int(limited.headers["Retry-After"])
    assert client.http.get("/models", headers=_auth("signals:read", sub="calm")).status_code == 200


def test_auth_attacks_get_401_and_missing_scopes_403(api, monkeypatch) -> None:
    client, ids, *_ = api
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    monkeypatch.setenv("TITAN_JWT_PUBLIC_KEY", public_pem)
    from chalicelib.runtime import reset_runtime

    reset_runtime()
    now = int(time.time())
    good = {
        "sub": "eve",
        "iss": "titan",
        "aud": "titan-api",
        "exp": now + 300,
        "scope": "signals:read",
    }
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert (
        client.http.get(
            "/models",
            headers={"Authorization": "Bearer " + jwt.encode(good, private_pem, algorithm="RS256")},
        ).status_code
        == 200
    )

    def b64(obj) -> str:
        import base64

        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    import hashlib
    import hmac as hmac_mod

    confused_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(good)}"
    confused_sig = hmac_mod.new(public_pem.encode(), confused_input.encode(), hashlib.sha256)
    import base64

    hs_valid = jwt.encode(good, SECRET, algorithm="HS256")
    head, _, sig = hs_valid.split(".")
    attacks = {
        "expired": jwt.encode({**good, "exp": now - 3600}, SECRET, algorithm="HS256"),
        "not yet valid": jwt.encode({**good, "nbf": now + 3600}, SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode({**good, "iss": "evil"}, SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode({**good, "aud": "other"}, SECRET, algorithm="HS256"),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(good)}.",
        "hs/rs confusion": confused_input
        + "."
        + base64.urlsafe_b64encode(confused_sig.digest()).rstrip(b"=").decode(),
        "tampered payload": f"{head}.{b64({**good, 'scope': 'admin'})}.{sig}",
        "wrong secret": jwt.encode(good, "w" * 40, algorithm="HS256"),
        "garbage": "not-a-token",
    }
    for name, bad in attacks.items():
        response = client.http.get("/models", headers={"Authorization": f"Bearer {bad}"})
        error = _assert_error(response, 401, "unauthorized")
        assert bad not in response.body.decode(), name
        assert error["message"], name
    assert client.http.get("/models").status_code == 401  # no Authorization header at all
    _assert_error(client.http.get("/positions", headers=_auth("signals:read")), 403, "forbidden")
    _assert_error(client.http.get(f"/signals/{ids[0]}", headers=_auth("orders:write")), 403)
    _assert_error(client.http.get("/admin/kill-switch", headers=_auth("orders:write")), 403)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ('{"model_id": "m", "notional": NaN}', "NaN"),
        ('{"model_id": "m", "notional": Infinity}', "Infinity"),
        ('{"model_id": "m", "notional": -Infinity}', "Infinity"),
        ('{"model_id": "m", "notional": 1e999}', "too large for a float"),
        ('{"model_id": "m", "notional": "100"}', "notional"),
        ('{"model_id": "m", "notional": -5}', "notional"),
        ('{"model_id": "m", "notional": 0}', "notional"),
        ('{"model_id": "m", "notional": 1e12}', "notional"),
        ('{"model_id": "m", "notional": 100, "target_position": 2}', "target_position"),
        ('{"model_id": "m", "notional": 100, "target_position": true}', "target_position"),
        ('{"model_id": "m", "notional": 100, "target_position": 1.0}', "target_position"),
        ('{"model_id": "m", "notional": 100, "leverage": 5}', "leverage"),
        ('{"model_id": "m", "notional": 100, "expected_prices": {"KO": 0}}', "expected_prices"),
        ('{"model_id": "m", "notional": 100, "notional": 200}', "repeats"),
        ('{"notional": 100}', "model_id"),
        ('{"model_id": 7, "notional": 100}', "model_id"),
        ("[1, 2]", "not an object"),
        ('{"model_id": "m",', "not JSON"),
        ("", "empty"),
    ],
)
def test_bad_order_bodies_are_400(api, raw: str, fragment: str) -> None:
    client, *_ = api
    error = _assert_error(_post(client, "/orders", raw, _auth(), key="bad-body-key"), 400)
    assert fragment in error["message"]


def test_bad_requests_never_500(api) -> None:
    client, ids, *_ = api
    body = {"model_id": ids[0], "notional": 100}
    _assert_error(_post(client, "/orders", body, _auth()), 400)  # no Idempotency-Key
    _assert_error(_post(client, "/orders", body, _auth(), key="short"), 400)
    _assert_error(_post(client, "/admin/kill-switch", {"on": "yes"}, _auth("admin")), 400)
    _assert_error(
        _post(
            client,
            "/signals/evaluate",
            {"model_id": ids[0], "prices": {"KO": {"dates": ["2022-01-03"], "close": [-1]}}},
            _auth(),
        ),
        400,
    )
    _assert_error(
        _post(
            client,
            "/signals/evaluate",
            {"model_id": ids[0], "prices": {"KO": {"dates": ["2022-01-03"], "close": [60.0]}}},
            _auth(),
        ),
        400,
    )  # PEP missing
    _assert_error(
        _post(
            client,
            "/signals/evaluate",
            {
                "model_id": ids[0],
                "prices": {
                    "KO": {"dates": ["2022-01-04", "2022-01-03"], "close": [1, 2]},
                    "PEP": {"dates": ["2022-01-04", "2022-01-03"], "close": [1, 2]},
                },
            },
            _auth(),
        ),
        400,
    )
    text = client.http.post(
        "/orders",
        headers={**_auth(), "Content-Type": "text/plain", "Idempotency-Key": "text-key-1"},
        body="hi",
    )
    _assert_error(text, 415, "unsupported_media_type")
    _assert_error(client.http.put("/models", headers=_auth()), 405, "method_not_allowed")
    _assert_error(client.http.get("/orders/" + "x" * 300, headers=_auth()), 400)


def test_logs_are_json_with_request_id_and_principal_and_no_token(api) -> None:
    client, *_ = api
    from chalicelib.logs import logger

    buffer = io.StringIO()
    logger().registered_handler.setStream(buffer)
    bearer = token("signals:read", sub="logged-user")
    client.http.get("/models", headers={"Authorization": f"Bearer {bearer}"})
    client.http.get("/models", headers={"Authorization": "Bearer " + bearer[:-3] + "abc"})
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    request_lines = [line for line in lines if line.get("message") == "request"]
    assert request_lines and request_lines[0]["principal"] == "logged-user"
    assert request_lines[0]["request_id"] and request_lines[0]["status"] == 200
    assert bearer not in buffer.getvalue() and SECRET not in buffer.getvalue()


def test_schedule_refreshes_the_snapshot_and_model_events_drop_warm_caches(
    api, monkeypatch
) -> None:
    client, ids, store, runtime = api
    from titan_lib.core.model_registry import retire
    from titan_lib.stores import open_store, read_json

    scheduled = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    # a health check that cannot run is reported; the snapshot is stored all the same
    monkeypatch.setenv("TITAN_BROKEN_MODEL_POLICY", "sell-everything")
    failed = client.lambda_.invoke("refresh_signals", scheduled).payload
    assert failed["signals"] == 2 and "TITAN_BROKEN_MODEL_POLICY" in failed["health"]["failed"]
    monkeypatch.delenv("TITAN_BROKEN_MODEL_POLICY")
    result = client.lambda_.invoke(
        "refresh_signals",
        client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        ),
    )
    # the health check runs first; the sample's 2022 prices are stale today: a warning
    assert result.payload == {
        "signals": 2,
        "errors": 0,
        "health": {"healthy": 0, "warning": 2, "broken": 0, "error": 0},
        "retired": [],
    }
    snapshot = read_json(open_store(store), "signals/snapshot/latest.json")
    assert sorted(s["model_id"] for s in snapshot["signals"]) == sorted(ids)
    before = _json(client.http.get("/models", headers=_auth()))["models"]
    assert len(before) == 2
    retire(ids[1], reason="test", store=store)
    still_cached = _json(client.http.get("/models", headers=_auth()))["models"]
    assert len(still_cached) == 2  # warm cache
    event = client.events.generate_sns_event(
        message=json.dumps({"event": "retired", "model_id": ids[1]}), subject="model"
    )
    assert client.lambda_.invoke("on_model_event", event).payload["invalidated"] is True
    runtime()._generation_checked = 0.0  # the API container checks the marker every 5 s
    after = _json(client.http.get("/models", headers=_auth()))["models"]
    assert [m["model_id"] for m in after] == [ids[0]]
    reconciled = client.lambda_.invoke(
        "reconcile_orders",
        client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        ),
    )
    assert reconciled.payload == {"reconciled": 0}
