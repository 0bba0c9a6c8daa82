"""Model objects of execution: orders, fills and positions.

Conventions: quantities are signed share counts (``+`` buys/long, ``-`` sells/short);
prices are in the stored currency per share; ``cash`` is the signed cash flow of the
trades (negative when buying). Timestamps are ISO-8601 UTC strings. Every object maps to
and from plain JSON-ready dicts (:meth:`to_dict` / :meth:`from_dict`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

OrderStatus = Literal["pending", "filled", "unchanged", "rejected", "failed"]
"""``pending``: claimed, possibly sent to the broker; ``filled``: the fill is recorded;
``unchanged``: the pair was already at the target (nothing traded); ``rejected``: a risk
rule refused it; ``failed``: the broker refused it or never received it."""

FINAL_STATUSES: frozenset[str] = frozenset({"filled", "unchanged", "rejected", "failed"})
TargetPosition = Literal[-1, 0, 1]

QUANTITY_TOLERANCE = 1e-9
"""Shares below which a quantity (a position, a leg, an order's change) counts as zero.

Order quantities are rounded to 6 decimals; adding them in floating point can leave a
residue far below a millionth of a share, which must not count as a held position."""


def is_open(quantity: float) -> bool:
    """Whether ``quantity`` shares is a holding (or a trade), not a floating-point residue."""
    return abs(quantity) > QUANTITY_TOLERANCE


@dataclass(frozen=True)
class OrderLeg:
    """One symbol of a pair order: a signed share quantity."""

    symbol: str
    quantity: float

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "quantity": self.quantity}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OrderLeg:
        return cls(symbol=str(data["symbol"]), quantity=float(data["quantity"]))


@dataclass(frozen=True)
class OrderRequest:
    """What a client asked for: move a model's pair to a target for a notional.

    Parameters
    ----------
    model_id
        The published SignalModel whose pair is traded.
    notional
        Gross notional of the pair at a full (+1/-1) position, in currency.
    target_position
        ``+1`` long the spread, ``-1`` short, ``0`` flat; ``None`` takes the model's current
        signal.
    expected_prices
        Optional prices the client expects per symbol; each must lie in the sanity band
        around the last stored price.
    """

    model_id: str
    notional: float
    target_position: int | None = None
    expected_prices: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "notional": self.notional,
            "target_position": self.target_position,
            "expected_prices": dict(sorted(self.expected_prices.items())),
        }

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the request (same body -> same fingerprint)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Order:
    """A pair order as kept in the ledger. ``order_id`` is derived from the idempotency key."""

    order_id: str
    client_order_id: str
    principal: str
    request: OrderRequest
    request_hash: str
    status: OrderStatus
    created_at: str
    updated_at: str
    target_position: int | None = None
    legs: tuple[OrderLeg, ...] = ()
    submitted: bool = False
    reason: str | None = None
    rule: str | None = None
    fill_id: str | None = None
    signal: dict[str, Any] | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def with_changes(self, **changes: Any) -> Order:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "principal": self.principal,
            "request": self.request.to_dict(),
            "request_hash": self.request_hash,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "target_position": self.target_position,
            "legs": [leg.to_dict() for leg in self.legs],
            "submitted": self.submitted,
            "reason": self.reason,
            "rule": self.rule,
            "fill_id": self.fill_id,
            "signal": self.signal,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        req = data["request"]
        return cls(
            order_id=str(data["order_id"]),
            client_order_id=str(data["client_order_id"]),
            principal=str(data["principal"]),
            request=OrderRequest(
                model_id=str(req["model_id"]),
                notional=float(req["notional"]),
                target_position=(
                    None if req.get("target_position") is None else int(req["target_position"])
                ),
                expected_prices={
                    str(k): float(v) for k, v in (req.get("expected_prices") or {}).items()
                },
            ),
            request_hash=str(data["request_hash"]),
            status=data["status"],
            created_at=str(data["created_at"]),
            updated_at=str(data["updated_at"]),
            target_position=(
                None if data.get("target_position") is None else int(data["target_position"])
            ),
            legs=tuple(OrderLeg.from_dict(leg) for leg in data.get("legs") or ()),
            submitted=bool(data.get("submitted", False)),
            reason=data.get("reason"),
            rule=data.get("rule"),
            fill_id=data.get("fill_id"),
            signal=data.get("signal"),
        )

    def public_dict(self) -> dict[str, Any]:
        """The order as the API shows it (no request hash)."""
        doc = self.to_dict()
        doc.pop("request_hash")
        return doc


@dataclass(frozen=True)
class FillLeg:
    """The execution of one leg: signed quantity at an average price."""

    symbol: str
    quantity: float
    price: float
    broker_order_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "quantity": self.quantity,
            "price": self.price,
            "broker_order_id": self.broker_order_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FillLeg:
        return cls(
            symbol=str(data["symbol"]),
            quantity=float(data["quantity"]),
            price=float(data["price"]),
            broker_order_id=str(data.get("broker_order_id", "")),
        )


@dataclass(frozen=True)
class Fill:
    """The execution of a whole pair order (one fill per order, one leg per symbol)."""

    fill_id: str
    order_id: str
    model_id: str
    legs: tuple[FillLeg, ...]
    filled_at: str
    broker: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "fill_id": self.fill_id,
            "order_id": self.order_id,
            "model_id": self.model_id,
            "legs": [leg.to_dict() for leg in self.legs],
            "filled_at": self.filled_at,
            "broker": self.broker,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fill:
        return cls(
            fill_id=str(data["fill_id"]),
            order_id=str(data["order_id"]),
            model_id=str(data["model_id"]),
            legs=tuple(FillLeg.from_dict(leg) for leg in data["legs"]),
            filled_at=str(data["filled_at"]),
            broker=str(data["broker"]),
        )


@dataclass(frozen=True)
class Position:
    """Holdings of one symbol within one model's pair.

    ``quantity`` is the signed share count; ``cash`` the signed cash flow of all fills
    (``-quantity * price`` summed), so the mark-to-market P&L at price ``p`` is
    ``cash + quantity * p``.
    """

    model_id: str
    symbol: str
    quantity: float
    cash: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "symbol": self.symbol,
            "quantity": self.quantity,
            "cash": self.cash,
        }


@dataclass(frozen=True)
class KillSwitch:
    """The kill switch: while ``on``, every new order is refused."""

    on: bool
    reason: str = ""
    updated_by: str = ""
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "on": self.on,
            "reason": self.reason,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }
