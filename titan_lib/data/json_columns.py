"""JSON text of price columns, encoded in bulk for many symbols at once.

The serving documents (price documents, serving tails) are compact JSON with sorted keys,
as :func:`titan_lib.stores.objects.dumps_json` writes them. Encoding thousands of them
value by value in Python is slow; here every column is turned into JSON text by polars,
joined per symbol into arrays, and only the few members of each document are put together
in Python. The bytes equal those of ``dumps_json(document, pretty=False)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

PYTHON_NOTATION_BELOW = 1e-4
PYTHON_NOTATION_FROM = 1e16
"""Magnitudes where polars and Python may write the same float differently (Python uses
an exponent, ``1e-05``); such values are written by Python. Between the two, both write
the shortest text that reads back the same float, in the same notation."""


def stack_symbols(frames: Mapping[str, pl.DataFrame], columns: Sequence[str]) -> pl.DataFrame:
    """One long frame of ``symbol`` (the keys of ``frames``) and ``columns`` (null where a
    frame lacks one), the frames one after another in the order given."""
    heights = [frame.height for frame in frames.values()]
    stacked = pl.concat(list(frames.values()), how="diagonal_relaxed")
    owner = pl.Series(np.repeat(np.arange(len(heights)), heights))
    return stacked.select(
        pl.Series("symbol", list(frames), pl.String).gather(owner),
        *[pl.col(c) if c in stacked.columns else pl.lit(None).alias(c) for c in columns],
    )


def number_text(values: pl.Series) -> pl.Series:
    """Float values as JSON number text exactly as :func:`json.dumps` writes them.

    NaN and null become ``null``. An infinite value raises ``ValueError`` (as
    ``dumps_json`` does).
    """
    values = values.cast(pl.Float64).fill_nan(None)
    magnitude = values.abs()
    odd = (
        ((magnitude < PYTHON_NOTATION_BELOW) & (magnitude > 0))
        | (magnitude >= PYTHON_NOTATION_FROM)
    ).fill_null(False)
    text = values.cast(pl.String)
    where = odd.arg_true()
    if where.len():
        exact = [json.dumps(v, allow_nan=False) for v in values.gather(where).to_list()]
        text = text.scatter(where, exact)
    return text.fill_null("null")


def date_text(dates: pl.Series) -> pl.Series:
    """Dates as ISO ``YYYY-MM-DD`` text; each calendar day is formatted once."""
    days = dates.to_physical()
    first, last = days.min(), days.max()
    if not isinstance(first, int) or not isinstance(last, int):
        return dates.cast(pl.String)
    calendar = pl.int_range(first, last + 1, eager=True).cast(pl.Int32).cast(pl.Date)
    return calendar.cast(pl.String).gather(days - first).alias(dates.name)


def json_arrays(
    frame: pl.DataFrame, numbers: Sequence[str], dates: Sequence[str] = ("date",)
) -> pl.DataFrame:
    """One row per ``symbol`` of ``frame`` (in order of first appearance) holding, for each
    column of ``numbers`` (Float64) and ``dates`` (Date), the JSON array of its values in
    row order, as text.

    Also ``rows`` (the symbol's row count) and, per column of ``numbers``, ``<name>_given``:
    whether the symbol has any non-null value there (NaN counts as given). The array of a
    column without a value for any symbol is not filled in.
    """
    given = [n for n in numbers if frame.get_column(n).null_count() < frame.height]
    encoded = frame.select(
        "symbol",
        *[number_text(frame.get_column(n)).alias(n) for n in given],
        *[pl.lit(None, pl.String).alias(n) for n in numbers if n not in given],
        *[date_text(frame.get_column(d)) for d in dates],
        *[pl.col(n).is_not_null().alias(f"{n}_given") for n in numbers],
    )
    return encoded.group_by("symbol", maintain_order=True).agg(
        *[
            pl.concat_str(pl.lit("["), pl.col(n).str.join(","), pl.lit("]")).alias(n)
            for n in numbers
        ],
        *[
            pl.concat_str(pl.lit('["'), pl.col(d).str.join('","'), pl.lit('"]')).alias(d)
            for d in dates
        ],
        *[pl.col(f"{n}_given").any() for n in numbers],
        pl.len().alias("rows"),
    )


def json_object(encoded: Mapping[str, str], plain: Mapping[str, Any]) -> bytes:
    """A compact JSON object with sorted keys from members already encoded as JSON text
    (``encoded``) and plain values (``plain``, encoded here)."""
    members = {**encoded}
    members.update(
        (k, json.dumps(v, sort_keys=True, separators=(",", ":"), allow_nan=False))
        for k, v in plain.items()
    )
    return ("{" + ",".join(f"{json.dumps(k)}:{members[k]}" for k in sorted(members)) + "}").encode()
