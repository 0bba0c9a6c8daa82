"""Per-principal rate limiting: a fixed window counted in the ledger store.

Window ``w`` covers ``[w * window_seconds, (w + 1) * window_seconds)`` seconds since the
epoch. Each request adds one to the principal's counter of the current window (an atomic
increment in the ledger); above ``limit`` the request is refused until the window ends.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from titan_lib.core.execution.ledger import Ledger
from titan_lib.core.http_errors import RateLimitedError
from titan_lib.exceptions import ParameterError


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests per principal per ``window_seconds``."""

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
    """Count one request of ``principal`` at ``now`` (epoch seconds); return the count.

    Raises
    ------
    RateLimitedError
        The count exceeds ``rate.limit``; ``retry_after`` is the whole seconds (at least
        1) until the window ends.
    """
    window_start = int(now // rate.window_seconds) * rate.window_seconds
    count = ledger.count_request(principal, window_start, rate.window_seconds)
    if count > rate.limit:
        retry_after = max(1, math.ceil(window_start + rate.window_seconds - now))
        raise RateLimitedError(
            f"rate limit of {rate.limit} requests per {rate.window_seconds}s exceeded; "
            f"retry after {retry_after}s",
            retry_after=retry_after,
            details={"limit": rate.limit, "window_seconds": rate.window_seconds},
        )
    return count
