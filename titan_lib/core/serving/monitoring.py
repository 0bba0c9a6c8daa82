"""Watching served models: a daily health check, automatic retirement, optional flattening.

:func:`monitor_models` runs after the close, in the Lambda (the ``refresh_signals``
schedule) and on the command line (``titan models monitor``): the same code. For every
served model it

1. checks its health (:func:`titan_lib.core.model_health.check_health`) on the stored
   price tails, with the model's P&L from the ledger
   (:func:`titan_lib.core.serving.marks.pnl_by_model`: realised + unrealised at the last
   stored closes) and staleness against the NYSE calendar;
2. writes one health record per model (:func:`~titan_lib.core.model_health_store.append_health`;
   every run's record is kept);
3. retires a **broken** model with the record's reason
   (:func:`~titan_lib.core.model_registry.retire`, e.g. "breakdown: |z| > 4.0 for 12
   sessions"), which makes it close-only and announces the ``retired`` model event on SNS
   (:mod:`titan_lib.core.model_events`);
4. under the ``flatten`` policy, closes the position of every model retired broken that
   still holds one, through the execution service (every risk rule applies), with the
   idempotency key ``flatten:<model_id>:<UTC day>``: a re-run on the same day replays the
   same order, and a later one finds the pair flat (the target is absolute), so nothing is
   ever closed twice.

A failure of one model (missing prices, a malformed document) is reported for it and
does not stop the others. ``dry_run`` checks and reports without writing anything.

Settings (:meth:`MonitorSettings.from_env`):

``TITAN_BROKEN_MODEL_POLICY``   ``close-only`` (default: a broken model is retired and only
                                closing orders pass) or ``flatten`` (also close it now)
``TITAN_MODEL_MAX_LOSS``        per-model loss limits, ``<model_id>=<currency>`` separated
                                by commas (overrides ``TITAN_HEALTH_MAX_LOSS`` for that model)
``TITAN_HEALTH_*``              thresholds of the criteria
                                (:meth:`~titan_lib.core.model_health.HealthSettings.from_env`)

Standard library only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from titan_lib.core.execution.ledger import Ledger
from titan_lib.core.execution.models import OrderRequest, is_open
from titan_lib.core.execution.service import ExecutionService
from titan_lib.core.model_health import HealthRecord, HealthSettings, check_health
from titan_lib.core.model_health_store import append_health, latest_health
from titan_lib.core.model_registry import list_models, retire, retirement
from titan_lib.core.prices import latest_prices
from titan_lib.core.serving.marks import mark_to_market, pnl_by_model
from titan_lib.exceptions import ParameterError, TitanError
from titan_lib.stores.objects import ObjectStore

BrokenModelPolicy = Literal["close-only", "flatten"]
BROKEN_MODEL_POLICIES: tuple[BrokenModelPolicy, ...] = ("close-only", "flatten")
MONITOR_PRINCIPAL = "titan-monitor"
"""The principal the monitor's closing orders are placed as."""
FLATTEN_NOTIONAL = 1.0
"""Notional of a flattening order: any positive amount, the target (flat) has no size."""


@dataclass(frozen=True)
class MonitorSettings:
    """How models are judged and what happens to a broken one.

    Attributes
    ----------
    health
        Thresholds of the health criteria.
    policy
        ``close-only``: a broken model is retired (only orders reducing its position
        pass); ``flatten``: its position is also closed now.
    max_loss
        Per-model loss limits (model id -> currency): the model is broken when its P&L
        falls below ``-max_loss`` (overrides ``health.max_loss`` for that model).
    """

    health: HealthSettings = field(default_factory=HealthSettings)
    policy: BrokenModelPolicy = "close-only"
    max_loss: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.policy not in BROKEN_MODEL_POLICIES:
            raise ParameterError(
                f"broken-model policy must be close-only or flatten, got {self.policy!r}"
            )
        for model_id, limit in self.max_loss.items():
            if not (math.isfinite(limit) and limit > 0):
                raise ParameterError(f"loss limit of {model_id} must be a finite number > 0")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorSettings:
        """Settings from ``TITAN_BROKEN_MODEL_POLICY``, ``TITAN_MODEL_MAX_LOSS`` and
        ``TITAN_HEALTH_*`` (see the module docstring)."""
        env = os.environ if environ is None else environ
        policy = (env.get("TITAN_BROKEN_MODEL_POLICY") or "close-only").strip()
        if policy not in BROKEN_MODEL_POLICIES:
            raise ParameterError(
                f"TITAN_BROKEN_MODEL_POLICY must be close-only or flatten, got {policy[:32]!r}"
            )
        limits: dict[str, float] = {}
        for part in (env.get("TITAN_MODEL_MAX_LOSS") or "").split(","):
            if not part.strip():
                continue
            model_id, _, amount = part.partition("=")
            try:
                limits[model_id.strip()] = float(amount)
            except ValueError:
                raise ParameterError(
                    f"TITAN_MODEL_MAX_LOSS entries are <model_id>=<amount>, got {part[:80]!r}"
                ) from None
        return cls(health=HealthSettings.from_env(env), policy=policy, max_loss=limits)  # type: ignore[arg-type]

    def for_model(self, model_id: str) -> HealthSettings:
        """The health settings of one model (its own loss limit when it has one)."""
        limit = self.max_loss.get(model_id)
        return self.health if limit is None else replace(self.health, max_loss=limit)


@dataclass(frozen=True)
class ModelCheck:
    """What the monitor found and did for one model.

    ``state`` is the health state, or ``error`` when the model could not be checked
    (``error`` says why); ``health_key`` the stored record (``None`` in a dry run);
    ``retired`` whether this run retired it; ``flatten`` the closing order
    (``order_id``, ``status``, ``reason``) when one was placed or would be.
    """

    model_id: str
    state: str
    reason: str = ""
    as_of: str | None = None
    record: HealthRecord | None = None
    health_key: str | None = None
    retired: bool = False
    flatten: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "state": self.state,
            "reason": self.reason,
            "as_of": self.as_of,
            "health_key": self.health_key,
            "retired": self.retired,
            "flatten": self.flatten,
            "error": self.error,
        }


@dataclass(frozen=True)
class MonitorReport:
    """The outcome of one monitoring run."""

    checked_at: str
    policy: BrokenModelPolicy
    dry_run: bool
    checks: tuple[ModelCheck, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Models per state (``healthy``, ``warning``, ``broken``, ``error``)."""
        out = {"healthy": 0, "warning": 0, "broken": 0, "error": 0}
        for check in self.checks:
            out[check.state] = out.get(check.state, 0) + 1
        return out

    @property
    def retired(self) -> list[str]:
        """Ids of the models this run retired."""
        return [c.model_id for c in self.checks if c.retired]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at,
            "policy": self.policy,
            "dry_run": self.dry_run,
            "counts": self.counts,
            "retired": self.retired,
            "models": [c.to_dict() for c in self.checks],
        }


def flatten_key(model_id: str, now: datetime) -> str:
    """Idempotency key of the monitor's closing order for a model on a UTC day."""
    return f"flatten:{model_id}:{now.astimezone(UTC).date().isoformat()}"


def _last_close(store: ObjectStore, symbol: str) -> float | None:
    try:
        return latest_prices(store, symbol, n=1).last_close
    except TitanError:
        return None


def _message(exc: Exception) -> str:
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


def monitor_models(
    store: ObjectStore,
    ledger: Ledger | None = None,
    *,
    settings: MonitorSettings | None = None,
    execution: ExecutionService | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> MonitorReport:
    """Check every served model, keep the records, retire broken ones (see module doc).

    Parameters
    ----------
    store
        Where models, price tails, health records and retirement markers live.
    ledger
        Positions for the P&L criteria (and the flatten policy). ``None``: P&L is not
        judged and nothing is flattened.
    settings
        Thresholds and policy (default :meth:`MonitorSettings.from_env`).
    execution
        The execution service the ``flatten`` policy places closing orders with; without
        it a model to flatten is reported, not flattened.
    dry_run
        Check and report only: no record, retirement, event or order.
    now
        Timezone-aware time of the run (default: now); staleness is judged against it.
    """
    settings = settings if settings is not None else MonitorSettings.from_env()
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ParameterError("now must be timezone-aware")
    positions = [] if ledger is None else ledger.positions()
    pnl = pnl_by_model(mark_to_market(positions, lambda s: _last_close(store, s)))
    held = {p.model_id for p in positions if is_open(p.quantity)}
    checks: list[ModelCheck] = []
    for published in list_models(store):
        model_id = published.model.model_id
        try:
            tails = {s: latest_prices(store, s) for s in published.model.symbols}
            record = check_health(
                published.model,
                tails,
                settings=settings.for_model(model_id),
                pnl=None if ledger is None else pnl.get(model_id, 0.0),
                now=now,
                checked_at=now,
            )
        except TitanError as exc:
            checks.append(ModelCheck(model_id, "error", error=_message(exc)))
            continue
        check = ModelCheck(model_id, record.state, record.reason, as_of=record.as_of, record=record)
        if not dry_run:
            try:
                check = replace(check, health_key=append_health(store, record))
                if record.state == "broken":
                    retire(model_id, record.reason, store)
                    check = replace(check, retired=True)
            except TitanError as exc:
                marked = retirement(model_id, store) is not None
                check = replace(check, retired=marked, error=_message(exc))
        checks.append(check)
    if settings.policy == "flatten" and ledger is not None:
        checks = _flatten(store, checks, held, execution, dry_run, now)
    return MonitorReport(
        checked_at=now.astimezone(UTC).isoformat(),
        policy=settings.policy,
        dry_run=dry_run,
        checks=tuple(checks),
    )


def _flatten(
    store: ObjectStore,
    checks: list[ModelCheck],
    held: set[str],
    execution: ExecutionService | None,
    dry_run: bool,
    now: datetime,
) -> list[ModelCheck]:
    """Close the positions of models retired broken (this run or before) that hold one."""
    by_id = {c.model_id: c for c in checks}
    out = list(checks)
    for model_id in sorted(held):
        check = by_id.get(model_id)
        if check is not None:
            if check.state != "broken":
                continue
        else:  # retired earlier: flatten only if it was retired broken
            if retirement(model_id, store) is None:
                continue
            last = latest_health(store, model_id)
            if last is None or last.state != "broken":
                continue
            check = ModelCheck(model_id, "broken", last.reason, as_of=last.as_of, record=last)
            out.append(check)
        key = flatten_key(model_id, now)
        if dry_run or execution is None:
            outcome: dict[str, Any] = {
                "order_id": None,
                "status": "planned",
                "reason": "dry run" if dry_run else "no execution service",
                "idempotency_key": key,
            }
        else:
            try:
                placed = execution.place_order(
                    MONITOR_PRINCIPAL,
                    key,
                    OrderRequest(model_id=model_id, notional=FLATTEN_NOTIONAL, target_position=0),
                ).order
                outcome = {
                    "order_id": placed.order_id,
                    "status": placed.status,
                    "reason": placed.reason,
                    "idempotency_key": key,
                }
            except TitanError as exc:
                outcome = {
                    "order_id": None,
                    "status": "refused",
                    "reason": _message(exc),
                    "idempotency_key": key,
                }
        out[out.index(check)] = replace(check, flatten=outcome)
    return out
