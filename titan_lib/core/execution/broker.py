"""The broker interface shared by the paper broker and the Alpaca adapter.

A pair order is sent as one broker order per leg, each with the client order id
``<order client id>-<leg index>``. Brokers de-duplicate on that id, so a repeated
submission never trades twice, and :meth:`Broker.lookup` finds what a crashed attempt did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from titan_lib.core.execution.models import FillLeg, OrderLeg
from titan_lib.exceptions import TitanError


class BrokerRejectedError(TitanError):
    """The broker definitively refused the order (4xx): nothing was traded."""

    code = "broker_rejected"


class BrokerUnavailableError(TitanError):
    """The broker timed out or failed (5xx, network): the outcome is unknown."""

    code = "broker_unavailable"


@dataclass(frozen=True)
class Execution:
    """What the broker executed for a pair order: the filled legs (possibly a subset)."""

    legs: tuple[FillLeg, ...]
    complete: bool


@runtime_checkable
class Broker(Protocol):
    """Executes pair orders leg by leg, de-duplicating on client order ids."""

    name: str

    def submit(self, client_order_id: str, legs: Sequence[OrderLeg]) -> Execution:
        """Execute every leg (market orders); return the fills.

        Raises :class:`BrokerRejectedError` (definitive, nothing traded) or
        :class:`BrokerUnavailableError` (outcome unknown: reconcile with :meth:`lookup`).
        """
        ...

    def lookup(self, client_order_id: str, legs: Sequence[OrderLeg]) -> Execution | None:
        """What the broker holds for ``client_order_id``; ``None`` if it never saw it."""
        ...


def leg_client_id(client_order_id: str, index: int) -> str:
    """Client order id of leg ``index`` of a pair order."""
    return f"{client_order_id}-{index}"
