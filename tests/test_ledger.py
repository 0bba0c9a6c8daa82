"""One ledger test suite, run against SQLite (a file) and DynamoDB (the moto server)."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from titan_lib.core.execution.ledger import Ledger, fill_id_for, order_id_for, utc_now_iso
from titan_lib.core.execution.models import Fill, FillLeg, KillSwitch, Order, OrderLeg, OrderRequest
from titan_lib.exceptions import ConflictError, ParameterError


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger(request, tmp_path) -> Ledger:
    if request.param == "sqlite":
        from titan_lib.core.execution.ledger_sqlite import SQLiteLedger

        return SQLiteLedger(tmp_path / "ledger.sqlite")
    request.getfixturevalue("moto_endpoint")
    from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger

    return DynamoDBLedger.create_table(f"ledger-{uuid.uuid4().hex[:10]}")


@pytest.fixture()
def sqlite_ledger(tmp_path) -> Ledger:
    """Concurrency is asserted on SQLite only: the moto server handles requests on threads
    without serialising DynamoDB writes, so it cannot emulate the atomicity of conditional
    writes and ADD that DynamoDB itself guarantees."""
    from titan_lib.core.execution.ledger_sqlite import SQLiteLedger

    return SQLiteLedger(tmp_path / "ledger.sqlite")


def _order(
    key: str, principal: str = "alice", model: str = "m1", notional: float = 1000.0
) -> Order:
    order_id, client_id = order_id_for(principal, key)
    request = OrderRequest(model_id=model, notional=notional, target_position=1)
    now = utc_now_iso()
    return Order(
        order_id=order_id,
        client_order_id=client_id,
        principal=principal,
        request=request,
        request_hash=request.fingerprint(),
        status="pending",
        created_at=now,
        updated_at=now,
        target_position=1,
    )


def _fill(order: Order, legs: list[tuple[str, float, float]]) -> Fill:
    return Fill(
        fill_id=fill_id_for(order.order_id),
        order_id=order.order_id,
        model_id=order.request.model_id,
        legs=tuple(FillLeg(s, q, p) for s, q, p in legs),
        filled_at=utc_now_iso(),
        broker="paper",
    )


def test_claim_is_create_only(ledger: Ledger) -> None:
    order = _order("key-1")
    stored, created = ledger.claim_order(order)
    assert created and stored == order
    again, created_again = ledger.claim_order(order.with_changes(status="failed"))
    assert not created_again and again.status == "pending"
    assert ledger.get_order(order.order_id) == order
    assert ledger.get_order("ord_missing") is None


def test_concurrent_claims_of_one_id_create_exactly_one(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    order = _order("key-race")
    barrier = threading.Barrier(10)

    def claim(_: int) -> bool:
        barrier.wait()
        return ledger.claim_order(order)[1]

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(claim, range(10)))
    assert results.count(True) == 1
    assert len(ledger.list_orders()) == 1


def test_update_only_while_pending(ledger: Ledger) -> None:
    order, _ = ledger.claim_order(_order("key-2"))
    legs = (OrderLeg("KO", 10.0), OrderLeg("PEP", -5.0))
    updated = ledger.update_order(order.with_changes(legs=legs, submitted=True))
    assert ledger.get_order(order.order_id).legs == legs
    ledger.update_order(updated.with_changes(status="rejected", rule="max_open_pairs"))
    assert ledger.list_orders(status="rejected")[0].rule == "max_open_pairs"
    with pytest.raises(ConflictError, match="no longer pending"):
        ledger.update_order(updated.with_changes(status="failed"))


def test_fill_is_atomic_idempotent_and_positions_are_sums(ledger: Ledger) -> None:
    first, _ = ledger.claim_order(_order("key-a"))
    second, _ = ledger.claim_order(_order("key-b"))
    fill_a = _fill(first, [("KO", 10.0, 60.0), ("PEP", -4.0, 170.0)])
    filled = ledger.record_fill(fill_a)
    assert filled.status == "filled" and filled.fill_id == fill_a.fill_id
    assert ledger.record_fill(fill_a).fill_id == fill_a.fill_id  # replay: no double count
    ledger.record_fill(_fill(second, [("KO", -3.0, 61.0), ("PEP", 1.5, 171.0)]))
    fills = ledger.list_fills()
    assert len(fills) == 2
    positions = {p.symbol: p for p in ledger.positions()}
    for symbol in ("KO", "PEP"):
        legs = [leg for f in fills for leg in f.legs if leg.symbol == symbol]
        assert positions[symbol].quantity == pytest.approx(sum(leg.quantity for leg in legs))
        assert positions[symbol].cash == pytest.approx(
            sum(-leg.quantity * leg.price for leg in legs)
        )
    failed, _ = ledger.claim_order(_order("key-c"))
    ledger.update_order(failed.with_changes(status="failed"))
    with pytest.raises(ConflictError):
        ledger.record_fill(_fill(failed, [("KO", 1.0, 60.0)]))
    assert len(ledger.list_fills()) == 2


def test_pair_lock_is_exclusive_with_a_lease(ledger: Ledger) -> None:
    assert ledger.acquire_pair("m1", "ord_a", now=1000.0, lease_seconds=60) is None
    assert ledger.acquire_pair("m1", "ord_a", now=1001.0, lease_seconds=60) is None  # re-entrant
    assert ledger.acquire_pair("m1", "ord_b", now=1010.0, lease_seconds=60) == "ord_a"
    assert ledger.acquire_pair("m2", "ord_b", now=1010.0, lease_seconds=60) is None
    holder = ledger.pair_holder("m1")
    assert holder is not None and holder[0] == "ord_a"
    assert ledger.acquire_pair("m1", "ord_b", now=1100.0, lease_seconds=60) is None  # expired
    ledger.release_pair("m1", "ord_a")  # not the holder any more: no effect
    assert ledger.pair_holder("m1")[0] == "ord_b"
    ledger.release_pair("m1", "ord_b")
    assert ledger.pair_holder("m1") is None


def test_rate_window_slides_per_principal(ledger: Ledger) -> None:
    admitted = [ledger.admit_request("alice", 600.0 + i, 3, 60).admitted for i in range(4)]
    assert admitted == [True, True, True, False]
    refused = ledger.admit_request("alice", 650.0, 3, 60)
    assert not refused.admitted and refused.retry_after == pytest.approx(10.0)
    assert ledger.admit_request("bob", 650.0, 3, 60).admitted
    # The first admission (t=600) leaves the window at t=660; the refusals took no slot.
    assert not ledger.admit_request("alice", 659.9, 3, 60).admitted
    assert ledger.admit_request("alice", 660.0, 3, 60).admitted
    assert not ledger.admit_request("alice", 660.5, 3, 60).admitted


def test_no_window_edge_lets_more_than_the_limit_through(ledger: Ledger) -> None:
    """A burst at the end of one minute and another at the start of the next: a fixed
    window admits twice the limit within two seconds; the sliding window admits the limit."""
    times = [59.0 + 0.1 * i for i in range(10)] + [60.0 + 0.1 * i for i in range(10)]
    times += [60.0 * k + 0.7 * i for k in range(2, 5) for i in range(12)]
    admitted = [t for t in times if ledger.admit_request("edge", t, 5, 60).admitted]
    for start in admitted:
        assert sum(start <= t < start + 60 for t in admitted) <= 5
    assert admitted[:5] == times[:5]


def test_concurrent_admissions_are_not_lost(sqlite_ledger: Ledger) -> None:
    ledger = sqlite_ledger
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda i: ledger.admit_request("carol", i, 20, 60), range(24)))
    assert sum(o.admitted for o in outcomes) == 20
    assert sorted(len(o.stamps) for o in outcomes if o.admitted) == list(range(1, 21))


def test_kill_switch_state_round_trips(ledger: Ledger) -> None:
    assert ledger.kill_switch().on is False
    ledger.set_kill_switch(KillSwitch(on=True, reason="drill", updated_by="ops", updated_at="t"))
    assert ledger.kill_switch() == KillSwitch(
        on=True, reason="drill", updated_by="ops", updated_at="t"
    )
    ledger.set_kill_switch(KillSwitch(on=False))
    assert ledger.kill_switch().on is False


def test_open_ledger_by_uri(tmp_path, monkeypatch) -> None:
    from titan_lib.core.execution.ledger_sqlite import SQLiteLedger
    from titan_lib.core.execution.ledgers import open_ledger

    assert isinstance(open_ledger(f"sqlite://{tmp_path / 'a.sqlite'}"), SQLiteLedger)
    monkeypatch.setenv("TITAN_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("TITAN_LEDGER", raising=False)
    ledger = open_ledger()
    assert isinstance(ledger, SQLiteLedger) and ledger.path == tmp_path / "store" / "ledger.sqlite"
    monkeypatch.setenv("TITAN_STORE", "s3://bucket/prefix")
    with pytest.raises(ParameterError, match="TITAN_LEDGER"):
        open_ledger()
