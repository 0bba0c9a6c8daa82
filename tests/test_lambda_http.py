"""The app over real HTTP (the local server of `titan lambdas local`): concurrency,
schemathesis against lambdas/openapi.yaml, and the document against the app's routes."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import schemathesis
import yaml
from conftest import free_port, wait_for_port
from fixtures.lambda_world import LAMBDAS, lambda_env, load_app, token, world_store
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

REPO = Path(__file__).resolve().parents[1]
OPENAPI = LAMBDAS / "openapi.yaml"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A threaded local server on 127.0.0.1 with a local store and a SQLite ledger."""
    tmp = tmp_path_factory.mktemp("live")
    store, ids = world_store(tmp, REPO / ".cache")
    env = lambda_env(str(store), str(tmp / "ledger.sqlite"))
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    load_app()
    from chalicelib.runtime import reset_runtime, runtime

    from titan_lib.cli.lambdas import local_server

    reset_runtime()
    port = free_port()
    server = local_server("127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}", ids, runtime
    server.shutdown()
    reset_runtime()
    mp.undo()


def _call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def _auth(scopes: str = "signals:read orders:write admin", sub: str = "trader") -> dict:
    return {"Authorization": f"Bearer {token(scopes, sub=sub)}"}


def test_gateway_errors_use_the_error_shape(live) -> None:
    url, *_ = live
    status, _, body = _call(f"{url}/models")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, _, body = _call(f"{url}/no/such/route", headers=_auth())
    assert status == 404 and set(body["error"]) == {"code", "message", "details"}


def test_concurrent_orders_one_key_one_order_distinct_keys_all_orders(live) -> None:
    url, ids, runtime = live
    headers = {**_auth(), "Idempotency-Key": "same-key-0001"}
    body = {"model_id": ids[0], "notional": 10_000, "target_position": 1}
    barrier = threading.Barrier(20)

    def same(_: int):
        barrier.wait()
        return _call(f"{url}/orders", "POST", body, headers)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(same, range(20)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 19 + [201]
    order_ids = {doc["order_id"] for _, _, doc in results}
    assert len(order_ids) == 1
    ledger = runtime().ledger
    assert len(ledger.list_orders()) == 1 and len(ledger.list_fills()) == 1

    def distinct(i: int):
        barrier.wait()
        request = {
            "model_id": ids[i % 2],
            "notional": 1_000 + 100 * i,
            "target_position": (-1, 1)[i % 2 == 0],
        }
        return _call(
            f"{url}/orders",
            "POST",
            request,
            {**_auth(), "Idempotency-Key": f"distinct-key-{i:04d}"},
        )

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(distinct, range(20)))
    assert sorted(status for status, _, _ in results) == [201] * 20
    new_ids = {doc["order_id"] for _, _, doc in results}
    assert len(new_ids) == 20
    stored = ledger.list_orders()
    assert len(stored) == 21 and all(o.is_final for o in stored)
    fills = ledger.list_fills()
    assert len(fills) == sum(o.status == "filled" for o in stored)
    sums: dict[tuple[str, str], float] = {}
    for fill in fills:
        for leg in fill.legs:
            sums[(fill.model_id, leg.symbol)] = (
                sums.get((fill.model_id, leg.symbol), 0.0) + leg.quantity
            )
    _, _, positions = _call(f"{url}/positions", headers=_auth())
    assert {(p["model_id"], p["symbol"]): p["quantity"] for p in positions["positions"]} == (
        pytest.approx(sums)
    )


def test_openapi_document_matches_the_app_routes() -> None:
    from openapi_spec_validator import validate

    document = yaml.safe_load(OPENAPI.read_text())
    validate(document)
    app = load_app().app
    documented = {
        (path, method.upper())
        for path, ops in document["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    }
    routed = {(path, method) for path, methods in app.routes.items() for method in methods}
    assert documented == routed
    for path, methods in app.routes.items():
        for method, entry in methods.items():
            operation = document["paths"][path][method.lower()]
            public = operation.get("security") == []
            assert public == (entry.authorizer is None), (path, method)
            if not public:
                assert {"401", "403", "429"} <= set(operation["responses"]), (path, method)


def test_api_conforms_to_openapi(live) -> None:
    """Every operation, fuzzed by schemathesis from the document: no 5xx, every response
    conforms (status, headers, content type, schema), bad input is refused, no auth -> 401.

    The operations are driven programmatically because schemathesis' pytest fixture
    loader does not work with this pytest version.
    """
    url, *_ = live
    schema = schemathesis.openapi.from_path(str(OPENAPI))
    headers = _auth(sub="fuzzer")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 10
    for operation in operations:
        # Evaluation also needs ascending dates, equal lengths and the model's symbols:
        # rules a schema cannot state, refused with a 400 in the one error shape.
        excluded = [positive_data_acceptance] if operation.path == "/signals/evaluate" else []
        _fuzz(operation, url, headers, excluded)


def _fuzz(operation, url: str, headers: dict, excluded: list) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def conforms(case) -> None:
        case.call_and_validate(base_url=url, headers=headers, excluded_checks=excluded)

    conforms()
