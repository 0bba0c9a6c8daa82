"""Strict JSON for untrusted input: one object, bounded nesting, finite numbers, one name once.

Python's :mod:`json` accepts ``NaN`` and ``Infinity``, reads ``1e999`` as infinity, keeps
the last of repeated member names and recurses once per nesting level, so a deeply nested
document raises ``RecursionError``. :func:`parse_object` refuses each of these with
:class:`InvalidJSONError`, and measures the nesting before parsing, so it never recurses
deeper than allowed. Standard library only.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from titan_lib.exceptions import DataValidationError

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class InvalidJSONError(DataValidationError):
    """A JSON text is malformed, too deep, or holds a value strict JSON refuses."""

    code = "invalid_json"


def nesting_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in JSON ``text`` (brackets in strings skipped).

    Linear in the length of ``text``; for malformed text it is an estimate, and the parse
    that follows refuses the text anyway.
    """
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_object(text: str, max_depth: int, max_integer_digits: int = 20) -> dict[str, Any]:
    """Parse ``text`` as one JSON object under strict rules.

    Parameters
    ----------
    text
        The JSON text.
    max_depth
        Deepest nesting allowed; the object itself is level 1.
    max_integer_digits
        Longest integer literal allowed, in digits.

    Raises
    ------
    InvalidJSONError
        Not JSON, not an object, nested deeper than ``max_depth``, a repeated member name,
        ``NaN``/``Infinity``, a number too large for a float, or a longer integer.
    """
    if nesting_depth(text) > max_depth:
        raise InvalidJSONError(f"JSON is nested more than {max_depth} levels deep")

    def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        members = dict(pairs)
        if len(members) != len(pairs):
            names = [name for name, _ in pairs]
            repeated = next(name for name in names if names.count(name) > 1)
            raise InvalidJSONError(f"JSON repeats the member name {repeated[:64]!r}")
        return members

    def refuse_constant(name: str) -> Any:
        raise InvalidJSONError(f"JSON holds {name}, which is not a number")

    def finite_float(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise InvalidJSONError("JSON holds a number too large for a float")
        return value

    def bounded_int(literal: str) -> int:
        if len(literal.lstrip("-")) > max_integer_digits:
            raise InvalidJSONError(f"JSON holds an integer longer than {max_integer_digits} digits")
        return int(literal)

    try:
        value = json.loads(
            text,
            object_pairs_hook=unique_members,
            parse_constant=refuse_constant,
            parse_float=finite_float,
            parse_int=bounded_int,
        )
    except InvalidJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise InvalidJSONError(f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(value, dict):
        raise InvalidJSONError("JSON is not an object")
    return value
