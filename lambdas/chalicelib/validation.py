"""Strict validation of JSON request bodies.

Bodies must be JSON objects nested at most :data:`MAX_DEPTH` deep; NaN, Infinity, numbers
beyond the float range, integers longer than :data:`MAX_INTEGER_DIGITS` digits and
repeated names are refused; unknown fields, wrong types, out-of-range values and strings
holding control characters are refused with a message naming the field. Patterns are
matched against the whole string (``re.fullmatch``: a trailing newline is not accepted).
Every failure is a :class:`~titan_lib.core.http_errors.BadRequestError` (HTTP 400).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, TypeVar, overload

from titan_lib.core.http_errors import BadRequestError
from titan_lib.core.strict_json import InvalidJSONError, parse_object

V = TypeVar("V")
Checker = Callable[[str, Any], V]
"""A field checker: ``(field name, raw value) -> clean value``, raising a 400 if invalid."""

MAX_BODY_BYTES = 1_000_000
MAX_DEPTH = 8
"""Deepest nesting of arrays and objects a body may have (the deepest schema needs 4)."""
MAX_INTEGER_DIGITS = 64
"""Longest integer literal accepted (far below the float range, 309 digits)."""
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:\-]{8,128}")
IDENTIFIER = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
ORDER_ID = re.compile(r"[A-Za-z0-9_]{1,128}")
SYMBOL = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def printable(value: str) -> bool:
    """Whether ``value`` holds no control characters (C0, DEL, C1) and no lone surrogates."""
    return value.isprintable() or not any(unicodedata.category(c) in ("Cc", "Cs") for c in value)


@overload
def idempotency_key(headers: Any, required: Literal[True]) -> str: ...
@overload
def idempotency_key(headers: Any, required: Literal[False]) -> str | None: ...
def idempotency_key(headers: Any, required: bool) -> str | None:
    """The request's ``Idempotency-Key`` header, checked against :data:`IDEMPOTENCY_KEY`
    (``None`` when absent and not ``required``)."""
    key = headers.get("idempotency-key")
    if key is None:
        if not required:
            return None
        raise BadRequestError(
            "the Idempotency-Key header is required", {"header": "Idempotency-Key"}
        )
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequestError(
            "Idempotency-Key must be 8 to 128 characters of A-Z a-z 0-9 _ . : -",
            {"header": "Idempotency-Key"},
        )
    return str(key)


def parse_body(raw: bytes | str | None) -> dict[str, Any]:
    """Parse a request body as one JSON object (:func:`titan_lib.core.strict_json.parse_object`:
    bounded nesting, finite numbers, no repeated names)."""
    if raw is None or raw in (b"", ""):
        raise BadRequestError("request body is empty; send a JSON object")
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequestError(f"request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadRequestError("request body is not UTF-8 text") from None
    try:
        return parse_object(text, MAX_DEPTH, MAX_INTEGER_DIGITS)
    except InvalidJSONError as exc:
        raise BadRequestError(f"request body refused: {exc.message}") from None


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


def number(
    low: float | None = None, high: float | None = None, strict_low: bool = False
) -> Checker[float]:
    """Checker: a finite JSON number within ``[low, high]`` (``(low, high]`` if strict)."""

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(name, "a number", value)
        try:
            result = float(value)
        except OverflowError:
            raise _bad(name, "a finite number", "an integer beyond the float range") from None
        if not math.isfinite(result):
            raise _bad(name, "a finite number", value)
        if low is not None and (result < low or (strict_low and result == low)):
            raise _bad(name, f"{'>' if strict_low else '>='} {low:g}", value)
        if high is not None and result > high:
            raise _bad(name, f"<= {high:g}", value)
        return result

    return check


def choice(*options: Any) -> Checker[Any]:
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


def text(pattern: re.Pattern[str] | None = None, max_length: int = 500) -> Checker[str]:
    """Checker: a string (matching ``pattern`` when given) of at most ``max_length``."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or len(value) > max_length:
            raise _bad(name, f"a string of at most {max_length} characters", value)
        if not printable(value):
            raise _bad(name, "a string without control characters", value)
        if pattern is not None and not pattern.fullmatch(value):
            raise _bad(name, f"a string matching {pattern.pattern}", value)
        return value

    return check


def symbol_prices(name: str, value: Any) -> dict[str, float]:
    """Checker: an object mapping symbols to positive finite prices."""
    if not isinstance(value, dict) or len(value) > 10:
        raise _bad(name, "an object of at most 10 symbol: price entries", value)
    result = {}
    for symbol, price in value.items():
        if not SYMBOL.fullmatch(symbol):
            raise _bad(name, f"keyed by symbols matching {SYMBOL.pattern}", symbol)
        result[symbol] = number(0.0, 1e9, strict_low=True)(f"{name}.{symbol}", price)
    return result


def price_series(name: str, value: Any) -> dict[str, list[tuple[str, float]]]:
    """Checker: ``{symbol: {"dates": [...], "close": [...]}}`` with equal, bounded lengths."""
    if not isinstance(value, dict) or not 1 <= len(value) <= 10:
        raise _bad(name, "an object of 1 to 10 symbols", value)
    result: dict[str, list[tuple[str, float]]] = {}
    positive = number(0.0, 1e12, strict_low=True)
    for symbol, series in value.items():
        if not SYMBOL.fullmatch(symbol):
            raise _bad(name, f"keyed by symbols matching {SYMBOL.pattern}", symbol)
        where = f"{name}.{symbol}"
        if not isinstance(series, dict) or set(series) != {"dates", "close"}:
            raise _bad(where, 'an object with exactly "dates" and "close"', series)
        dates, close = series["dates"], series["close"]
        if not isinstance(dates, list) or not isinstance(close, list):
            raise _bad(where, "lists of dates and closes", series)
        if not 1 <= len(dates) <= 5000 or len(dates) != len(close):
            raise _bad(where, "1 to 5000 dates with one close each", len(dates))
        for i, day in enumerate(dates):
            if not isinstance(day, str) or not ISO_DATE.fullmatch(day):
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


def whole(low: int, high: int) -> Checker[int]:
    """Checker: a JSON integer within ``[low, high]``."""

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(name, "a whole number", value)
        if not low <= value <= high:
            raise _bad(name, f"a whole number from {low} to {high}", value)
        return value

    return check


def allowed_models(name: str, value: Any) -> tuple[str, ...] | None:
    """Checker: ``"all"`` (``None``) or a list of distinct model ids (64 hex)."""
    from titan_lib.core.execution.principals import MAX_ALLOWED_MODELS, MODEL_ID

    if value == "all":
        return None
    if not isinstance(value, list) or len(value) > MAX_ALLOWED_MODELS:
        raise _bad(name, f'"all" or a list of at most {MAX_ALLOWED_MODELS} model ids', value)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not MODEL_ID.fullmatch(item):
            raise _bad(f"{name}[{i}]", "a model id (64 hex characters)", item)
    if len(set(value)) != len(value):
        raise _bad(name, "a list without repeated model ids", value)
    return tuple(sorted(value))


def preferences(name: str, value: Any) -> dict[str, Any]:
    """Checker: a bounded JSON object (see
    :func:`titan_lib.core.execution.principals.check_preferences`)."""
    from titan_lib.core.execution.principals import check_preferences
    from titan_lib.exceptions import ParameterError

    try:
        return check_preferences(value)
    except ParameterError as exc:
        raise BadRequestError(f"field {name!r}: {exc.message}", {"field": name}) from None


def principal_limits_fields() -> list[Field]:
    """Fields of ``PUT /principals/{sub}/limits``; every one optional (absent: no limit)."""
    return [
        Field("max_order_notional", number(0.0, 1e12, strict_low=True), required=False),
        Field("max_gross_notional", number(0.0, 1e12, strict_low=True), required=False),
        Field("max_open_pairs", whole(0, 10_000), required=False),
        Field("max_orders_per_day", whole(0, 1_000_000), required=False),
        Field("allowed_models", allowed_models, required=False),
        Field("preferences", preferences, required=False),
    ]
