"""Strict JSON for untrusted input (bearer tokens): refused classes and the nesting scan."""

from __future__ import annotations

import json

import pytest

from titan_lib.core.strict_json import InvalidJSONError, nesting_depth, parse_object


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[[{{{{"}', 1),
        ('{"a": "quote \\" then [[[["}', 1),
        ('{"a": "backslash \\\\", "b": [[1]]}', 3),
        ("[" * 3000 + "]" * 3000, 3000),
    ],
)
def test_nesting_depth_skips_brackets_inside_strings(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_a_document_within_the_limits_parses_as_json_does() -> None:
    text = '{"a": [1, 2.5, -3, {"b": null, "c": true}], "d": "x\\u00e9"}'
    assert parse_object(text, max_depth=3) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[" * 5000 + "]" * 5000, "nested more than 8"),
        ('{"a": [[[[[[[[1]]]]]]]]}', "nested more than 8"),
        ('{"a": 1, "a": 2}', "repeats the member name 'a'"),
        ('{"a": NaN}', "NaN"),
        ('{"a": -Infinity}', "-Infinity"),
        ('{"a": 1e999}', "too large for a float"),
        ('{"a": ' + "9" * 21 + "}", "longer than 20 digits"),
        ("[1]", "not an object"),
        ('{"a": 1', "not JSON"),
        ("", "not JSON"),
    ],
)
def test_refused_documents_raise_invalid_json(text: str, match: str) -> None:
    with pytest.raises(InvalidJSONError, match=match):
        parse_object(text, max_depth=8)
