"""The execution service: idempotency, risk rules, broker outcomes, crash reconciliation."""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from titan_lib.core.execution.broker import BrokerUnavailableError, Execution
from titan_lib.core.execution.errors import (
    IdempotencyConflictError,
    ModelRetiredError,
    RiskRejectedError,
    StalePricesError,
)
from titan_lib.core.execution.ledger_sqlite import SQLiteLedger
from titan_lib.core.execution.models import KillSwitch, OrderRequest
from titan_lib.core.execution.paper import PaperBroker
from titan_lib.core.execution.risk import RiskLimits, market_open, new_york_time
from titan_lib.core.execution.service import ExecutionService, TradePlan
from titan_lib.core.prices import latest_prices
from titan_lib.stores import open_store

PAIRS = {"m-ko-pep": ("KO", "PEP"), "m-xom-cvx": ("XOM", "CVX")}
SAMPLE_AGE = 100_000
"""The sample's prices end in 2022: every order here relaxes the price-age limit."""


@pytest.fixture(scope="module")
def price_store(tmp_path_factory) -> str:
    from fixtures.lambda_world import build_price_store

    root = tmp_path_factory.mktemp("prices") / "store"
    build_price_store(root)
    return str(root)


def _planner(store):
    """Long/short the pair with equal gross on both legs at the last stored closes."""

    def plan(request: OrderRequest, current):
        y, x = PAIRS[request.model_id]
        tails = {s: latest_prices(store, s, n=1) for s in (y, x)}
        prices = {s: tail.last_close for s, tail in tails.items()}
        side = request.target_position if request.target_position is not None else 1
        half = request.notional / 2
        return TradePlan(
            target_position=side,
            target_quantities={y: side * half / prices[y], x: -side * half / prices[x]},
            prices=prices,
            price_dates={s: tail.last_date for s, tail in tails.items()},
        )

    return plan


def _service(price_store, tmp_path, limits=None, broker=None, ledger=None, **kw):
    store = open_store(price_store)
    return ExecutionService(
        ledger=ledger or SQLiteLedger(tmp_path / "ledger.sqlite"),
        broker=broker or PaperBroker(store, slippage_bps=5),
        limits=limits or RiskLimits(market_hours="always", max_price_age_sessions=SAMPLE_AGE),
        planner=_planner(store),
        last_price=lambda s: latest_prices(store, s, n=1).last_close,
        **kw,
    )


def _request(target=1, notional=10_000.0, model="m-ko-pep", **kw) -> OrderRequest:
    return OrderRequest(model_id=model, notional=notional, target_position=target, **kw)


def test_one_key_is_one_order_and_a_different_body_conflicts(price_store, tmp_path) -> None:
    service = _service(price_store, tmp_path)
    first = service.place_order("alice", "key-0001", _request())
    assert first.created and first.order.status == "filled"
    again = service.place_order("alice", "key-0001", _request())
    assert not again.created and again.order == first.order
    with pytest.raises(IdempotencyConflictError):
        service.place_order("alice", "key-0001", _request(notional=20_000.0))
    other_principal = service.place_order("bob", "key-0001", _request(target=0))
    assert other_principal.created and other_principal.order.order_id != first.order.order_id
    assert len(service.ledger.list_fills()) == 2


def test_orders_trade_the_delta_to_the_target(price_store, tmp_path) -> None:
    service = _service(price_store, tmp_path)
    service.place_order("alice", "key-long", _request(target=1))
    same = service.place_order("alice", "key-long-again", _request(target=1))
    assert same.order.status == "unchanged" and same.order.legs == ()
    flat = service.place_order("alice", "key-flat", _request(target=0))
    assert flat.order.status == "filled"
    assert all(abs(p.quantity) < 1e-9 for p in service.ledger.positions())


def test_concurrent_requests_with_one_key_give_one_order(price_store, tmp_path) -> None:
    service = _service(price_store, tmp_path)
    barrier = threading.Barrier(12)

    def place(_: int):
        barrier.wait()
        return service.place_order("alice", "key-race-1", _request())

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(place, range(12)))
    assert sum(o.created for o in outcomes) == 1
    assert {o.order.order_id for o in outcomes} == {outcomes[0].order.order_id}
    assert {o.order.status for o in outcomes} == {"filled"}
    assert len(service.ledger.list_orders()) == 1 and len(service.ledger.list_fills()) == 1


def test_kill_switch_refuses_new_orders_but_replays_old_ones(price_store, tmp_path) -> None:
    service = _service(price_store, tmp_path)
    done = service.place_order("alice", "key-before", _request())
    service.ledger.set_kill_switch(KillSwitch(on=True, reason="incident"))
    with pytest.raises(RiskRejectedError, match="kill_switch: incident") as info:
        service.place_order("alice", "key-after", _request(target=0))
    assert info.value.details["rule"] == "kill_switch"
    assert service.place_order("alice", "key-before", _request()).order == done.order
    assert len(service.ledger.list_orders()) == 1


@pytest.mark.parametrize(
    ("limits", "request_kw", "rule"),
    [
        (
            RiskLimits(
                market_hours="always", max_price_age_sessions=SAMPLE_AGE, max_pair_notional=5_000
            ),
            {},
            "max_pair_notional",
        ),
        (
            RiskLimits(
                market_hours="always", max_price_age_sessions=SAMPLE_AGE, price_band_pct=1.0
            ),
            {"expected_prices": {"KO": 1.0}},
            "price_band",
        ),
    ],
)
def test_risk_rules_reject_and_name_the_rule(
    price_store, tmp_path, limits, request_kw, rule
) -> None:
    service = _service(price_store, tmp_path, limits=limits)
    outcome = service.place_order("alice", "key-risk", _request(**request_kw))
    assert outcome.order.status == "rejected" and outcome.order.rule == rule
    assert rule in outcome.order.reason
    assert service.ledger.list_fills() == [] and service.ledger.positions() == []
    assert service.ledger.pair_holder("m-ko-pep") is None


def test_total_notional_and_open_pairs_limits(price_store, tmp_path) -> None:
    service = _service(
        price_store,
        tmp_path,
        limits=RiskLimits(
            market_hours="always", max_price_age_sessions=SAMPLE_AGE, max_total_notional=15_000
        ),
    )
    assert service.place_order("a", "key-p1", _request()).order.status == "filled"
    second = service.place_order("a", "key-p2", _request(model="m-xom-cvx"))
    assert second.order.rule == "max_total_notional"
    service.limits = RiskLimits(
        market_hours="always", max_price_age_sessions=SAMPLE_AGE, max_open_pairs=1
    )
    third = service.place_order("a", "key-p3", _request(model="m-xom-cvx"))
    assert third.order.rule == "max_open_pairs"
    closing = service.place_order("a", "key-p4", _request(target=0))
    assert closing.order.status == "filled"  # reducing risk is never blocked


def test_market_hours_policy(price_store, tmp_path) -> None:
    saturday = datetime(2024, 6, 8, 15, 0, tzinfo=UTC).timestamp()
    service = _service(
        price_store,
        tmp_path,
        limits=RiskLimits(market_hours="regular", max_price_age_sessions=SAMPLE_AGE),
        clock=lambda: saturday,
    )
    outcome = service.place_order("alice", "key-weekend", _request())
    assert outcome.order.rule == "market_hours"
    # 09:30 New York is 13:30 UTC in summer (EDT) and 14:30 UTC in winter (EST).
    assert market_open(datetime(2024, 6, 10, 13, 30, tzinfo=UTC))
    assert not market_open(datetime(2024, 6, 10, 13, 29, tzinfo=UTC))
    assert market_open(datetime(2024, 1, 8, 14, 30, tzinfo=UTC))
    assert not market_open(datetime(2024, 1, 8, 14, 29, tzinfo=UTC))
    assert not market_open(datetime(2024, 1, 8, 21, 0, tzinfo=UTC))
    assert new_york_time(datetime(2024, 3, 10, 7, 0, tzinfo=UTC)).hour == 3  # DST starts
    # An exchange holiday on a weekday: Independence Day 2024, 11:00 New York.
    holiday = datetime(2024, 7, 4, 15, 0, tzinfo=UTC).timestamp()
    service.clock = lambda: holiday
    assert service.place_order("alice", "key-holiday", _request()).order.rule == "market_hours"


def test_stale_prices_are_refused_before_anything_is_recorded(price_store, tmp_path) -> None:
    last = latest_prices(open_store(price_store), "KO", n=1).last_date
    assert last == "2022-12-28"  # a Wednesday; sessions follow on 29 and 30 December
    one_session = datetime(2022, 12, 29, 21, 0, tzinfo=UTC).timestamp()  # 16:00 EST close
    # Monday 2 January 2023 is a holiday (New Year observed): still 2 sessions old.
    two_sessions = datetime(2023, 1, 2, 18, 0, tzinfo=UTC).timestamp()
    limits = RiskLimits(market_hours="always", max_price_age_sessions=1)
    service = _service(price_store, tmp_path, limits=limits, clock=lambda: two_sessions)
    with pytest.raises(StalePricesError) as refused:
        service.place_order("alice", "key-stale", _request())
    assert refused.value.details["age_sessions"] == 2
    assert refused.value.details["last_date"] == "2022-12-28"
    assert refused.value.details["latest_session"] == "2022-12-30"
    assert service.ledger.list_orders() == [] and service.ledger.positions() == []
    service.clock = lambda: one_session
    assert service.place_order("alice", "key-fresh", _request()).order.status == "filled"


def test_retired_model_is_close_only_and_read_from_the_store(price_store, tmp_path) -> None:
    from titan_lib.core.model_registry import Retirement

    markers: dict[str, Retirement] = {}
    service = _service(price_store, tmp_path, retirement_of=markers.get)
    assert service.place_order("a", "open-1", _request(target=1)).order.status == "filled"
    markers["m-ko-pep"] = Retirement("m-ko-pep", "2026-11-30T00:00:00+00:00", "decayed")
    before = (service.ledger.list_orders(), service.ledger.positions())
    for key, request in [
        ("flip-1", _request(target=-1)),
        ("more-1", _request(target=1, notional=20_000.0)),
    ]:
        with pytest.raises(ModelRetiredError) as refused:
            service.place_order("a", key, request)
        assert refused.value.details == {
            "model_id": "m-ko-pep",
            "retired_at": "2026-11-30T00:00:00+00:00",
            "reason": "decayed",
        }
        assert "decayed" in refused.value.message
    assert (service.ledger.list_orders(), service.ledger.positions()) == before
    reduced = service.place_order("a", "reduce-1", _request(target=1, notional=4_000.0))
    assert reduced.order.status == "filled"
    closed = service.place_order("a", "close-1", _request(target=0))
    assert closed.order.status == "filled"
    assert all(
        abs(p.quantity) < 1e-9 for p in service.ledger.positions() if p.model_id == "m-ko-pep"
    )
    with pytest.raises(ModelRetiredError):  # flat: any new exposure opens it again
        service.place_order("a", "reopen-1", _request(target=1, notional=1_000.0))
    assert service.place_order("a", "other-1", _request(model="m-xom-cvx")).order.status == (
        "filled"
    )


def test_admission_rules_are_checked_again_on_the_locked_position(price_store, tmp_path) -> None:
    """The position can move between the admission and the pair lock (another order on the
    pair): the order is then recorded as rejected, naming the admission rule."""
    from titan_lib.core.model_registry import Retirement

    retired = Retirement("m-ko-pep", "2026-11-30T00:00:00+00:00", "decayed")
    service = _service(price_store, tmp_path, retirement_of=lambda _: retired)
    plan = service.planner
    calls: list[int] = []

    def moving(request, current):  # admission sees a close; the locked plan re-opens
        calls.append(1)
        closing = dataclasses.replace(request, target_position=0)
        return plan(closing if len(calls) == 1 else request, current)

    service.planner = moving
    outcome = service.place_order("a", "race-1", _request(target=1))
    assert outcome.order.status == "rejected" and outcome.order.rule == "model_retired"
    assert service.ledger.positions() == [] and len(calls) == 2


class CrashAfterBroker(SQLiteLedger):
    """A ledger whose first fill write dies, as a process killed after the broker call."""

    crashes = 1

    def record_fill(self, fill):
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("process died")
        return super().record_fill(fill)


def test_crash_between_broker_and_ledger_is_reconciled_not_duplicated(
    price_store, tmp_path
) -> None:
    clock = [datetime(2024, 6, 10, 15, 0, tzinfo=UTC).timestamp()]
    ledger = CrashAfterBroker(tmp_path / "ledger.sqlite")
    broker = PaperBroker(open_store(price_store), slippage_bps=5)
    submitted = []
    original_submit = broker.submit
    broker.submit = lambda cid, legs: submitted.append(cid) or original_submit(cid, legs)  # type: ignore[method-assign]
    service = _service(
        price_store,
        tmp_path,
        ledger=ledger,
        broker=broker,
        clock=lambda: clock[0],
        lease_seconds=60,
        wait_seconds=0.2,
    )
    with pytest.raises(RuntimeError, match="process died"):
        service.place_order("alice", "key-crash", _request())
    pending = ledger.list_orders()[0]
    assert pending.status == "pending" and pending.submitted and pending.legs
    assert ledger.list_fills() == [] and ledger.pair_holder("m-ko-pep") is not None
    # A retry before the lease ends waits, then returns the order still pending.
    assert service.place_order("alice", "key-crash", _request()).order.status == "pending"
    # After the lease, a retry of the same key reconciles from the broker's records.
    clock[0] += 3600
    settled = service.place_order("alice", "key-crash", _request()).order
    assert settled.status == "filled" and settled.order_id == pending.order_id
    assert submitted == [pending.client_order_id]  # the broker was called once
    fills = ledger.list_fills()
    assert len(fills) == 1
    assert fills[0].legs == broker.lookup(pending.client_order_id, pending.legs).legs
    assert {p.symbol: p.quantity for p in ledger.positions()} == {
        leg.symbol: leg.quantity for leg in fills[0].legs
    }
    assert ledger.pair_holder("m-ko-pep") is None


def test_stale_lock_of_a_crashed_order_is_reconciled_by_the_next_order(
    price_store, tmp_path
) -> None:
    clock = [1_700_000_000.0]
    ledger = CrashAfterBroker(tmp_path / "ledger.sqlite")
    service = _service(
        price_store, tmp_path, ledger=ledger, clock=lambda: clock[0], wait_seconds=0.2
    )
    with pytest.raises(RuntimeError):
        service.place_order("alice", "key-first", _request(target=1))
    clock[0] += 3600
    nxt = service.place_order("alice", "key-second", _request(target=0)).order
    assert nxt.status == "filled"
    first = ledger.list_orders()[0]
    assert first.status == "filled"  # settled from the broker before the pair moved on
    assert all(abs(p.quantity) < 1e-6 for p in ledger.positions())
    assert len(ledger.list_fills()) == 2


class UnreachableBroker(PaperBroker):
    def submit(self, client_order_id, legs):
        raise BrokerUnavailableError("broker timed out")

    def lookup(self, client_order_id, legs):
        return None


def test_broker_timeout_stays_pending_then_fails_when_the_broker_never_got_it(
    price_store, tmp_path
) -> None:
    clock = [1_700_000_000.0]
    service = _service(
        price_store,
        tmp_path,
        broker=UnreachableBroker(open_store(price_store)),
        clock=lambda: clock[0],
    )
    outcome = service.place_order("alice", "key-timeout", _request())
    assert outcome.order.status == "pending" and "timed out" in outcome.order.reason
    assert service.reconcile_pending() == []  # not stale yet
    clock[0] += 3600
    settled = service.reconcile_pending()
    assert [o.status for o in settled] == ["failed"]
    assert "never received" in settled[0].reason
    assert service.ledger.pair_holder("m-ko-pep") is None


class PartialBroker(PaperBroker):
    def submit(self, client_order_id, legs):
        super().submit(client_order_id, legs[:1])
        raise BrokerUnavailableError("connection reset after the first leg")


def test_partially_executed_order_records_what_the_broker_did(price_store, tmp_path) -> None:
    clock = [1_700_000_000.0]
    broker = PartialBroker(open_store(price_store))
    service = _service(price_store, tmp_path, broker=broker, clock=lambda: clock[0])
    service.place_order("alice", "key-partial", _request())
    clock[0] += 3600
    [settled] = service.reconcile_pending()
    assert settled.status == "filled" and "partially" in settled.reason
    assert "partially" in service.ledger.get_order(settled.order_id).reason
    [fill] = service.ledger.list_fills()
    assert [leg.symbol for leg in fill.legs] == ["KO"]
    assert isinstance(broker.lookup(settled.client_order_id, settled.legs), Execution)
