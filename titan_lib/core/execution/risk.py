"""Risk checks run before any order reaches a broker. Each refusal names its rule.

Rules, in the order they are checked:

``kill_switch``
    The kill switch is on: every new order is refused.
``market_hours``
    Policy ``regular``: only Monday to Friday, 09:30 to 16:00 New York time (exchange
    holidays are not modelled). Policy ``always``: no restriction.
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
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from titan_lib.core.execution.models import KillSwitch, Position
from titan_lib.core.http_errors import RiskRejectedError
from titan_lib.exceptions import ParameterError

MarketHoursPolicy = Literal["always", "regular"]
RiskRule = Literal[
    "kill_switch",
    "market_hours",
    "price_band",
    "max_pair_notional",
    "max_total_notional",
    "max_open_pairs",
]
_EPSILON = 1e-9


@dataclass(frozen=True)
class RiskLimits:
    """Configurable limits; notional amounts in the stored currency."""

    max_pair_notional: float = 100_000.0
    max_total_notional: float = 500_000.0
    max_open_pairs: int = 10
    price_band_pct: float = 5.0
    market_hours: MarketHoursPolicy = "regular"

    def __post_init__(self) -> None:
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
        ``TITAN_MAX_OPEN_PAIRS``, ``TITAN_PRICE_BAND_PCT`` and ``TITAN_MARKET_HOURS``."""
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


def _second_sunday_of_march(year: int) -> date:
    first = date(year, 3, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7 + 7)


def _first_sunday_of_november(year: int) -> date:
    first = date(year, 11, 1)
    return first + timedelta(days=(6 - first.weekday()) % 7)


def new_york_time(moment: datetime) -> datetime:
    """``moment`` (timezone-aware) as naive New York wall-clock time (US DST rules since 2007)."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    year = utc.year
    dst_start = datetime.combine(_second_sunday_of_march(year), time(7, 0))  # 02:00 EST
    dst_end = datetime.combine(_first_sunday_of_november(year), time(6, 0))  # 02:00 EDT
    offset = -4 if dst_start <= utc < dst_end else -5
    return utc + timedelta(hours=offset)


def market_open(moment: datetime) -> bool:
    """Whether US equity regular hours (Mon-Fri 09:30-16:00 New York) include ``moment``."""
    local = new_york_time(moment)
    return local.weekday() < 5 and time(9, 30) <= local.time() < time(16, 0)


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
    if pair_gross > limits.max_pair_notional + _EPSILON:
        raise _reject(
            "max_pair_notional",
            f"pair gross {pair_gross:,.2f} exceeds {limits.max_pair_notional:,.2f}",
            gross=pair_gross,
        )
    others = [p for p in ctx.positions if p.model_id != ctx.model_id]
    other_gross = 0.0
    for position in others:
        if abs(position.quantity) > _EPSILON:
            price = ctx.last_prices.get(position.symbol)
            if price is None:
                raise _reject(
                    "max_total_notional",
                    f"no last price for held symbol {position.symbol}",
                    symbol=position.symbol,
                )
            other_gross += abs(position.quantity) * price
    total = other_gross + pair_gross
    if total > limits.max_total_notional + _EPSILON:
        raise _reject(
            "max_total_notional",
            f"total gross {total:,.2f} exceeds {limits.max_total_notional:,.2f}",
            gross=total,
        )
    open_pairs = {p.model_id for p in others if abs(p.quantity) > _EPSILON}
    if any(abs(q) > _EPSILON for q in ctx.target.values()):
        open_pairs.add(ctx.model_id)
    if len(open_pairs) > limits.max_open_pairs:
        raise _reject(
            "max_open_pairs",
            f"{len(open_pairs)} open pairs would exceed {limits.max_open_pairs}",
            open_pairs=len(open_pairs),
        )
