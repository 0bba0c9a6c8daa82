"""Placing orders: idempotency, pair serialisation, risk checks, broker, ledger.

How one order is executed (``ExecutionService.place_order``):

1. The order id and the broker client order id are derived from the principal and the
   Idempotency-Key. If the ledger already holds that order, it is the answer: the same
   body replays it, a different body is refused (:class:`IdempotencyConflictError`); a
   pending one is awaited. Refusals are the domain errors of
   :mod:`titan_lib.core.execution.errors`.
2. The kill switch is read; while on, nothing is recorded and the order is refused.
   The order is *admitted* next, again without recording anything: the model's
   retirement is read from the store (never a cache), the target is planned from the
   current position, and an order that opens or increases exposure on a retired model
   (:class:`ModelRetiredError`) or trades on stale prices (:class:`StalePricesError`) is
   refused, and so is one a limit of the principal's own profile forbids
   (:class:`PrincipalLimitError`, :mod:`titan_lib.core.execution.principals`).
3. The order is *claimed*: written as ``pending`` with a create-only conditional write.
   Of N concurrent requests with one key exactly one claim succeeds; the others wait
   for its outcome and return it.
4. The pair's lease lock is taken (orders on one pair are serialised), the current
   position read, the target planned, the leg deltas computed and the risk rules run
   (the admission rules again, on the settled position). The principal's usage is then
   checked against its limits and updated in one atomic ledger step
   (:meth:`Ledger.reserve_usage`), so concurrent orders of one principal on different
   pairs cannot together exceed them. A refusal marks the order ``rejected`` with the
   rule.
5. The legs are written to the pending order with ``submitted=True`` **before** the
   broker is called, with the derived client order id on every leg.
6. The broker executes; the fill, the position changes and ``filled`` are written in
   one ledger transaction; the pair lock is released.

Crash between 5 and 6 (or a broker timeout): the order stays ``pending`` and keeps the
pair lock until its lease expires. :meth:`ExecutionService.reconcile_order` (run by a
retry of the same key, by the next order on that pair, and by the scheduled reconciler)
asks the broker for the client order id: what it executed is recorded as the fill,
exactly once; if it never arrived the order is marked ``failed``. Nothing is ever
re-submitted by reconciliation, so a crash can lose an order but never duplicate one.
The lease must outlast the longest request (the Lambda timeout), so an order is never
reconciled while its own request is still running.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from titan_lib.core.execution.broker import (
    Broker,
    BrokerRejectedError,
    BrokerUnavailableError,
)
from titan_lib.core.execution.errors import (
    IdempotencyConflictError,
    ModelRetiredError,
    PairBusyError,
    PrincipalLimitError,
    RiskRejectedError,
    StalePricesError,
)
from titan_lib.core.execution.ledger import Ledger, fill_id_for, order_id_for, utc_now_iso
from titan_lib.core.execution.models import Fill, Order, OrderLeg, OrderRequest, is_open
from titan_lib.core.execution.risk import (
    RiskContext,
    RiskLimits,
    check_close_only,
    check_order,
    check_price_age,
    reduces_only,
)
from titan_lib.exceptions import ConflictError, TitanError

if TYPE_CHECKING:
    from titan_lib.core.execution.principals import PrincipalLimits, PrincipalOrder
    from titan_lib.core.model_registry import Retirement


@dataclass(frozen=True)
class TradePlan:
    """Where a pair should be after an order.

    ``target_quantities`` are signed share counts per symbol of the pair; ``prices`` the
    last stored close per symbol used to size them and ``price_dates`` its ISO date;
    ``signal`` the evaluated signal when the target came from the model (``None`` for an
    explicit target).
    """

    target_position: int
    target_quantities: Mapping[str, float]
    prices: Mapping[str, float]
    signal: dict[str, Any] | None = None
    price_dates: Mapping[str, str] = field(default_factory=dict)


class Planner(Protocol):
    """Turns an order request and the pair's current holdings into a :class:`TradePlan`."""

    def __call__(self, request: OrderRequest, current: Mapping[str, float]) -> TradePlan: ...


@dataclass(frozen=True)
class OrderOutcome:
    """The stored order and whether this call created it (``False``: a replay)."""

    order: Order
    created: bool


def _age_seconds(iso: str, now: float) -> float:
    return now - datetime.fromisoformat(iso).timestamp()


def principal_order(
    request: OrderRequest, plan: TradePlan, current: Mapping[str, float]
) -> PrincipalOrder:
    """What the principal rules look at: the order's notional, the target's gross
    notional at the plan's closes, and whether it only reduces the pair's position."""
    from titan_lib.core.execution.principals import PrincipalOrder

    gross = sum(abs(q) * plan.prices.get(s, 0.0) for s, q in plan.target_quantities.items())
    return PrincipalOrder(
        model_id=request.model_id,
        notional=request.notional,
        pair_gross=gross,
        reduces_only=reduces_only(current, plan.target_quantities),
    )


class ExecutionService:
    """Executes pair orders against a ledger and a broker.

    Parameters
    ----------
    ledger, broker
        Where state lives and who trades.
    limits
        Risk limits.
    planner
        Computes the target holdings of a pair (from the signal or an explicit target).
    last_price
        Last stored close of a symbol (used for the notional of other held pairs).
    retirement_of
        The retirement marker of a model read from the store (``None`` while served);
        without it no model counts as retired.
    lease_seconds
        Pair-lock lease; longer than the longest request.
    wait_seconds
        How long a request waits for a busy pair or a concurrent request of its key.
    """

    def __init__(
        self,
        ledger: Ledger,
        broker: Broker,
        limits: RiskLimits,
        planner: Planner,
        last_price: Callable[[str], float],
        lease_seconds: float = 60.0,
        wait_seconds: float = 20.0,
        clock: Callable[[], float] = time.time,
        retirement_of: Callable[[str], Retirement | None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.broker = broker
        self.limits = limits
        self.planner = planner
        self.last_price = last_price
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.retirement_of = retirement_of

    # -- public -----------------------------------------------------------------------

    def place_order(
        self, principal: str, idempotency_key: str, request: OrderRequest
    ) -> OrderOutcome:
        """Execute ``request`` once per ``(principal, idempotency_key)``; see module doc."""
        order_id, client_order_id = order_id_for(principal, idempotency_key)
        fingerprint = request.fingerprint()
        existing = self.ledger.get_order(order_id)
        if existing is not None:
            return OrderOutcome(self._replay(existing, fingerprint), created=False)
        switch = self.ledger.kill_switch()
        if switch.on:
            raise RiskRejectedError(
                "order refused by risk rule kill_switch: "
                + (switch.reason or "the kill switch is on"),
                {"rule": "kill_switch"},
            )
        retired, limits = self._admit(principal, request)
        now = utc_now_iso(self.clock())
        claimed, created = self.ledger.claim_order(
            Order(
                order_id=order_id,
                client_order_id=client_order_id,
                principal=principal,
                request=request,
                request_hash=fingerprint,
                status="pending",
                created_at=now,
                updated_at=now,
                target_position=request.target_position,
            )
        )
        if not created:
            return OrderOutcome(self._replay(claimed, fingerprint), created=False)
        return OrderOutcome(self._execute(claimed, retired, limits), created=True)

    def get_order(self, order_id: str) -> Order | None:
        """The order, reconciled first when it is a stale pending one."""
        order = self.ledger.get_order(order_id)
        if order is not None and self._is_stale(order):
            order = self.reconcile_order(order)
        return order

    def reconcile_order(self, order: Order) -> Order:
        """Settle a pending order from the broker's records (never re-submits)."""
        if order.is_final:
            return order
        try:
            if not order.submitted or not order.legs:
                return self._finish(order, "failed", "never sent to the broker (interrupted)")
            execution = self.broker.lookup(order.client_order_id, order.legs)
            if execution is None:
                return self._finish(order, "failed", "the broker never received it")
            if not execution.complete:
                order = self.ledger.update_order(
                    order.with_changes(reason="partially executed before interruption")
                )
            return self._record(order, execution.legs)
        except ConflictError:
            current = self.ledger.get_order(order.order_id)
            return current if current is not None else order
        finally:
            current = self.ledger.get_order(order.order_id)
            if current is not None and current.is_final:
                self.ledger.release_pair(order.request.model_id, order.order_id)

    def reconcile_pending(self) -> list[Order]:
        """Reconcile every stale pending order; return them as settled."""
        settled = []
        for order in self.ledger.list_orders(status="pending"):
            if self._is_stale(order):
                try:
                    settled.append(self.reconcile_order(order))
                except BrokerUnavailableError:
                    continue
        return settled

    # -- steps ------------------------------------------------------------------------

    def _admit(
        self, principal: str, request: OrderRequest
    ) -> tuple[Retirement | None, PrincipalLimits]:
        """Refuse, before anything is recorded, an order the admission rules forbid.

        Returns the model's retirement marker (``None`` while served) and the principal's
        own limits (empty without a stored profile). A plan that cannot be made here is
        left to :meth:`_execute`, which records the failure.
        """
        from titan_lib.core.execution.principals import (
            PrincipalLimits,
            apply_order,
            check_static,
        )

        retired = None if self.retirement_of is None else self.retirement_of(request.model_id)
        profile = self.ledger.principal_profile(principal)
        limits = PrincipalLimits() if profile is None else profile.limits
        current = {
            p.symbol: p.quantity for p in self.ledger.positions() if p.model_id == request.model_id
        }
        try:
            plan = self.planner(request, current)
        except TitanError:
            return retired, limits
        self._check_admission(plan, current, retired)
        wanted = principal_order(request, plan, current)
        refusal = check_static(limits, principal, wanted)
        if refusal is None:  # a first look; the binding check is atomic, in _execute
            usage = self.ledger.principal_usage(principal)
            refusal = apply_order(usage, limits, wanted, self._day())[1]
        if refusal is not None:
            raise PrincipalLimitError(refusal.message, refusal.details)
        return retired, limits

    def _day(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).date().isoformat()

    def _check_admission(
        self, plan: TradePlan, current: Mapping[str, float], retired: Retirement | None
    ) -> None:
        check_close_only(retired, current, plan.target_quantities)
        check_price_age(self.limits, plan.price_dates, datetime.fromtimestamp(self.clock(), UTC))

    def _is_stale(self, order: Order) -> bool:
        return not order.is_final and (
            _age_seconds(order.updated_at, self.clock()) > self.lease_seconds
        )

    def _replay(self, order: Order, fingerprint: str) -> Order:
        if order.request_hash != fingerprint:
            raise IdempotencyConflictError(
                "this Idempotency-Key was already used with a different request body",
                {"order_id": order.order_id},
            )
        deadline = time.monotonic() + self.wait_seconds
        while not order.is_final and time.monotonic() < deadline:
            if self._is_stale(order):
                return self.reconcile_order(order)
            time.sleep(0.02)
            order = self.ledger.get_order(order.order_id) or order
        return order

    def _finish(self, order: Order, status: str, reason: str, rule: str | None = None) -> Order:
        return self.ledger.update_order(
            order.with_changes(
                status=status, reason=reason, rule=rule, updated_at=utc_now_iso(self.clock())
            )
        )

    def _record(self, order: Order, legs: tuple[Any, ...]) -> Order:
        fill = Fill(
            fill_id=fill_id_for(order.order_id),
            order_id=order.order_id,
            model_id=order.request.model_id,
            legs=legs,
            filled_at=utc_now_iso(self.clock()),
            broker=self.broker.name,
        )
        return self.ledger.record_fill(fill)

    def _acquire_pair(self, order: Order) -> None:
        model_id = order.request.model_id
        deadline = time.monotonic() + self.wait_seconds
        while True:
            holder = self.ledger.pair_holder(model_id)
            if holder is not None and holder[0] != order.order_id and holder[1] < self.clock():
                stale = self.ledger.get_order(holder[0])
                if stale is not None and not stale.is_final:
                    self.reconcile_order(stale)
            if (
                self.ledger.acquire_pair(model_id, order.order_id, self.clock(), self.lease_seconds)
                is None
            ):
                return
            if time.monotonic() >= deadline:
                raise PairBusyError(
                    f"pair of model {model_id} is busy with another order; retry with the "
                    "same Idempotency-Key",
                    {"model_id": model_id},
                )
            time.sleep(0.02)

    def _execute(
        self,
        order: Order,
        retired: Retirement | None = None,
        limits: PrincipalLimits | None = None,
    ) -> Order:
        model_id = order.request.model_id
        try:
            self._acquire_pair(order)
        except PairBusyError as exc:
            return self._finish(order, "failed", exc.message)
        try:
            positions = self.ledger.positions()
            current = {p.symbol: p.quantity for p in positions if p.model_id == model_id}
            try:
                plan = self.planner(order.request, current)
            except TitanError as exc:
                return self._finish(order, "failed", exc.message)
            target = dict(plan.target_quantities)
            legs = tuple(
                OrderLeg(symbol=s, quantity=target.get(s, 0.0) - current.get(s, 0.0))
                for s in sorted(set(target) | set(current))
                if is_open(target.get(s, 0.0) - current.get(s, 0.0))
            )
            prices = dict(plan.prices)
            for p in positions:
                if p.model_id != model_id and is_open(p.quantity) and p.symbol not in prices:
                    try:
                        prices[p.symbol] = self.last_price(p.symbol)
                    except TitanError:
                        continue
            order = order.with_changes(target_position=plan.target_position, signal=plan.signal)
            try:
                self._check_admission(plan, current, retired)
            except (ModelRetiredError, StalePricesError) as exc:
                return self._finish(order, "rejected", exc.message, rule=exc.code)
            try:
                check_order(
                    self.limits,
                    RiskContext(
                        model_id=model_id,
                        target=target,
                        positions=positions,
                        last_prices=prices,
                        expected_prices=order.request.expected_prices,
                        kill_switch=self.ledger.kill_switch(),
                        now=datetime.fromtimestamp(self.clock(), UTC),
                    ),
                )
            except RiskRejectedError as exc:
                return self._finish(order, "rejected", exc.message, rule=exc.details["rule"])
            if not legs:
                return self._finish(order, "unchanged", "the pair is already at the target")
            from titan_lib.core.execution.principals import PrincipalLimits

            _, refusal = self.ledger.reserve_usage(
                order.principal,
                limits or PrincipalLimits(),
                principal_order(order.request, plan, current),
                self._day(),
            )
            if refusal is not None:
                return self._finish(order, "rejected", refusal.message, rule=refusal.rule)
            order = self.ledger.update_order(
                order.with_changes(legs=legs, submitted=True, updated_at=utc_now_iso(self.clock()))
            )
            try:
                execution = self.broker.submit(order.client_order_id, legs)
            except BrokerRejectedError as exc:
                return self._finish(order, "failed", exc.message)
            except BrokerUnavailableError as exc:
                # Outcome unknown: stay pending (and keep the pair) until reconciled.
                return order.with_changes(reason=exc.message)
            return self._record(order, execution.legs)
        finally:
            final = self.ledger.get_order(order.order_id)
            if final is not None and final.is_final:
                self.ledger.release_pair(model_id, order.order_id)
