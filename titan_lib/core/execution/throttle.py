"""Per-principal rate limiting: a sliding window of admitted requests, kept in the ledger.

A request of a principal at time ``t`` is admitted when fewer than ``limit`` of its
requests were admitted in the window ``(t - window_seconds, t]``. The ledger keeps, per
principal, the times of the requests admitted within the last window (at most ``limit``
of them) and updates them with one conditional write per admitted request; a refused
request writes nothing (the window itself: :mod:`titan_lib.core.execution.sliding_window`).
Unlike a fixed window, no window edge lets more than ``limit`` requests through in any
``window_seconds``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from titan_lib.core.execution.errors import RateLimitedError
from titan_lib.core.execution.ledger import Ledger
from titan_lib.exceptions import ParameterError


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per principal in any ``window_seconds``."""

    limit: int = 120
    window_seconds: int = 60

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds < 1:
            raise ParameterError("rate limit and window must both be >= 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RateLimit:
        """``TITAN_RATE_LIMIT`` requests per ``TITAN_RATE_WINDOW_SECONDS``."""
        env = os.environ if environ is None else environ
        try:
            return cls(
                limit=int(env.get("TITAN_RATE_LIMIT", cls.limit)),
                window_seconds=int(env.get("TITAN_RATE_WINDOW_SECONDS", cls.window_seconds)),
            )
        except ValueError:
            raise ParameterError(
                "TITAN_RATE_LIMIT and TITAN_RATE_WINDOW_SECONDS must be integers"
            ) from None


def enforce_rate_limit(ledger: Ledger, principal: str, rate: RateLimit, now: float) -> int:
    """Admit one request of ``principal`` at ``now`` (epoch seconds) or refuse it.

    Returns the number of the principal's requests admitted in the window, this one
    included.

    Raises
    ------
    RateLimitedError
        ``rate.limit`` requests were already admitted in the last ``rate.window_seconds``;
        ``retry_after`` is the whole seconds (at least 1) until one of them leaves the
        window.
    """
    outcome = ledger.admit_request(principal, now, rate.limit, rate.window_seconds)
    if not outcome.admitted:
        retry_after = max(1, math.ceil(outcome.retry_after))
        raise RateLimitedError(
            f"rate limit of {rate.limit} requests per {rate.window_seconds}s exceeded; "
            f"retry after {retry_after}s",
            retry_after=retry_after,
            details={"limit": rate.limit, "window_seconds": rate.window_seconds},
        )
    return len(outcome.stamps)
