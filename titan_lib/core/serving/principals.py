"""The API's document of a principal: its profile, the limits that bind it, its usage.

``GET /me`` and ``GET /principals/{sub}`` return it (the ``Principal`` schema of
``lambdas/openapi.yaml``); ``titan principals show`` prints it. Standard library only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from titan_lib.core.execution.ledger import Ledger
from titan_lib.core.execution.principals import PrincipalProfile, effective_limits
from titan_lib.core.execution.risk import RiskLimits


def principal_document(
    ledger: Ledger, subject: str, ceilings: RiskLimits, now: float
) -> dict[str, Any]:
    """The principal's stored profile, effective limits and usage on the UTC day of ``now``.

    Parameters
    ----------
    ledger
        Where profiles and usage are stored.
    subject
        The principal (a token's ``sub``).
    ceilings
        The global limits (the environment's); the tighter of each pair binds.
    now
        Seconds since the epoch; ``usage.orders_today`` counts that UTC day.
    """
    stored = ledger.principal_profile(subject)
    profile = stored or PrincipalProfile(subject)
    day = datetime.fromtimestamp(now, UTC).date().isoformat()
    usage = ledger.principal_usage(subject).on(day)
    return {
        "principal": subject,
        "stored": stored is not None,
        "limits": profile.limits.to_dict(),
        "effective_limits": effective_limits(profile.limits, ceilings),
        "preferences": profile.preferences,
        "updated_at": profile.updated_at or None,
        "updated_by": profile.updated_by or None,
        "usage": usage.to_dict(),
    }
