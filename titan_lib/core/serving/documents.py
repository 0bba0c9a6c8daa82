"""The API's documents of a served model: its summary and its signal.

Both are plain JSON-ready dicts; their fields are the ``ModelSummary`` and ``Signal``
schemas of ``lambdas/openapi.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from titan_lib.core.evaluate import Signal
from titan_lib.core.model_registry import Retirement
from titan_lib.core.signal_model import SignalModel

if TYPE_CHECKING:
    from titan_lib.core.model_health import HealthRecord


def health_summary(record: HealthRecord | None) -> dict[str, Any] | None:
    """The latest health check as listed: state, reason, dates (``None``: never checked)."""
    if record is None:
        return None
    return {
        "state": record.state,
        "reason": record.reason,
        "as_of": record.as_of,
        "checked_at": record.checked_at,
    }


def model_summary(model: SignalModel, health: HealthRecord | None = None) -> dict[str, Any]:
    """What ``GET /models`` lists for a model; ``health`` is its latest health record."""
    return {
        "model_id": model.model_id,
        "y": model.y,
        "x": model.x,
        "beta": model.beta,
        "alpha": model.alpha,
        "transform": model.transform,
        "zscore_method": model.zscore.method,
        "entry": model.rules.entry,
        "exit": model.rules.exit,
        "gated": model.gate is not None,
        "fit_start": model.fit.start,
        "fit_end": model.fit.end,
        "approval": _approval_summary(model),
        "health": health_summary(health),
    }


def _approval_summary(model: SignalModel) -> dict[str, Any] | None:
    """The publish gate's verdict as listed: status, failed criteria, any override.

    ``None`` for a model published before the gate existed (its document has no verdict).
    """
    approval = model.approval
    if approval is None:
        return None
    override = approval.override
    return {
        "status": approval.status,
        "summary": approval.describe(),
        "failed": [c.name for c in approval.failed],
        "override": None
        if override is None
        else {"reason": override.reason, "by": override.by, "at": override.at},
    }


def signal_document(
    model: SignalModel, signal: Signal, retired: Retirement | None = None
) -> dict[str, Any]:
    """The signal document of ``model``: z-score, action, target, gate and status.

    ``status`` is ``served``, or ``retired`` when ``retired`` (the model's retirement
    marker) is given; a retired model is close-only.
    """
    return {
        "model_id": signal.model_id,
        "as_of": signal.as_of,
        "y": model.y,
        "x": model.x,
        "beta": model.beta,
        "zscore": signal.zscore,
        "spread": signal.spread,
        "action": signal.action,
        "reason": signal.reason,
        "explanation": signal.explanation,
        "target_position": signal.position,
        "previous_position": signal.previous_position,
        "regime": signal.regime,
        "gate": signal.gate,
        "prices": signal.prices,
        "status": "served" if retired is None else "retired",
        "retirement": None
        if retired is None
        else {"retired_at": retired.retired_at, "reason": retired.reason},
    }
