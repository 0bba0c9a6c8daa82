"""The sliding window of a rate limit: which request times still count, and admitting one.

A pure function over the admission times a ledger stores per principal
(:meth:`~titan_lib.core.execution.ledger.Ledger.admit_request`); the limit itself is
:mod:`titan_lib.core.execution.throttle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Admission:
    """Outcome of one request against a principal's window.

    ``stamps`` are the admission times (epoch seconds, ascending) to store when
    ``admitted``; otherwise ``retry_after`` is the seconds until the oldest one leaves the
    window.
    """

    admitted: bool
    stamps: tuple[float, ...]
    retry_after: float = 0.0


def admit(stamps: Sequence[float], now: float, limit: int, window_seconds: float) -> Admission:
    """Slide the window of admission times ``stamps`` to ``now`` and try to admit one more.

    Times outside ``(now - window_seconds, now]`` are dropped; times after ``now`` (a
    clock behind another writer's) are kept, so they still count.
    """
    recent = sorted(s for s in stamps if s > now - window_seconds)
    if len(recent) >= limit:
        oldest = recent[len(recent) - limit]
        return Admission(False, tuple(recent), oldest + window_seconds - now)
    return Admission(True, (*recent, now))
