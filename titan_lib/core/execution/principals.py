"""Principals: the callers of the API, each with stored limits and trading preferences.

A principal is the ``sub`` of its bearer token. Its :class:`PrincipalProfile` lives in
the ledger (SQLite or DynamoDB, next to the orders) and holds its own limits
(:class:`PrincipalLimits`) and a free-form ``preferences`` object (a default notional,
a notification channel, ...). A principal without a stored profile has no limits of its
own. The environment's :class:`~titan_lib.core.execution.risk.RiskLimits` stay global
ceilings over the whole book: both are checked, so the tighter one wins.

Rules (each refusal is a :class:`~titan_lib.core.execution.errors.PrincipalLimitError`
naming the rule, the principal and its limit):

``principal_allowed_models``
    The model is not in the principal's ``allowed_models`` (``None``: every model).
``principal_max_order_notional``
    The order's notional (gross of the pair at a full position) exceeds the limit.
``principal_max_gross_notional``
    The principal's gross notional after the order exceeds the limit. A principal's
    exposure on a pair is the gross notional (``sum |shares| * close``) of the last
    target it set on that pair, at the closes it was sized with; its gross is the sum
    over pairs.
``principal_max_open_pairs``
    The number of pairs where the principal's exposure is not zero exceeds the limit.
``principal_max_orders_per_day``
    The principal's orders sent to the broker on the UTC day reach the limit.

An order that only reduces the pair's position (every leg towards zero) is never refused
by a principal rule: limits never stop a principal from closing.

Usage (orders today, exposure per pair) is updated by
:meth:`~titan_lib.core.execution.ledger.Ledger.reserve_usage` with
:func:`apply_order`: the check and the write are one atomic step per principal
(``BEGIN IMMEDIATE`` in SQLite, a versioned conditional put in DynamoDB), so concurrent
orders of one principal cannot together exceed ``max_gross_notional``. The usage is
taken just before the broker is called; an order the broker then refuses still counts
(until the principal's next order on that pair replaces its exposure): limits err on the
safe side.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from titan_lib.core.execution.models import is_open
from titan_lib.exceptions import DataValidationError, ParameterError

PrincipalRule = Literal[
    "principal_allowed_models",
    "principal_max_order_notional",
    "principal_max_gross_notional",
    "principal_max_open_pairs",
    "principal_max_orders_per_day",
]
SUBJECT = re.compile(r"[A-Za-z0-9_.:@\-]{1,128}")
"""What a principal's ``sub`` may hold (a path segment of ``/principals/{sub}``)."""
MODEL_ID = re.compile(r"[0-9a-f]{64}")
MAX_PREFERENCES_BYTES = 4096
"""Largest ``preferences`` object, as compact JSON (UTF-8 bytes)."""
MAX_PREFERENCES_DEPTH = 4
"""Deepest nesting of objects and arrays inside ``preferences``."""
MAX_PREFERENCE_KEY = 64
MAX_ALLOWED_MODELS = 500
_NOTIONAL_TOLERANCE = 1e-9


def check_subject(subject: str) -> str:
    """``subject`` if it is a valid principal name, else :class:`ParameterError`."""
    if not isinstance(subject, str) or not SUBJECT.fullmatch(subject):
        raise ParameterError(
            f"a principal is 1 to 128 characters of A-Z a-z 0-9 _ . : @ -, got "
            f"{str(subject)[:40]!r}",
            {"principal": str(subject)[:128]},
        )
    return subject


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _check_preference_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and not value.isprintable():
            raise ParameterError(f"preference {where} must not hold control characters")
        return
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ParameterError(f"preference {where} must be a finite number")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_preference_value(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not 1 <= len(key) <= MAX_PREFERENCE_KEY:
                raise ParameterError(
                    f"preference keys are 1 to {MAX_PREFERENCE_KEY} characters; "
                    f"{where} has {str(key)[:40]!r}"
                )
            if not key.isprintable():
                raise ParameterError(f"preference key in {where} holds control characters")
            _check_preference_value(item, f"{where}.{key}")
        return
    raise ParameterError(f"preference {where} must be JSON, got {type(value).__name__}")


def check_preferences(preferences: Any) -> dict[str, Any]:
    """A valid ``preferences`` object, else :class:`ParameterError` saying what is wrong.

    A JSON object of at most :data:`MAX_PREFERENCES_BYTES` bytes (compact JSON) nested at
    most :data:`MAX_PREFERENCES_DEPTH` deep, with keys of 1 to 64 printable characters,
    finite numbers and strings without control characters.
    """
    if not isinstance(preferences, dict):
        raise ParameterError("preferences must be a JSON object")
    _check_preference_value(preferences, "preferences")
    depth = _depth(preferences)
    if depth > MAX_PREFERENCES_DEPTH:
        raise ParameterError(
            f"preferences are nested {depth} deep; at most {MAX_PREFERENCES_DEPTH} allowed"
        )
    size = len(json.dumps(preferences, separators=(",", ":")).encode())
    if size > MAX_PREFERENCES_BYTES:
        raise ParameterError(
            f"preferences take {size} bytes as JSON; at most {MAX_PREFERENCES_BYTES} allowed"
        )
    return dict(preferences)


@dataclass(frozen=True)
class PrincipalLimits:
    """A principal's own limits; ``None``: no limit of its own (the global ceilings apply).

    Attributes
    ----------
    max_order_notional
        Largest order notional (currency; the pair's gross at a full position).
    max_gross_notional
        Largest gross notional over the principal's pairs (currency).
    max_open_pairs
        Most pairs with exposure at once.
    max_orders_per_day
        Most orders sent to the broker per UTC day.
    allowed_models
        Model ids the principal may trade (``None``: every model).
    """

    max_order_notional: float | None = None
    max_gross_notional: float | None = None
    max_open_pairs: int | None = None
    max_orders_per_day: int | None = None
    allowed_models: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("max_order_notional", "max_gross_notional"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ParameterError(f"limit {name} must be a finite number > 0", {"limit": name})
        for name in ("max_open_pairs", "max_orders_per_day"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ParameterError(f"limit {name} must be a whole number >= 0", {"limit": name})
        if self.allowed_models is not None:
            # one spelling of a set of models: sorted, without repeats
            object.__setattr__(self, "allowed_models", tuple(sorted(set(self.allowed_models))))
            if len(self.allowed_models) > MAX_ALLOWED_MODELS:
                raise ParameterError(f"allowed_models lists at most {MAX_ALLOWED_MODELS} models")
            for model_id in self.allowed_models:
                if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id):
                    raise ParameterError(
                        f"allowed_models holds {str(model_id)[:70]!r}, not a model id "
                        "(64 hex characters)",
                        {"limit": "allowed_models"},
                    )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``allowed_models`` is ``"all"`` when every model is allowed."""
        return {
            "max_order_notional": self.max_order_notional,
            "max_gross_notional": self.max_gross_notional,
            "max_open_pairs": self.max_open_pairs,
            "max_orders_per_day": self.max_orders_per_day,
            "allowed_models": "all" if self.allowed_models is None else sorted(self.allowed_models),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PrincipalLimits:
        """Parse :meth:`to_dict` output (absent or ``null`` fields: no limit)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ParameterError(f"unknown limit(s) {', '.join(unknown)}", {"fields": unknown})
        models = doc.get("allowed_models")
        if models == "all":
            models = None
        elif models is not None and not isinstance(models, list | tuple):
            raise ParameterError('allowed_models must be a list of model ids or "all"')
        return cls(
            max_order_notional=_float_or_none(doc.get("max_order_notional")),
            max_gross_notional=_float_or_none(doc.get("max_gross_notional")),
            max_open_pairs=doc.get("max_open_pairs"),
            max_orders_per_day=doc.get("max_orders_per_day"),
            allowed_models=None if models is None else tuple(sorted(set(models))),
        )


def _float_or_none(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass(frozen=True)
class PrincipalProfile:
    """What is stored for a principal: its limits, preferences and who set them when."""

    subject: str
    limits: PrincipalLimits = field(default_factory=PrincipalLimits)
    preferences: dict[str, Any] = field(default_factory=dict)
    updated_at: str = ""
    updated_by: str = ""

    def __post_init__(self) -> None:
        check_subject(self.subject)
        check_preferences(self.preferences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.subject,
            "limits": self.limits.to_dict(),
            "preferences": self.preferences,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PrincipalProfile:
        try:
            return cls(
                subject=str(doc["principal"]),
                limits=PrincipalLimits.from_dict(doc.get("limits") or {}),
                preferences=dict(doc.get("preferences") or {}),
                updated_at=str(doc.get("updated_at", "")),
                updated_by=str(doc.get("updated_by", "")),
            )
        except (KeyError, TypeError, ParameterError) as exc:
            raise DataValidationError(f"stored principal profile is malformed: {exc}") from None


@dataclass(frozen=True)
class PrincipalUsage:
    """A principal's usage: orders sent on ``day`` (UTC) and exposure per pair (currency).

    Attributes
    ----------
    day
        ISO date (UTC) ``orders_today`` counts.
    orders_today
        Orders sent to the broker on ``day``.
    exposure
        Gross notional of the last target the principal set per model id.
    """

    subject: str
    day: str = ""
    orders_today: int = 0
    exposure: dict[str, float] = field(default_factory=dict)

    @property
    def gross_notional(self) -> float:
        """Sum of the exposure over pairs."""
        return math.fsum(self.exposure.values())

    @property
    def open_pairs(self) -> int:
        """Pairs with exposure."""
        return sum(1 for gross in self.exposure.values() if gross > 0.0)

    def on(self, day: str) -> PrincipalUsage:
        """The usage as seen on ``day``: the order count restarts on a new day."""
        return self if day == self.day else replace(self, day=day, orders_today=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "principal": self.subject,
            "day": self.day,
            "orders_today": self.orders_today,
            "gross_notional": self.gross_notional,
            "open_pairs": self.open_pairs,
            "exposure": dict(sorted(self.exposure.items())),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PrincipalUsage:
        return cls(
            subject=str(doc["principal"]),
            day=str(doc.get("day", "")),
            orders_today=int(doc.get("orders_today", 0)),
            exposure={str(k): float(v) for k, v in (doc.get("exposure") or {}).items()},
        )


@dataclass(frozen=True)
class PrincipalOrder:
    """What the principal rules look at for one order.

    ``pair_gross`` is the gross notional of the pair's target (``sum |shares| * close``);
    ``reduces_only`` whether the order only moves the pair's legs towards zero.
    """

    model_id: str
    notional: float
    pair_gross: float
    reduces_only: bool


@dataclass(frozen=True)
class Refusal:
    """A principal rule's refusal: the rule, a sentence, and the values behind it."""

    rule: PrincipalRule
    message: str
    details: dict[str, Any]


def _refusal(rule: PrincipalRule, subject: str, text: str, limit: Any, **values: Any) -> Refusal:
    name = rule.removeprefix("principal_")
    return Refusal(
        rule,
        f"order refused by risk rule {rule}: {text} (principal {subject}'s {name} is "
        f"{limit if not isinstance(limit, float) else format(limit, ',.2f')})",
        {"rule": rule, "principal": subject, "limit": limit, **values},
    )


def check_static(limits: PrincipalLimits, subject: str, order: PrincipalOrder) -> Refusal | None:
    """The rules that need no usage: ``allowed_models`` and ``max_order_notional``."""
    if order.reduces_only:
        return None
    allowed = limits.allowed_models
    if allowed is not None and order.model_id not in allowed:
        return _refusal(
            "principal_allowed_models",
            subject,
            f"model {order.model_id} is not among the {len(allowed)} model(s) allowed",
            sorted(allowed),
            model_id=order.model_id,
        )
    cap = limits.max_order_notional
    if cap is not None and order.notional > cap + _NOTIONAL_TOLERANCE:
        return _refusal(
            "principal_max_order_notional",
            subject,
            f"notional {order.notional:,.2f} exceeds the limit",
            cap,
            notional=order.notional,
        )
    return None


def apply_order(
    usage: PrincipalUsage, limits: PrincipalLimits, order: PrincipalOrder, day: str
) -> tuple[PrincipalUsage, Refusal | None]:
    """The principal's usage after ``order`` on ``day``, or the rule that refuses it.

    Pure: the ledgers run it inside their atomic read-check-write of the usage, and
    write the new usage only when nothing refuses. An order that only reduces the pair's
    position is never refused (it is still counted).
    """
    current = usage.on(day)
    refusal = check_static(limits, usage.subject, order)
    if refusal is not None:
        return current, refusal
    exposure = dict(current.exposure)
    before_gross, before_pairs = current.gross_notional, current.open_pairs
    if is_open(order.pair_gross):
        exposure[order.model_id] = order.pair_gross
    else:
        exposure.pop(order.model_id, None)
    after = replace(current, orders_today=current.orders_today + 1, exposure=exposure)
    if not order.reduces_only:
        cap = limits.max_orders_per_day
        if cap is not None and current.orders_today >= cap:
            return current, _refusal(
                "principal_max_orders_per_day",
                usage.subject,
                f"{current.orders_today} orders were already sent on {day}",
                cap,
                orders_today=current.orders_today,
            )
        gross_cap = limits.max_gross_notional
        gross = after.gross_notional
        if (
            gross_cap is not None
            and gross > gross_cap + _NOTIONAL_TOLERANCE
            and gross > before_gross + _NOTIONAL_TOLERANCE
        ):
            return current, _refusal(
                "principal_max_gross_notional",
                usage.subject,
                f"gross {gross:,.2f} after the order exceeds the limit",
                gross_cap,
                gross=gross,
            )
        pairs_cap = limits.max_open_pairs
        if pairs_cap is not None and after.open_pairs > max(pairs_cap, before_pairs):
            return current, _refusal(
                "principal_max_open_pairs",
                usage.subject,
                f"{after.open_pairs} open pairs after the order exceed the limit",
                pairs_cap,
                open_pairs=after.open_pairs,
            )
    return after, None


def effective_limits(limits: PrincipalLimits, ceilings: Any) -> dict[str, Any]:
    """The limits that bind a principal: its own or the global ceiling, the tighter.

    ``ceilings`` is the environment's :class:`~titan_lib.core.execution.risk.RiskLimits`:
    ``max_pair_notional`` caps one order's pair, ``max_total_notional`` the gross and
    ``max_open_pairs`` the pairs (over the whole book).
    """

    def tighter(own: float | None, ceiling: float) -> float:
        return ceiling if own is None else min(own, ceiling)

    return {
        "max_order_notional": tighter(limits.max_order_notional, ceilings.max_pair_notional),
        "max_gross_notional": tighter(limits.max_gross_notional, ceilings.max_total_notional),
        "max_open_pairs": int(tighter(limits.max_open_pairs, ceilings.max_open_pairs)),
        "max_orders_per_day": limits.max_orders_per_day,
        "allowed_models": "all" if limits.allowed_models is None else sorted(limits.allowed_models),
    }
