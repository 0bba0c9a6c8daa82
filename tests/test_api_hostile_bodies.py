"""Hostile bodies and the money path over real HTTP (the local server of `titan lambdas
local`): every refusal is a 4xx in the one error shape and leaves the ledger as it was.

Body classes run against a local store and a SQLite ledger; the money-path cases (retired
models, stale prices) run against both the SQLite ledger and the DynamoDB ledger on the
moto server. The sliding-window rate limit is checked on the SQLite ledger.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
from fixtures.lambda_world import http_call, lambda_env, serve, token, world_store

REPO = Path(__file__).resolve().parents[1]
HEX_ID = "ab" * 32


SQLITE = pytest.mark.parametrize("app_url", ["sqlite"], indirect=True)
BOTH_LEDGERS = pytest.mark.parametrize("app_url", ["sqlite", "dynamodb"], indirect=True)


@pytest.fixture(scope="module")
def app_url(request, tmp_path_factory):
    """(base URL, model ids, store path, runtime, ledger kind) of the running app on the
    ledger named by the test's parameter (``sqlite`` or ``dynamodb``)."""
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    store, ids = world_store(tmp)
    if request.param == "sqlite":
        ledger = str(tmp / "ledger.sqlite")
    else:
        request.getfixturevalue("moto_endpoint")
        from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger

        table = f"hostile-{uuid.uuid4().hex[:10]}"
        DynamoDBLedger.create_table(table)
        ledger = f"dynamodb://{table}"
    with serve(lambda_env(str(store), ledger)) as url:
        from chalicelib.runtime import runtime

        yield url, ids, str(store), runtime, request.param


def _auth(sub: str = "mallory") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub=sub)}"}


def _ledger_state(runtime) -> tuple:
    ledger = runtime().ledger
    return (ledger.list_orders(), ledger.list_fills(), ledger.positions(), ledger.kill_switch())


def _assert_error(status: int, body, expected: int | set[int], code: str | None = None) -> dict:
    allowed = {expected} if isinstance(expected, int) else expected
    assert status in allowed, (status, body)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


DEEP = 100_000
HOSTILE_BODIES = {
    # Deeply nested JSON: past the parser's recursion limit, and past the depth limit.
    "nested past the parser": b'{"model_id": ' + b"[" * DEEP + b"]" * DEEP + b"}",
    "nested objects": b'{"model_id": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
    "nested in a known field": b'{"model_id": "x", "notional": ' + b"[" * 30 + b"]" * 30 + b"}",
    # Integers too large for a float (a 400-digit one; one past the int-string limit).
    "integer beyond float": b'{"model_id": "x", "notional": 1' + b"0" * 400 + b"}",
    "integer past str limit": b'{"model_id": "x", "notional": ' + b"9" * 5000 + b"}",
    "negative huge integer": b'{"model_id": "x", "notional": -1' + b"0" * 320 + b"}",
    "float literal overflow": b'{"model_id": "x", "notional": 1e400}',
    # NaN / Infinity literals.
    "NaN": b'{"model_id": "x", "notional": NaN}',
    "Infinity": b'{"model_id": "x", "notional": Infinity}',
    "-Infinity": b'{"model_id": "x", "notional": -Infinity}',
    "NaN nested": b'{"model_id": "x", "notional": 1, "expected_prices": {"KO": NaN}}',
    # Control characters and a trailing newline in ids and symbols.
    "id with trailing newline": b'{"model_id": "' + HEX_ID.encode() + b'\\n", "notional": 1}',
    "id with NUL": b'{"model_id": "ab\\u0000cd", "notional": 1}',
    "id with escape": b'{"model_id": "ab\\u001bcd", "notional": 1}',
    "id with lone surrogate": b'{"model_id": "ab\\ud800", "notional": 1}',
}


def _with_model(raw: bytes, model_id: str) -> bytes:
    return raw.replace(b'"x"', b'"' + model_id.encode() + b'"')


@SQLITE
def test_hostile_order_bodies_are_400_and_write_nothing(app_url) -> None:
    url, ids, _, runtime, _ = app_url
    before = _ledger_state(runtime)
    symbols = {
        "symbol with trailing newline": {"KO\n": 60.0},
        "symbol with tab": {"K\tO": 60.0},
        "symbol with DEL": {"KO\x7f": 60.0},
    }
    cases = {name: _with_model(raw, ids[0]) for name, raw in HOSTILE_BODIES.items()}
    for name, prices in symbols.items():
        body = {"model_id": ids[0], "notional": 1000, "expected_prices": prices}
        cases[name] = json.dumps(body).encode()
    for i, (name, raw) in enumerate(cases.items()):
        headers = {**_auth(), "Idempotency-Key": f"hostile-body-{i:04d}"}
        status, _, body = http_call(f"{url}/orders", "POST", raw=raw, headers=headers)
        error = _assert_error(status, body, 400, "bad_request")
        assert "Traceback" not in error["message"], name
    assert _ledger_state(runtime) == before


@SQLITE
def test_hostile_evaluate_and_kill_switch_bodies_are_400(app_url) -> None:
    url, ids, _, runtime, _ = app_url
    before = _ledger_state(runtime)
    series = '{"dates": ["2022-01-03"], "close": [60.0]}'
    evaluate = {
        **{name: _with_model(raw, ids[0]) for name, raw in HOSTILE_BODIES.items()},
        "symbol with trailing newline": (
            f'{{"model_id": "{ids[0]}", "prices": {{"KO\\n": {series}, "PEP": {series}}}}}'
        ).encode(),
        "date with trailing newline": (
            f'{{"model_id": "{ids[0]}", "prices": {{"KO": '
            '{"dates": ["2022-01-03\\n"], "close": [60.0]}}}'
        ).encode(),
        "close overflow": (
            f'{{"model_id": "{ids[0]}", "prices": {{"KO": '
            '{"dates": ["2022-01-03"], "close": [1' + "0" * 330 + "]}}}"
        ).encode(),
        "position huge": (
            f'{{"model_id": "{ids[0]}", "prices": {{}}, "position": 1{"0" * 400}}}'
        ).encode(),
    }
    for name, raw in evaluate.items():
        status, _, body = http_call(f"{url}/signals/evaluate", "POST", raw=raw, headers=_auth())
        _assert_error(status, body, 400, "bad_request")
        assert name
    switch = {
        "nested past the parser": b'{"on": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        "nested reason": b'{"on": true, "reason": ' + b"[" * 40 + b"]" * 40 + b"}",
        "huge on": b'{"on": 1' + b"0" * 400 + b"}",
        "on NaN": b'{"on": NaN}',
        "on Infinity": b'{"on": Infinity}',
        "reason with control characters": b'{"on": true, "reason": "drill\\u0007\\u0000"}',
        "reason with lone surrogate": b'{"on": true, "reason": "\\udfff"}',
    }
    for _name, raw in switch.items():
        status, _, body = http_call(f"{url}/admin/kill-switch", "POST", raw=raw, headers=_auth())
        _assert_error(status, body, 400, "bad_request")
    assert _ledger_state(runtime) == before
    assert runtime().ledger.kill_switch().on is False


@SQLITE
def test_hostile_paths_and_media_types(app_url) -> None:
    url, ids, _, runtime, _ = app_url
    before = _ledger_state(runtime)
    for path in (
        f"/signals/{ids[0]}%0A",
        f"/signals/{ids[0][:-1]}%00",
        "/orders/ord_abc%0A",
        "/orders/ord%1Babc",
    ):
        status, _, body = http_call(url + path, headers=_auth())
        _assert_error(status, body, {400, 404})
    status, _, body = http_call(
        f"{url}/orders",
        "POST",
        raw=b"model_id=x",
        headers={**_auth(), "Content-Type": "text/plain", "Idempotency-Key": "media-type-01"},
    )
    _assert_error(status, body, 415, "unsupported_media_type")
    quoted = urllib.parse.quote(f"{ids[0]}\n")
    status, _, body = http_call(f"{url}/signals/{quoted}", headers=_auth())
    _assert_error(status, body, {400, 404})
    assert _ledger_state(runtime) == before


def _order(url: str, model_id: str, target: int, notional: float, key: str):
    headers = {**_auth("trader"), "Idempotency-Key": key}
    body = {"model_id": model_id, "notional": notional, "target_position": target}
    return http_call(f"{url}/orders", "POST", body, headers)


@BOTH_LEDGERS
def test_retired_model_is_close_only_at_once(app_url) -> None:
    url, ids, store, runtime, kind = app_url
    from titan_lib.core.model_registry import retire

    model_id = ids[1]
    status, _, opened = _order(url, model_id, 1, 10_000, f"open-{kind}-0001")
    assert status == 201 and opened["status"] == "filled"
    # The warm cache lists the model as served; retirement must not wait for it to expire.
    status, _, listed = http_call(f"{url}/models", headers=_auth())
    assert status == 200 and model_id in {m["model_id"] for m in listed["models"]}
    retire(model_id, reason="half-life drifted", store=store)
    before = _ledger_state(runtime)
    for key, target, notional in [
        (f"flip-{kind}-0001", -1, 10_000),
        (f"more-{kind}-0001", 1, 20_000),
    ]:
        status, _, body = _order(url, model_id, target, notional, key)
        error = _assert_error(status, body, 422, "model_retired")
        assert error["details"]["reason"] == "half-life drifted"
        assert error["details"]["model_id"] == model_id and error["details"]["retired_at"]
        assert "half-life drifted" in error["message"]
    assert _ledger_state(runtime) == before
    status, _, signal = http_call(f"{url}/signals/{model_id}", headers=_auth())
    assert status == 200 and signal["status"] == "retired"
    assert signal["retirement"]["reason"] == "half-life drifted"
    status, _, reduced = _order(url, model_id, 1, 4_000, f"reduce-{kind}-0001")
    assert status == 201 and reduced["status"] == "filled", reduced
    status, _, closed = _order(url, model_id, 0, 4_000, f"close-{kind}-0001")
    assert status == 201 and closed["status"] == "filled", closed
    held = [p for p in runtime().ledger.positions() if p.model_id == model_id]
    assert held and all(abs(p.quantity) < 1e-9 for p in held)
    # A replay of an order placed before the retirement still answers with that order.
    status, headers, replay = _order(url, model_id, 1, 10_000, f"open-{kind}-0001")
    assert status == 200 and headers["Idempotent-Replayed"] == "true" and replay == opened
    status, _, served = http_call(f"{url}/signals/{ids[0]}", headers=_auth())
    assert status == 200 and served["status"] == "served" and served["retirement"] is None


@BOTH_LEDGERS
def test_stale_prices_are_refused(app_url, monkeypatch) -> None:
    url, ids, _, runtime, kind = app_url
    from chalicelib.runtime import reset_runtime

    monkeypatch.setenv("TITAN_MAX_PRICE_AGE_SESSIONS", "1")  # the default
    reset_runtime()
    try:
        before = _ledger_state(runtime)
        status, _, body = _order(url, ids[0], -1, 5_000, f"stale-{kind}-0001")
        error = _assert_error(status, body, 422, "stale_prices")
        assert error["details"]["last_date"] == "2022-12-28"
        assert error["details"]["max_age_sessions"] == 1
        assert error["details"]["age_sessions"] > 900
        assert "TITAN_MAX_PRICE_AGE_SESSIONS" in error["message"]
        assert _ledger_state(runtime) == before
    finally:
        monkeypatch.undo()
        reset_runtime()
    status, _, filled = _order(url, ids[0], -1, 5_000, f"stale-{kind}-0001")
    assert status == 201 and filled["status"] == "filled"


@SQLITE
def test_no_window_edge_lets_more_than_the_limit_through(app_url, monkeypatch) -> None:
    url, *_ = app_url
    from chalicelib.runtime import reset_runtime

    limit, window = 5, 2
    monkeypatch.setenv("TITAN_RATE_LIMIT", str(limit))
    monkeypatch.setenv("TITAN_RATE_WINDOW_SECONDS", str(window))
    reset_runtime()
    try:
        headers = _auth(sub=f"burst-{uuid.uuid4().hex[:6]}")
        # Start just before an epoch multiple of the window: a fixed window would reset
        # in the middle of the burst and admit twice the limit.
        time.sleep((window - time.time() % window - 0.8) % window)
        started = time.time()
        statuses, refusals, admitted = [], [], []
        while time.time() - started < window - 0.4:
            sent = time.time()
            status, response_headers, body = http_call(f"{url}/models", headers=headers)
            statuses.append(status)
            if status == 200:
                admitted.append((sent, time.time()))
            if status == 429:
                refusals.append((response_headers, body))
        # The burst fills the window, then is refused across the edge. A request answered
        # late on a loaded machine may be admitted once the first leaves the window: the
        # (limit+1)-th admission must then have come at least a window after the first.
        assert statuses[:limit] == [200] * limit, statuses
        assert set(statuses) == {200, 429}
        for first, later in zip(admitted, admitted[limit:], strict=False):
            assert later[1] - first[0] >= window, (statuses, admitted)
        response_headers, body = refusals[0]
        error = _assert_error(429, body, 429, "rate_limited")
        assert 1 <= int(response_headers["Retry-After"]) <= window
        assert error["details"]["retry_after"] == int(response_headers["Retry-After"])
    finally:
        monkeypatch.undo()
        reset_runtime()
