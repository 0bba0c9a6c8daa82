"""Risk checks run before any order reaches a broker. Each refusal names its rule.

Admission rules, checked before an order is recorded (a refusal writes nothing), and again
on the settled position once the pair is locked:

``model_retired``
    The model is retired: only orders that reduce or close its position (every leg moves
    towards zero without crossing it) are accepted (:func:`check_close_only`).
``stale_prices``
    The newest stored close of a leg is more than ``max_price_age_sessions`` sessions of
    the New York Stock Exchange older than the latest closed session
    (:func:`check_price_age`).

Rules, in the order they are checked:

``kill_switch``
    The kill switch is on: every new order is refused.
``market_hours``
    Policy ``regular``: only during a session of the New York Stock Exchange (holidays and
    early closes included, :mod:`titan_lib.core.market_calendar`). Policy ``always``: no
    restriction.
``price_band``
    Every price the client expects (``expected_prices``) lies within ``price_band_pct``
    percent of the last stored close, and every traded symbol has a positive last close.
``max_pair_notional``
    The pair's gross notional after the order (``sum |shares| * last close``) is at most
    ``max_pair_notional``.
``max_total_notional``
    The gross notional of all pairs after the order is at most ``max_total_notional``.
``max_open_pairs``
    The number of pairs with a non-zero position after the order is at most
    ``max_open_pairs``.

These limits are global ceilings over the whole book. Each principal may also have limits
of its own (:mod:`titan_lib.core.execution.principals`), checked on its own usage: the
tighter one wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from titan_lib.core.execution.errors import ModelRetiredError, RiskRejectedError, StalePricesError
from titan_lib.core.execution.models import QUANTITY_TOLERANCE, KillSwitch, Position, is_open
from titan_lib.core.market_calendar import (
    CalendarRangeError,
    MarketCalendar,
    market_open,
    new_york_time,
)
from titan_lib.exceptions import ParameterError

if TYPE_CHECKING:
    from titan_lib.core.model_registry import Retirement

__all__ = [
    "MarketHoursPolicy",
    "RiskContext",
    "RiskLimits",
    "check_close_only",
    "check_order",
    "check_price_age",
    "market_open",
    "new_york_time",
    "reduces_only",
]

MarketHoursPolicy = Literal["always", "regular"]
RiskRule = Literal[
    "kill_switch",
    "market_hours",
    "price_band",
    "max_pair_notional",
    "max_total_notional",
    "max_open_pairs",
    "model_retired",
    "stale_prices",
]
_NOTIONAL_TOLERANCE = 1e-9
"""Currency units a gross notional may exceed its limit by (floating-point sums)."""


@dataclass(frozen=True)
class RiskLimits:
    """Configurable limits; notional amounts in the stored currency."""

    max_pair_notional: float = 100_000.0
    max_total_notional: float = 500_000.0
    max_open_pairs: int = 10
    price_band_pct: float = 5.0
    market_hours: MarketHoursPolicy = "regular"
    max_price_age_sessions: int = 1

    def __post_init__(self) -> None:
        if self.max_price_age_sessions < 0:
            raise ParameterError("risk limit max_price_age_sessions must be >= 0")
        for name in ("max_pair_notional", "max_total_notional", "price_band_pct"):
            if not getattr(self, name) > 0:
                raise ParameterError(f"risk limit {name} must be > 0", {"limit": name})
        if self.max_open_pairs < 1:
            raise ParameterError("risk limit max_open_pairs must be >= 1")
        if self.market_hours not in ("always", "regular"):
            raise ParameterError(
                f"market hours policy must be 'always' or 'regular', got {self.market_hours!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RiskLimits:
        """Limits from ``TITAN_MAX_PAIR_NOTIONAL``, ``TITAN_MAX_TOTAL_NOTIONAL``,
        ``TITAN_MAX_OPEN_PAIRS``, ``TITAN_PRICE_BAND_PCT``, ``TITAN_MARKET_HOURS`` and
        ``TITAN_MAX_PRICE_AGE_SESSIONS``."""
        env = os.environ if environ is None else environ
        defaults = cls()

        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise ParameterError(f"{name} must be a number, got {raw!r}") from None

        return cls(
            max_pair_notional=number("TITAN_MAX_PAIR_NOTIONAL", defaults.max_pair_notional),
            max_total_notional=number("TITAN_MAX_TOTAL_NOTIONAL", defaults.max_total_notional),
            max_open_pairs=int(number("TITAN_MAX_OPEN_PAIRS", defaults.max_open_pairs)),
            price_band_pct=number("TITAN_PRICE_BAND_PCT", defaults.price_band_pct),
            market_hours=env.get("TITAN_MARKET_HOURS", defaults.market_hours),  # type: ignore[arg-type]
            max_price_age_sessions=_whole(
                "TITAN_MAX_PRICE_AGE_SESSIONS",
                number("TITAN_MAX_PRICE_AGE_SESSIONS", defaults.max_price_age_sessions),
            ),
        )


@dataclass(frozen=True)
class RiskContext:
    """Everything the rules look at for one order.

    ``target`` holds the pair's share quantities after the order; ``positions`` all
    current positions (every model); ``last_prices`` the last stored close of every
    symbol in either.
    """

    model_id: str
    target: Mapping[str, float]
    positions: Sequence[Position]
    last_prices: Mapping[str, float]
    expected_prices: Mapping[str, float]
    kill_switch: KillSwitch
    now: datetime


def _whole(name: str, value: float) -> int:
    if value != int(value):
        raise ParameterError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def check_price_age(limits: RiskLimits, last_dates: Mapping[str, str], now: datetime) -> None:
    """Refuse an order whose legs' newest closes are too old.

    Parameters
    ----------
    limits
        ``max_price_age_sessions``: how many sessions the newest close of a leg may lag
        the latest session closed at ``now`` (0: it must be that session's close).
    last_dates
        ISO date of the newest stored close per leg symbol.
    now
        The time of the order (timezone-aware).

    Raises
    ------
    StalePricesError
        A leg's newest close is older; ``details`` name the symbol, its date, its age in
        sessions and the limit.
    """
    calendar = MarketCalendar.load()
    latest = calendar.last_closed_session(now)
    for symbol, last in sorted(last_dates.items()):
        day = date.fromisoformat(last)
        try:
            age = calendar.sessions_after(day, latest)
        except CalendarRangeError:  # before the calendar: at least every session it holds
            age = calendar.sessions_after(calendar.first_day - timedelta(days=1), latest)
        if age > limits.max_price_age_sessions:
            raise StalePricesError(
                f"the newest price of {symbol} is from {last}, {age} sessions before the "
                f"latest close ({latest}); orders need prices at most "
                f"{limits.max_price_age_sessions} session(s) old "
                "(TITAN_MAX_PRICE_AGE_SESSIONS)",
                {
                    "symbol": symbol,
                    "last_date": last,
                    "age_sessions": age,
                    "max_age_sessions": limits.max_price_age_sessions,
                    "latest_session": latest.isoformat(),
                },
            )


def reduces_only(current: Mapping[str, float], target: Mapping[str, float]) -> bool:
    """Whether moving from ``current`` to ``target`` share quantities only reduces exposure.

    Every symbol must move towards zero without crossing it: ``|target| <= |current|``
    and the same sign (or flat).
    """
    for symbol in set(current) | set(target):
        held, wanted = current.get(symbol, 0.0), target.get(symbol, 0.0)
        if not is_open(wanted):
            continue
        if abs(wanted) > abs(held) + QUANTITY_TOLERANCE or (wanted > 0) != (held > 0):
            return False
    return True


def check_close_only(
    retirement: Retirement | None, current: Mapping[str, float], target: Mapping[str, float]
) -> None:
    """Refuse an order on a retired model unless it only reduces or closes the position.

    Raises
    ------
    ModelRetiredError
        The model is retired and the order opens or increases exposure.
    """
    if retirement is None or reduces_only(current, target):
        return
    why = f" ({retirement.reason})" if retirement.reason else ""
    raise ModelRetiredError(
        f"model {retirement.model_id} was retired at {retirement.retired_at}{why}; "
        "it is close-only: orders may only reduce or close its position",
        {
            "model_id": retirement.model_id,
            "retired_at": retirement.retired_at,
            "reason": retirement.reason,
        },
    )


def _reject(rule: RiskRule, message: str, **details: object) -> RiskRejectedError:
    return RiskRejectedError(
        f"order refused by risk rule {rule}: {message}", {"rule": rule, **details}
    )


def check_order(limits: RiskLimits, ctx: RiskContext) -> None:
    """Run every rule; raise :class:`RiskRejectedError` naming the first one that fails."""
    if ctx.kill_switch.on:
        raise _reject("kill_switch", ctx.kill_switch.reason or "the kill switch is on")
    if limits.market_hours == "regular" and not market_open(ctx.now):
        raise _reject("market_hours", "the market is closed (regular hours policy)")
    for symbol in ctx.target:
        last = ctx.last_prices.get(symbol)
        if last is None or not last > 0:
            raise _reject("price_band", f"no positive last price for {symbol}", symbol=symbol)
    for symbol, expected in ctx.expected_prices.items():
        last = ctx.last_prices.get(symbol)
        if last is None:
            raise _reject(
                "price_band", f"expected price given for {symbol}, not a leg", symbol=symbol
            )
        deviation = abs(expected / last - 1.0) * 100.0
        if deviation > limits.price_band_pct:
            raise _reject(
                "price_band",
                f"{symbol} expected at {expected:g} is {deviation:.2f}% from the last "
                f"stored price {last:g} (band {limits.price_band_pct:g}%)",
                symbol=symbol,
                expected=expected,
                last=last,
            )
    pair_gross = sum(abs(q) * ctx.last_prices[s] for s, q in ctx.target.items())
    if pair_gross > limits.max_pair_notional + _NOTIONAL_TOLERANCE:
        raise _reject(
            "max_pair_notional",
            f"pair gross {pair_gross:,.2f} exceeds {limits.max_pair_notional:,.2f}",
            gross=pair_gross,
        )
    others = [p for p in ctx.positions if p.model_id != ctx.model_id]
    other_gross = 0.0
    for position in others:
        if is_open(position.quantity):
            price = ctx.last_prices.get(position.symbol)
            if price is None:
                raise _reject(
                    "max_total_notional",
                    f"no last price for held symbol {position.symbol}",
                    symbol=position.symbol,
                )
            other_gross += abs(position.quantity) * price
    total = other_gross + pair_gross
    if total > limits.max_total_notional + _NOTIONAL_TOLERANCE:
        raise _reject(
            "max_total_notional",
            f"total gross {total:,.2f} exceeds {limits.max_total_notional:,.2f}",
            gross=total,
        )
    open_pairs = {p.model_id for p in others if is_open(p.quantity)}
    if any(is_open(q) for q in ctx.target.values()):
        open_pairs.add(ctx.model_id)
    if len(open_pairs) > limits.max_open_pairs:
        raise _reject(
            "max_open_pairs",
            f"{len(open_pairs)} open pairs would exceed {limits.max_open_pairs}",
            open_pairs=len(open_pairs),
        )
