"""Live push over real WebSockets to `titan lambdas local` (ws://127.0.0.1:PORT/ws).

Connections are refused without a valid token; bad messages get the one error shape and
keep the connection; a principal's fills reach its own subscribers within a second and
never another principal's; changed signals are pushed once; gone connections are
removed, through the local management endpoint (410) and by disconnecting; the
management API calls are also made against the moto server.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from fixtures.lambda_world import http_call, lambda_env, serve, token, world_store
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[1]
TRADER = "signals:read orders:write"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ws")
    store, ids = world_store(tmp)
    with serve(lambda_env(str(store), str(tmp / "ledger.sqlite"))) as url:
        from chalicelib.runtime import runtime

        yield url, ids, runtime


def _ws(url: str, bearer: str) -> ClientConnection:
    return connect(url.replace("http://", "ws://") + f"/ws?token={bearer}", open_timeout=5)


ASYNCAPI = yaml.safe_load((REPO / "lambdas" / "asyncapi.yaml").read_text())["components"]
ENVELOPE = ASYNCAPI["schemas"]["Envelope"]
ERROR = ASYNCAPI["messages"]["Error"]["payload"]


def _next(ws: ClientConnection, timeout: float = 5.0) -> dict:
    """The next message, checked against lambdas/asyncapi.yaml (an event or an error)."""
    message = json.loads(ws.recv(timeout=timeout))
    jsonschema.validate(message, ERROR if "error" in message else ENVELOPE)
    return message


def _subscribe(ws: ClientConnection, *channels: str) -> dict:
    ws.send(json.dumps({"action": "subscribe", "channels": list(channels)}))
    return _next(ws)


def _silent(ws: ClientConnection, seconds: float) -> bool:
    try:
        ws.recv(timeout=seconds)
    except TimeoutError:
        return True
    return False


def test_a_bad_or_missing_token_refuses_the_connection(live) -> None:
    url, *_ = live
    for bearer in ("", "not-a-jwt", token(TRADER, secret="another-secret-" + "y" * 40)):
        with pytest.raises(InvalidStatus) as refused:
            _ws(url, bearer)
        assert refused.value.response.status_code == 401
        body = json.loads(refused.value.response.body)
        assert body["error"]["code"] == "unauthorized" and body["error"]["message"]


def test_bad_messages_get_the_error_shape_and_keep_the_connection(live) -> None:
    url, ids, _ = live
    with _ws(url, token(TRADER, sub="carol")) as ws:
        bad = [
            ("not json", "bad_request"),
            ("[1, 2]", "bad_request"),
            (json.dumps({"action": "dance", "channels": ["fills"]}), "bad_request"),
            (json.dumps({"action": "subscribe"}), "bad_request"),
            (json.dumps({"action": "subscribe", "channels": ["nope:1"]}), "invalid_parameter"),
            (
                json.dumps({"action": "subscribe", "channels": ["jobs:job_" + "0" * 24]}),
                "forbidden",
            ),
            (
                json.dumps({"action": "subscribe", "channels": ["signals:unknown"]}),
                "invalid_parameter",
            ),
            (json.dumps({"action": "subscribe", "channels": ["signals:" + "0" * 64]}), "not_found"),
            (json.dumps({"action": "subscribe", "channels": ["fills"], "x": 1}), "bad_request"),
            ('{"action": "subscribe", "channels": ["fills"], "action": "x"}', "bad_request"),
        ]
        for raw, code in bad:
            ws.send(raw)
            answer = _next(ws)
            assert set(answer) == {"error"}, raw
            assert set(answer["error"]) == {"code", "message", "details"}, raw
            assert answer["error"]["code"] == code, (raw, answer)
        # still open: a valid subscription is confirmed, and can be dropped
        assert _subscribe(ws, "fills", f"signals:{ids[0]}")["data"] == {
            "channels": ["fills", f"signals:{ids[0]}"]
        }
        ws.send(json.dumps({"action": "unsubscribe", "channels": ["fills"]}))
        answer = _next(ws)
        assert answer["event"] == "unsubscribed" and answer["data"] == {"channels": ["fills"]}
        from chalicelib.live import live as services

        mine = services(live[2]()).connections
        (carol,) = [s for s in mine.subscribers(f"signals:{ids[0]}") if s.principal == "carol"]
        assert mine.channels_of(carol.connection_id) == [f"signals:{ids[0]}"]
    with _ws(url, token("jobs:write", sub="carol")) as ws:
        ws.send(json.dumps({"action": "subscribe", "channels": ["jobs:job_" + "0" * 24]}))
        assert _next(ws)["error"]["code"] == "not_found"
    with _ws(url, token("signals:read", sub="dave")) as ws:
        answer = _subscribe(ws, "fills")
        assert answer["error"]["code"] == "forbidden"
        assert answer["error"]["details"]["required"] == ["orders:write"]


def _order(url: str, model_id: str, sub: str, key: str, target: int) -> dict:
    status, _, body = http_call(
        f"{url}/orders",
        "POST",
        {"model_id": model_id, "notional": 10_000, "target_position": target},
        {"Authorization": f"Bearer {token(TRADER, sub=sub)}", "Idempotency-Key": key},
    )
    assert status == 201, body
    return body


def test_fills_reach_their_owner_within_a_second_and_no_one_else(live) -> None:
    url, ids, _ = live
    with _ws(url, token(TRADER, sub="alice")) as alice, _ws(url, token(TRADER, sub="bob")) as bob:
        _subscribe(alice, "fills")
        _subscribe(bob, "fills")
        started = time.perf_counter()
        order = _order(url, ids[0], "alice", "fill-alice-0001", 1)
        pushed = _next(alice, timeout=1.0)
        assert time.perf_counter() - started < 1.0 + 1.0  # request + push, each within 1 s
        assert pushed["channel"] == "fills" and pushed["event"] == "fill"
        assert pushed["data"]["order_id"] == order["order_id"]
        assert pushed["data"]["status"] == "filled" and pushed["data"]["principal"] == "alice"
        assert _silent(bob, 0.5)

        mine = _order(url, ids[1], "bob", "fill-bob-0001", -1)
        assert _next(bob, timeout=1.0)["data"]["order_id"] == mine["order_id"]
        assert _silent(alice, 0.5)
        # a replay of the same key is the same fill: nothing is pushed again
        _order_replay = http_call(
            f"{url}/orders",
            "POST",
            {"model_id": ids[1], "notional": 10_000, "target_position": -1},
            {
                "Authorization": f"Bearer {token(TRADER, sub='bob')}",
                "Idempotency-Key": "fill-bob-0001",
            },
        )
        assert _order_replay[0] == 200 and _silent(bob, 0.5)


def test_changed_signals_are_pushed_once(live) -> None:
    url, ids, runtime = live
    from chalicelib.live import push_changed_signals

    with _ws(url, token(TRADER, sub="erin")) as ws:
        _subscribe(ws, f"signals:{ids[0]}")
        first = push_changed_signals(runtime())
        assert first["changed"] >= 1
        pushed = _next(ws)
        assert pushed["event"] == "signal" and pushed["data"]["model_id"] == ids[0]
        assert {"zscore", "action", "as_of"} <= set(pushed["data"])
        assert push_changed_signals(runtime()) == {"changed": 0, "sent": 0}
        assert _silent(ws, 0.3)


def test_gone_connections_are_removed(live) -> None:
    url, _, runtime = live
    from chalicelib.live import live as services

    from titan_lib.core.push.connections import Connection
    from titan_lib.core.push.gateway import ConnectionGoneError, ManagementApiSender
    from titan_lib.core.push.publisher import publish

    store = services(runtime()).connections
    # a subscription left by a connection that is not open (its disconnect never ran)
    stale = Connection("stale-connection", "frank", frozenset({"orders:write"}), "2026-01-01")
    store.add_connection(stale)
    store.subscribe(stale, ["fills"])
    sender = ManagementApiSender(url)  # the local server's management endpoint, over HTTP
    with pytest.raises(ConnectionGoneError):
        sender.send("stale-connection", b"{}")
    delivery = publish(store, sender, "fills", "fill", {"x": 1}, principal="frank")
    assert delivery.gone == 1 and delivery.sent == 0
    assert store.get_connection("stale-connection") is None
    assert store.subscribers("fills") == [] or all(
        s.connection_id != "stale-connection" for s in store.subscribers("fills")
    )

    # an open connection receives through the same endpoint; closing it removes it
    with _ws(url, token(TRADER, sub="frank")) as ws:
        _subscribe(ws, "fills")
        (subscriber,) = [s for s in store.subscribers("fills") if s.principal == "frank"]
        sender.send(subscriber.connection_id, b'{"hello": 1}')
        assert json.loads(ws.recv(timeout=5)) == {"hello": 1}
    deadline = time.monotonic() + 5
    while store.get_connection(subscriber.connection_id) is not None:
        assert time.monotonic() < deadline, "the closed connection was not removed"
        time.sleep(0.05)
    assert store.channels_of(subscriber.connection_id) == []


def test_connections_in_dynamodb_and_the_management_api_on_moto(moto_endpoint: str) -> None:
    from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger
    from titan_lib.core.push.connections import Connection
    from titan_lib.core.push.connections_dynamodb import DynamoDBConnections
    from titan_lib.core.push.gateway import ManagementApiSender
    from titan_lib.core.push.publisher import publish

    table = f"ws-{time.time_ns()}"
    DynamoDBLedger.create_table(table)
    store = DynamoDBConnections(table)
    for cid, who in (("c1", "alice"), ("c2", "bob")):
        conn = Connection(cid, who, frozenset({"orders:write"}), "2026-01-01T00:00:00+00:00")
        store.add_connection(conn)
        store.subscribe(conn, ["fills", "jobs:job_x"])
    assert store.get_connection("c1").principal == "alice"
    assert sorted(s.connection_id for s in store.subscribers("fills")) == ["c1", "c2"]
    assert store.channels_of("c1") == ["fills", "jobs:job_x"]
    assert store.swap_mark("signal:m", "a") and not store.swap_mark("signal:m", "a")
    assert store.swap_mark("signal:m", "b")

    sender = ManagementApiSender(moto_endpoint)  # signed, as in AWS
    delivery = publish(store, sender, "fills", "fill", {"order_id": "o1"}, principal="alice")
    assert delivery.sent == 1 and delivery.gone == 0 and delivery.failed == 0

    store.remove_connection("c1")
    assert store.get_connection("c1") is None and store.channels_of("c1") == []
    assert [s.connection_id for s in store.subscribers("fills")] == ["c2"]
