"""Errors of execution: refused orders, reused idempotency keys, rate limits, busy pairs.

These are domain errors: they name what was refused and why, and know nothing of how a
face reports them. Each has a machine ``code``; the API face maps the classes to its own
responses in one place.
"""

from __future__ import annotations

from typing import Any

from titan_lib.exceptions import ConflictError, TitanError


class OrderRefusedError(TitanError):
    """An order was refused before it reached a broker; ``details["rule"]`` names why."""

    code = "order_refused"


class RiskRejectedError(OrderRefusedError):
    """A risk rule (:mod:`titan_lib.core.execution.risk`) refused the order."""

    code = "risk_rejected"


class ModelRetiredError(OrderRefusedError):
    """The model is retired: orders that open or increase its exposure are refused.

    ``details`` holds ``model_id``, ``retired_at`` and ``reason``; orders that only reduce
    or close the model's position are still accepted (close-only).
    """

    code = "model_retired"


class StalePricesError(OrderRefusedError):
    """The newest stored price of a leg is older than the configured age in sessions."""

    code = "stale_prices"


class PrincipalLimitError(OrderRefusedError):
    """A limit of the principal's own profile refused the order.

    ``details`` hold ``rule`` (``principal_max_gross_notional``, ...), ``principal``,
    ``limit`` and the value that exceeded it
    (:mod:`titan_lib.core.execution.principals`).
    """

    code = "principal_limit"


ADMISSION_ERRORS: dict[str, type[OrderRefusedError]] = {
    ModelRetiredError.code: ModelRetiredError,
    StalePricesError.code: StalePricesError,
}
"""Admission rules by name: re-checked once the pair is locked, they keep their own class."""


def refusal_for(rule: str | None, message: str, details: dict[str, Any]) -> OrderRefusedError:
    """The error of an order stored as ``rejected`` by ``rule``.

    An admission rule (``model_retired``, ``stale_prices``) gives its own class, a
    principal's rule (``principal_...``) a :class:`PrincipalLimitError`; every other rule
    a :class:`RiskRejectedError`.
    """
    if (rule or "").startswith("principal_"):
        return PrincipalLimitError(message, details)
    return ADMISSION_ERRORS.get(rule or "", RiskRejectedError)(message, details)


class IdempotencyConflictError(ConflictError):
    """The Idempotency-Key was used before with a different request body."""

    code = "idempotency_conflict"


class RateLimitedError(TitanError):
    """The principal exceeded its request quota for the current window.

    Parameters
    ----------
    retry_after
        Whole seconds until a request would be admitted again.
    """

    code = "rate_limited"

    def __init__(
        self, message: str, retry_after: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, {**(details or {}), "retry_after": retry_after})
        self.retry_after = retry_after


class PairBusyError(TitanError):
    """Another order holds the pair's lock for longer than a request waits."""

    code = "pair_busy"
