"""Strict validation of JSON request bodies.

Bodies must be JSON objects; NaN, Infinity and duplicate keys are refused; unknown fields,
wrong types and out-of-range values are refused with a message naming the field. Every
failure is a :class:`~titan_lib.core.http_errors.BadRequestError` (HTTP 400).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from titan_lib.core.http_errors import BadRequestError

MAX_BODY_BYTES = 1_000_000
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{8,128}$")
IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
ORDER_ID = re.compile(r"^[A-Za-z0-9_]{1,128}$")
SYMBOL = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")


def _refuse_constant(name: str) -> float:
    raise BadRequestError(f"request body holds {name}; JSON numbers must be finite")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequestError(f"request body repeats the field {key!r}", {"field": key})
        result[key] = value
    return result


def parse_body(raw: bytes | str | None) -> dict[str, Any]:
    """Parse a request body as one JSON object (strict: no NaN/Infinity, no duplicates)."""
    if raw is None or raw in (b"", ""):
        raise BadRequestError("request body is empty; send a JSON object")
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequestError(f"request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        body = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, BadRequestError):
            raise
        raise BadRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequestError("request body must be a JSON object")
    return body


@dataclass(frozen=True)
class Field:
    """One field of a body: a name, a checker turning the raw value into a clean one."""

    name: str
    check: Callable[[str, Any], Any]
    required: bool = True


def validate(body: dict[str, Any], fields: list[Field]) -> dict[str, Any]:
    """Check ``body`` against ``fields``; return the cleaned values (absent optional: None)."""
    known = {f.name for f in fields}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadRequestError(
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(known))}",
            {"fields": unknown},
        )
    clean: dict[str, Any] = {}
    for f in fields:
        if f.name not in body or body[f.name] is None:
            if f.required:
                raise BadRequestError(f"field {f.name!r} is required", {"field": f.name})
            clean[f.name] = None
            continue
        clean[f.name] = f.check(f.name, body[f.name])
    return clean


def _bad(name: str, expected: str, value: Any) -> BadRequestError:
    shown = json.dumps(value)[:60] if not isinstance(value, float) else repr(value)
    return BadRequestError(f"field {name!r} must be {expected}, got {shown}", {"field": name})


def number(low: float | None = None, high: float | None = None, strict_low: bool = False):  # type: ignore[no-untyped-def]
    """Checker: a finite JSON number within ``[low, high]`` (``(low, high]`` if strict)."""

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(name, "a number", value)
        result = float(value)
        if not math.isfinite(result):
            raise _bad(name, "a finite number", value)
        if low is not None and (result < low or (strict_low and result == low)):
            raise _bad(name, f"{'>' if strict_low else '>='} {low:g}", value)
        if high is not None and result > high:
            raise _bad(name, f"<= {high:g}", value)
        return result

    return check


def choice(*options: Any):  # type: ignore[no-untyped-def]
    """Checker: one of ``options`` (integers or strings, compared by type and value)."""

    def check(name: str, value: Any) -> Any:
        if isinstance(value, bool) or value not in options or type(value) is float:
            raise _bad(name, f"one of {', '.join(json.dumps(o) for o in options)}", value)
        return value

    return check


def boolean(name: str, value: Any) -> bool:
    """Checker: a JSON boolean."""
    if not isinstance(value, bool):
        raise _bad(name, "true or false", value)
    return value


def text(pattern: re.Pattern[str] | None = None, max_length: int = 500):  # type: ignore[no-untyped-def]
    """Checker: a string (matching ``pattern`` when given) of at most ``max_length``."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_length:
            raise _bad(name, f"a string of at most {max_length} characters", value)
        if pattern is not None and not pattern.match(value):
            raise _bad(name, f"a string matching {pattern.pattern}", value)
        return value

    return check


def symbol_prices(name: str, value: Any) -> dict[str, float]:
    """Checker: an object mapping symbols to positive finite prices."""
    if not isinstance(value, dict) or len(value) > 10:
        raise _bad(name, "an object of at most 10 symbol: price entries", value)
    result = {}
    for symbol, price in value.items():
        if not SYMBOL.match(symbol):
            raise _bad(f"{name}.{symbol}", "keyed by a symbol", symbol)
        result[symbol] = number(0.0, 1e9, strict_low=True)(f"{name}.{symbol}", price)
    return result


def price_series(name: str, value: Any) -> dict[str, list[tuple[str, float]]]:
    """Checker: ``{symbol: {"dates": [...], "close": [...]}}`` with equal, bounded lengths."""
    if not isinstance(value, dict) or not 1 <= len(value) <= 10:
        raise _bad(name, "an object of 1 to 10 symbols", value)
    result: dict[str, list[tuple[str, float]]] = {}
    positive = number(0.0, 1e12, strict_low=True)
    for symbol, series in value.items():
        where = f"{name}.{symbol}"
        if not SYMBOL.match(symbol):
            raise _bad(where, "keyed by a symbol", symbol)
        if not isinstance(series, dict) or set(series) != {"dates", "close"}:
            raise _bad(where, 'an object with exactly "dates" and "close"', series)
        dates, close = series["dates"], series["close"]
        if not isinstance(dates, list) or not isinstance(close, list):
            raise _bad(where, "lists of dates and closes", series)
        if not 1 <= len(dates) <= 5000 or len(dates) != len(close):
            raise _bad(where, "1 to 5000 dates with one close each", len(dates))
        for i, day in enumerate(dates):
            if not isinstance(day, str) or not re.match(r"^\d{4}-\d{2}-\d{2}$", day):
                raise _bad(f"{where}.dates[{i}]", "an ISO date YYYY-MM-DD", day)
            try:
                date.fromisoformat(day)
            except ValueError:
                raise _bad(f"{where}.dates[{i}]", "a calendar date", day) from None
        result[symbol] = [
            (day, positive(f"{where}.close[{i}]", c))
            for i, (day, c) in enumerate(zip(dates, close, strict=True))
        ]
    return result
