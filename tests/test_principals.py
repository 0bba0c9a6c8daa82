"""Principals with their own limits and preferences: the rules, the atomic usage update
under concurrency (SQLite, threads on separate connections), and the routes over real HTTP
(the local server of `titan lambdas local`) on the SQLite ledger and on the DynamoDB ledger
(moto server), with the `titan principals` command line."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import test_api_hostile_bodies
from fixtures.lambda_world import http_call, token
from typer.testing import CliRunner

from titan_lib.core.execution.ledger_sqlite import SQLiteLedger
from titan_lib.core.execution.principals import (
    PrincipalLimits,
    PrincipalOrder,
    PrincipalProfile,
    PrincipalUsage,
    apply_order,
    check_preferences,
)
from titan_lib.exceptions import ParameterError

MODEL_A, MODEL_B, MODEL_C = "a" * 64, "b" * 64, "c" * 64


def _order(model_id: str, gross: float, reduces: bool = False, notional: float = 1.0):
    return PrincipalOrder(model_id, notional, gross, reduces)


# -- the rules -------------------------------------------------------------------------------


def test_rules_refuse_what_exceeds_and_never_a_reduction() -> None:
    limits = PrincipalLimits(max_gross_notional=15.0, max_open_pairs=2, max_orders_per_day=3)
    usage = PrincipalUsage("bob")
    usage, refused = apply_order(usage, limits, _order(MODEL_A, 10.0), "2024-01-02")
    assert refused is None and usage.gross_notional == 10.0 and usage.orders_today == 1
    same, refused = apply_order(usage, limits, _order(MODEL_B, 6.0), "2024-01-02")
    assert refused is not None and refused.rule == "principal_max_gross_notional"
    assert refused.details == {
        "rule": "principal_max_gross_notional",
        "principal": "bob",
        "limit": 15.0,
        "gross": 16.0,
    }
    assert "15.00" in refused.message and "bob" in refused.message and same == usage
    usage, refused = apply_order(usage, limits, _order(MODEL_B, 5.0), "2024-01-02")
    assert refused is None and usage.open_pairs == 2
    _, refused = apply_order(usage, limits, _order(MODEL_C, 0.5), "2024-01-02")
    assert refused is not None and refused.rule == "principal_max_gross_notional"
    # a reduction passes whatever the limits, and is counted
    usage, refused = apply_order(usage, limits, _order(MODEL_A, 0.0, True), "2024-01-02")
    assert refused is None and usage.orders_today == 3 and usage.exposure == {MODEL_B: 5.0}
    _, refused = apply_order(usage, limits, _order(MODEL_C, 1.0), "2024-01-02")
    assert refused is not None and refused.rule == "principal_max_orders_per_day"
    assert refused.details["limit"] == 3
    # a new UTC day restarts the count, not the exposure
    usage, refused = apply_order(usage, limits, _order(MODEL_C, 1.0), "2024-01-03")
    assert refused is None and usage.orders_today == 1 and usage.gross_notional == 6.0
    tight = PrincipalLimits(max_open_pairs=1)
    _, refused = apply_order(usage, tight, _order(MODEL_A, 1.0), "2024-01-03")
    assert refused is not None and refused.rule == "principal_max_open_pairs"


def test_allowed_models_and_order_notional() -> None:
    limits = PrincipalLimits(max_order_notional=100.0, allowed_models=(MODEL_A,))
    usage = PrincipalUsage("erin")
    _, refused = apply_order(usage, limits, _order(MODEL_B, 1.0), "2024-01-02")
    assert refused is not None and refused.rule == "principal_allowed_models"
    _, refused = apply_order(usage, limits, _order(MODEL_A, 1.0, notional=101.0), "2024-01-02")
    assert refused is not None and refused.rule == "principal_max_order_notional"
    assert refused.details["limit"] == 100.0 and refused.details["notional"] == 101.0
    _, refused = apply_order(usage, limits, _order(MODEL_B, 0.0, True, 1e6), "2024-01-02")
    assert refused is None


def test_profiles_and_preferences_are_validated() -> None:
    check_preferences({"default_notional": 5000, "notify": {"channel": "email"}})
    for bad in (
        [],
        {"a": {"b": {"c": {"d": {"e": 1}}}}},
        {"x": "y" * 5000},
        {"": 1},
        {"k": "line\nbreak"},
    ):
        with pytest.raises(ParameterError):
            check_preferences(bad)
    with pytest.raises(ParameterError, match="max_gross_notional"):
        PrincipalLimits(max_gross_notional=-1.0)
    with pytest.raises(ParameterError, match="allowed_models"):
        PrincipalLimits(allowed_models=("not-a-model",))
    with pytest.raises(ParameterError, match="principal"):
        PrincipalProfile("bad subject with spaces")
    profile = PrincipalProfile(
        "bob", PrincipalLimits(max_open_pairs=2, allowed_models=(MODEL_B, MODEL_A)), {"k": [1]}
    )
    assert PrincipalProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile


def test_concurrent_reservations_of_one_principal_never_exceed_its_gross(tmp_path) -> None:
    """16 threads, each with its own SQLite connection, reserve 1 000 on distinct pairs
    against a 5 000 limit: exactly five win, and the stored gross is the limit."""
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    limits = PrincipalLimits(max_gross_notional=5_000.0)
    barrier = threading.Barrier(16)

    def reserve(i: int):
        barrier.wait()
        return ledger.reserve_usage("grace", limits, _order(f"{i:064x}", 1_000.0), "2024-01-02")

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(reserve, range(16)))
    assert sum(refusal is None for _, refusal in results) == 5
    stored = ledger.principal_usage("grace")
    assert stored.gross_notional == 5_000.0 and stored.orders_today == 5
    assert ledger.principal_usage("other").gross_notional == 0.0


def _reserve_in_process(path: str, model_id: str, start, results) -> None:
    ledger = SQLiteLedger(path)
    start.wait()
    _, refusal = ledger.reserve_usage(
        "heidi",
        PrincipalLimits(max_gross_notional=3_000.0),
        _order(model_id, 1_000.0),
        "2024-01-02",
    )
    results.put(refusal is None)


def test_concurrent_reservations_from_processes_never_exceed_its_gross(tmp_path) -> None:
    """The same race across 8 processes (separate SQLite connections and file locks)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    path = str(tmp_path / "ledger.sqlite")
    SQLiteLedger(path)
    start, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_reserve_in_process, args=(path, f"{i:064x}", start, results))
        for i in range(8)
    ]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert sum(outcomes) == 3 and all(w.exitcode == 0 for w in workers)
    assert SQLiteLedger(path).principal_usage("heidi").gross_notional == 3_000.0


# -- over HTTP ------------------------------------------------------------------------------


app_url = test_api_hostile_bodies.app_url
"""(base URL, model ids, store, runtime, ledger kind) of the app on the test's ledger."""
BOTH_LEDGERS = pytest.mark.parametrize("app_url", ["sqlite", "dynamodb"], indirect=True)
SQLITE = pytest.mark.parametrize("app_url", ["sqlite"], indirect=True)


def _auth(sub: str, scopes: str = "signals:read orders:write") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(scopes, sub=sub)}"}


def _admin() -> dict[str, str]:
    """Headers of an admin token minted now (tokens are short-lived)."""
    return _auth("ops", "admin")


def _place(url: str, sub: str, model_id: str, target: int, notional: float):
    headers = {**_auth(sub), "Idempotency-Key": f"{sub}-{uuid.uuid4().hex}"}
    body = {"model_id": model_id, "notional": notional, "target_position": target}
    return http_call(f"{url}/orders", "POST", body, headers)


def _refused(status: int, body, rule: str, principal: str, limit) -> dict:
    assert status == 422, (status, body)
    error = body["error"]
    assert error["code"] == "principal_limit", body
    assert error["details"]["rule"] == rule and error["details"]["principal"] == principal
    assert error["details"]["limit"] == limit
    assert rule in error["message"] and principal in error["message"]
    return error


@BOTH_LEDGERS
def test_limits_are_enforced_per_principal_over_http(app_url) -> None:
    url, ids, _, runtime, kind = app_url
    a, b = ids
    bob, carol = f"bob-{kind}", f"carol-{kind}"
    limits = {
        "max_order_notional": 12_000,
        "max_gross_notional": 15_000,
        "max_orders_per_day": 3,
        "allowed_models": [a, b],
        "preferences": {"default_notional": 5_000, "notify": {"channel": "email"}},
    }
    status, _, stored = http_call(f"{url}/principals/{bob}/limits", "PUT", limits, _admin())
    assert status == 200 and stored["stored"] is True, stored
    assert stored["limits"]["max_gross_notional"] == 15_000
    assert stored["limits"]["allowed_models"] == sorted([a, b])
    assert stored["preferences"] == limits["preferences"] and stored["updated_by"] == "ops"
    # the environment's ceilings stay: the tighter one binds
    assert stored["effective_limits"]["max_gross_notional"] == 15_000
    assert stored["effective_limits"]["max_open_pairs"] == 10

    before = runtime().ledger.list_orders()
    status, _, body = _place(url, bob, a, 1, 13_000)
    _refused(status, body, "principal_max_order_notional", bob, 12_000.0)
    assert runtime().ledger.list_orders() == before  # refused before anything is recorded

    status, _, opened = _place(url, bob, a, 1, 10_000)
    assert status == 201 and opened["status"] == "filled", opened
    status, _, body = _place(url, bob, b, 1, 10_000)
    error = _refused(status, body, "principal_max_gross_notional", bob, 15_000.0)
    assert error["details"]["gross"] > 15_000
    # carol has no profile: bob's limits do not touch her
    status, _, theirs = _place(url, carol, b, 1, 10_000)
    assert status == 201 and theirs["status"] == "filled", theirs
    # closing is never refused by a principal's limit
    status, _, closed = _place(url, bob, a, 0, 10_000)
    assert status == 201 and closed["status"] == "filled", closed
    status, _, flipped = _place(url, bob, b, -1, 10_000)
    assert status == 201 and flipped["status"] == "filled", flipped
    status, _, body = _place(url, bob, a, 1, 1_000)
    _refused(status, body, "principal_max_orders_per_day", bob, 3)

    status, _, mine = http_call(f"{url}/me", headers=_auth(bob))
    assert status == 200, mine
    assert mine["principal"] == bob and mine["usage"]["orders_today"] == 3
    assert set(mine["usage"]["exposure"]) == {b}
    assert mine["usage"]["gross_notional"] == pytest.approx(10_000, rel=0.01)
    status, _, hers = http_call(f"{url}/me", headers=_auth(carol, "signals:read"))
    assert status == 200 and hers["stored"] is False and hers["usage"]["orders_today"] == 1
    assert hers["limits"]["max_gross_notional"] is None
    assert hers["effective_limits"]["max_gross_notional"] == 500_000

    dave, erin = f"dave-{kind}", f"erin-{kind}"
    http_call(f"{url}/principals/{dave}/limits", "PUT", {"max_open_pairs": 1}, _admin())
    http_call(f"{url}/principals/{erin}/limits", "PUT", {"allowed_models": [a]}, _admin())
    status, _, body = _place(url, dave, a, 1, 1_000)
    assert status == 201, body
    status, _, body = _place(url, dave, b, 1, 1_000)
    _refused(status, body, "principal_max_open_pairs", dave, 1)
    status, _, body = _place(url, erin, b, 1, 1_000)
    _refused(status, body, "principal_allowed_models", erin, [a])

    status, _, shown = http_call(f"{url}/principals/{bob}", headers=_admin())
    assert status == 200 and shown["usage"]["orders_today"] == 3


@BOTH_LEDGERS
def test_principal_routes_refuse_bad_input_and_missing_scopes(app_url) -> None:
    url, ids, _, runtime, kind = app_url
    target = f"{url}/principals/zed-{kind}"
    status, _, body = http_call(f"{target}/limits", "PUT", {"max_open_pairs": 1}, _auth("zed"))
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, _, body = http_call(target, headers=_auth("zed"))
    assert status == 403
    for bad, field in [
        ({"max_gross_notional": -5}, "max_gross_notional"),
        ({"max_open_pairs": 1.5}, "max_open_pairs"),
        ({"allowed_models": ["abc"]}, "allowed_models[0]"),
        ({"allowed_models": [ids[0], ids[0]]}, "allowed_models"),
        ({"preferences": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "preferences"),
        ({"preferences": {"blob": "x" * 5000}}, "preferences"),
        ({"max_orders": 3}, "max_orders"),
    ]:
        status, _, body = http_call(f"{target}/limits", "PUT", bad, _admin())
        assert status == 400, (bad, body)
        assert field in body["error"]["message"], (bad, body)
    status, _, body = http_call(f"{url}/principals/bad%20sub", headers=_admin())
    assert status == 400 and body["error"]["code"] == "bad_request"
    assert runtime().ledger.principal_profile(f"zed-{kind}") is None


@SQLITE
def test_concurrent_orders_of_one_principal_cannot_exceed_its_gross_together(app_url) -> None:
    """Two orders of one principal on two pairs at once, 10 000 each against 15 000: one
    passes. (On SQLite: moto does not serialise DynamoDB's conditional writes.)"""
    url, ids, _, runtime, _ = app_url

    def place(sub: str, model_id: str, side: int, notional: float, barrier: threading.Barrier):
        barrier.wait()
        return _place(url, sub, model_id, side, notional)

    for round_ in range(4):
        sub = f"frank-{round_}"
        http_call(f"{url}/principals/{sub}/limits", "PUT", {"max_gross_notional": 15_000}, _admin())
        barrier = threading.Barrier(2)
        side = (-1, 1)[round_ % 2]
        notional = 10_050 + 100 * round_  # no earlier order used it: each order trades
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(place, sub, m, side, notional, barrier) for m in ids]
            results = [f.result() for f in futures]
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [201, 422], results
        assert {body.get("status") for status, _, body in results if status == 201} == {"filled"}
        usage = runtime().ledger.principal_usage(sub)
        assert usage.gross_notional <= 15_000 and usage.open_pairs == 1


@BOTH_LEDGERS
def test_principals_command_line(app_url) -> None:
    _, ids, _, runtime, kind = app_url
    ledger = runtime().ledger.uri
    from titan_lib.cli import app

    runner = CliRunner()
    sub = f"ivy-{kind}"
    result = runner.invoke(
        app,
        [
            "principals",
            "set",
            sub,
            "--ledger",
            ledger,
            "--max-gross-notional",
            "20000",
            "--max-orders-per-day",
            "5",
            "--allowed-models",
            ids[0],
            "--preferences",
            '{"default_notional": 2500}',
        ],
    )
    assert result.exit_code == 0, result.output
    profile = runtime().ledger.principal_profile(sub)
    assert profile is not None and profile.limits.max_gross_notional == 20_000
    assert profile.limits.allowed_models == (ids[0],)
    assert profile.preferences == {"default_notional": 2500}
    result = runner.invoke(
        app, ["principals", "set", sub, "--ledger", ledger, "--clear", "max_orders_per_day"]
    )
    assert result.exit_code == 0, result.output
    profile = runtime().ledger.principal_profile(sub)
    assert profile is not None and profile.limits.max_orders_per_day is None
    assert profile.limits.max_gross_notional == 20_000  # untouched
    result = runner.invoke(app, ["principals", "show", sub, "--ledger", ledger, "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["principal"] == sub
    result = runner.invoke(app, ["principals", "list", "--ledger", ledger])
    assert result.exit_code == 0 and sub in result.output
    result = runner.invoke(
        app, ["principals", "set", sub, "--ledger", ledger, "--max-open-pairs", "-1"]
    )
    assert result.exit_code != 0 and "max_open_pairs" in str(result.output + str(result.exception))
