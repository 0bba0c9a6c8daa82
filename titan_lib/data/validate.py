"""Validation of raw price tables into the stored long schema.

Wide form is a date column plus one column per symbol (closes). Long form has the columns
``date, symbol, close`` and optionally ``open, high, low, volume`` (names are
case-insensitive). Every problem is reported with the file, the file row number (the CSV
header is row 1), the date as written and the column or symbol.

Legal: a symbol that starts later than the others and an empty cell in wide form (a gap).
Errors: a missing or unparseable date; a duplicate ``(date, symbol)``; a price that is not a
number, is NaN or infinite, zero or negative; a negative volume; a high below its low; an
empty file; unknown columns in long form; an empty symbol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from titan_lib.data.schema import (
    LONG_COLUMNS,
    PRICE_FIELDS,
    PRICE_SCHEMA,
    SYMBOL_PATTERN,
    in_stored_order,
    with_sorted_key,
)
from titan_lib.data.sources import RawTable
from titan_lib.exceptions import DataValidationError

MAX_REPORTED = 20
"""Problems listed in an error's details (the message names the first)."""

_DUPLICATE_COLUMN = re.compile(r"^(?P<base>.+)_duplicated_\d+$")


@dataclass
class Problem:
    """One bad cell or row."""

    row: int | None
    date: str | None
    column: str | None
    problem: str

    def describe(self, file: str) -> str:
        """``file, row R (date D), column C: problem``."""
        parts = [file]
        if self.row is not None:
            parts.append(f"row {self.row}" + (f" (date {self.date})" if self.date else ""))
        if self.column is not None:
            parts.append(f"column {self.column}")
        return f"{', '.join(parts)}: {self.problem}"


@dataclass
class ValidatedTable:
    """A validated table in the stored schema, plus what the summary reports."""

    name: str
    form: str
    prices: pl.DataFrame
    empty_cells: int = 0
    notes: list[str] = field(default_factory=list)


def _fail(table: RawTable, problems: list[Problem]) -> DataValidationError:
    problems = sorted(problems, key=lambda p: p.row if p.row is not None else -1)
    first = problems[0].describe(table.name)
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    details: dict[str, Any] = {
        "file": table.name,
        "count": len(problems),
        "problems": [p.__dict__ for p in problems[:MAX_REPORTED]],
    }
    return DataValidationError(first + more, details)


def _as_text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String)


def _problems(
    frame: pl.DataFrame, mask: pl.Expr, column: str | pl.Expr, text: str, value: str | None = None
) -> list[Problem]:
    """Problems for the rows of ``frame`` where ``mask`` holds.

    ``frame`` has the columns ``_row`` and ``_date_raw``; ``column`` names the offending
    column (a literal) or an expression giving it per row (the symbol in wide form).
    """
    col_expr = pl.lit(column) if isinstance(column, str) else column
    cols = [pl.col("_row"), _as_text(pl.col("_date_raw")).alias("d"), col_expr.alias("c")]
    if value is not None:
        cols.append(_as_text(pl.col(value)).alias("v"))
    bad = frame.filter(mask).select(cols).head(MAX_REPORTED)
    out = []
    for rec in bad.iter_rows(named=True):
        msg = text.format(value=rec.get("v"))
        out.append(Problem(int(rec["_row"]), rec["d"], rec["c"], msg))
    return out


def _parse_dates(frame: pl.DataFrame) -> pl.DataFrame:
    raw = frame.get_column("_date_raw")
    if raw.dtype == pl.Date:
        return frame.with_columns(pl.col("_date_raw").alias("date"))
    if isinstance(raw.dtype, pl.Datetime):
        return frame.with_columns(pl.col("_date_raw").dt.date().alias("date"))
    text = _as_text(pl.col("_date_raw")).str.strip_chars()
    return frame.with_columns(
        text.str.to_date("%Y-%m-%d", strict=False).alias("date"),
        _as_text(pl.col("_date_raw")).alias("_date_raw"),
    )


def _numeric(frame: pl.DataFrame, name: str) -> tuple[pl.DataFrame, pl.Expr]:
    """Cast column ``name`` to Float64; return the frame and a mask of non-numeric cells."""
    dtype = frame.schema[name]
    if dtype == pl.String:
        stripped = pl.col(name).str.strip_chars()
        parsed = stripped.cast(pl.Float64, strict=False)
        frame = frame.with_columns(
            pl.col(name).alias(f"_{name}_raw"),
            pl.when(stripped == "").then(None).otherwise(parsed).alias(name),
        )
        non_numeric = (
            pl.col(f"_{name}_raw").is_not_null()
            & (pl.col(f"_{name}_raw").str.strip_chars() != "")
            & pl.col(name).is_null()
        )
        return frame, non_numeric
    if dtype.is_numeric():
        frame = frame.with_columns(
            pl.col(name).cast(pl.Float64).alias(name), _as_text(pl.col(name)).alias(f"_{name}_raw")
        )
        return frame, pl.lit(False)
    frame = frame.with_columns(_as_text(pl.col(name)).alias(f"_{name}_raw"))
    return frame.with_columns(pl.lit(None, pl.Float64).alias(name)), pl.col(name).is_null()


def _value_problems(
    frame: pl.DataFrame, name: str, column: str | pl.Expr, positive: bool
) -> tuple[pl.DataFrame, list[Problem]]:
    frame, non_numeric = _numeric(frame, name)
    raw = f"_{name}_raw"
    col = pl.col(name)
    found = _problems(frame, non_numeric, column, "value {value!r} is not a number", raw)
    found += _problems(frame, col.is_nan(), column, "value {value!r} is NaN", raw)
    found += _problems(frame, col.is_infinite(), column, "value {value!r} is not finite", raw)
    bound = (col <= 0) if positive else (col < 0)
    rule = "must be positive" if positive else "must not be negative"
    found += _problems(frame, bound & col.is_finite(), column, "value {value} " + rule, raw)
    return frame, found


def _wide_to_long(table: RawTable, date_col: str) -> tuple[pl.DataFrame, list[Problem]]:
    frame = table.frame
    problems: list[Problem] = []
    symbols = [c for c in frame.columns if c != date_col]
    for name in symbols:
        m = _DUPLICATE_COLUMN.match(name)
        if m and m.group("base") in frame.columns:
            problems.append(Problem(None, None, m.group("base"), "duplicate symbol column"))
    if not symbols:
        problems.append(Problem(None, None, None, "no symbol columns next to the date column"))
    if problems:
        return frame, problems
    indexed = frame.with_row_index("_row", offset=table.first_row).rename({date_col: "_date_raw"})
    long = indexed.unpivot(
        index=["_row", "_date_raw"], on=symbols, variable_name="symbol", value_name="close"
    )
    return long, problems


def _clean_numbers(frame: pl.DataFrame, names: list[str], positive: bool) -> pl.DataFrame | None:
    """The columns ``names`` as Float64 by the rules of :func:`_numeric` (an empty or blank
    cell is null), or ``None`` when any cell breaks a rule of :func:`_value_problems`.

    Text is cast as it stands; only the columns where that loses a cell (a blank cell or
    padding around a number) are cast again with the padding stripped.
    """
    plain = []
    schema = frame.schema
    for name in names:
        dtype = schema[name]
        if dtype.is_numeric():
            plain.append(pl.col(name).cast(pl.Float64))
        elif dtype == pl.String:
            plain.append(pl.col(name).cast(pl.Float64, strict=False))
        else:
            return None
    values = frame.select(plain)
    padded = [n for n in names if values.get_column(n).null_count() != frame[n].null_count()]
    if padded:
        stripped = [pl.col(n).str.strip_chars() for n in padded]
        parsed = [s.cast(pl.Float64, strict=False) for s in stripped]
        non_numeric = [
            (s.is_not_null() & (s != "") & p.is_null()).any()
            for s, p in zip(stripped, parsed, strict=True)
        ]
        if frame.select(pl.any_horizontal(non_numeric)).item():
            return None
        exact = [
            pl.when(s == "").then(None).otherwise(p).alias(n)
            for n, s, p in zip(padded, stripped, parsed, strict=True)
        ]
        values = values.with_columns(frame.select(exact).get_columns())
    out_of_range = [
        (c.is_nan() | c.is_infinite() | ((c <= 0) if positive else (c < 0))).any()
        for c in (pl.col(n) for n in names)
    ]
    return None if values.select(pl.any_horizontal(out_of_range)).item() else values


def _stored(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with exactly the stored columns (absent ones null), in their types."""
    return frame.select(
        [
            pl.col(n).cast(t) if n in frame.columns else pl.lit(None, t).alias(n)
            for n, t in PRICE_SCHEMA.items()
        ]
    )


def _clean_wide(table: RawTable, date_col: str) -> tuple[pl.DataFrame, int] | None:
    """A clean wide table in the stored long schema (sorted by symbol and date) and its
    count of empty cells, or ``None`` when any rule might be broken.

    Dates are parsed once per file row and numbers once per cell, before the unpivot.
    """
    frame = table.frame
    symbols = [c for c in frame.columns if c != date_col]
    if (
        not symbols
        or any(_DUPLICATE_COLUMN.match(s) for s in symbols)
        or not pl.Series(symbols, dtype=pl.String).str.contains(SYMBOL_PATTERN).all()
    ):
        return None
    dates = _parse_dates(frame.select(pl.col(date_col).alias("_date_raw"))).get_column("date")
    if dates.null_count() or dates.n_unique() != dates.len():
        return None
    values = _clean_numbers(frame, symbols, positive=True)
    if values is None:
        return None
    # symbols in name order and dates in order: the unpivot comes out sorted
    ordered = sorted(symbols)
    long = (
        values.select(ordered)
        .with_columns(dates)
        .sort("date")
        .unpivot(index="date", on=ordered, variable_name="symbol", value_name="close")
        .drop_nulls("close")
    )
    if long.height == 0:
        return None
    return _stored(long), frame.height * len(symbols) - long.height


def _clean_long(frame: pl.DataFrame) -> pl.DataFrame | None:
    """A clean long table (lower-case columns) in the stored schema, sorted by symbol and
    date, or ``None`` when any rule might be broken."""
    symbol = frame.get_column("symbol").cast(pl.String)
    names = symbol.unique()
    if names.null_count() or not names.str.contains(SYMBOL_PATTERN).all():
        return None
    dates = _parse_dates(frame.select(pl.col("date").alias("_date_raw"))).get_column("date")
    if dates.null_count():
        return None
    fields = [n for n in PRICE_FIELDS if n in frame.columns]
    prices = _clean_numbers(frame, fields, positive=True)
    volume = _clean_numbers(frame, ["volume"], positive=False) if "volume" in frame else None
    if prices is None or ("volume" in frame and volume is None):
        return None
    if prices.get_column("close").null_count():
        return None
    if "high" in prices and "low" in prices and (prices["high"] < prices["low"]).any():
        return None
    long = prices.with_columns(dates, symbol, *([] if volume is None else volume.get_columns()))
    long = with_sorted_key(long, names)
    if long.select((pl.col("_key") == pl.col("_key").shift()).any()).item():
        return None
    return _stored(long)


def validate_table(table: RawTable) -> ValidatedTable:
    """Validate one raw table and return it in the stored long schema.

    Raises
    ------
    DataValidationError
        Naming the file, row (and date), column or symbol of the first problem; the
        details list up to :data:`MAX_REPORTED` problems.
    """
    lower = {c.lower().strip(): c for c in table.frame.columns}
    if "date" not in lower:
        return_problem = Problem(None, None, None, "no 'date' column")
        raise _fail(table, [return_problem])
    form = "long" if "symbol" in lower else "wide"
    problems: list[Problem] = []

    if form == "long":
        unknown = sorted(c for c in table.frame.columns if c.lower().strip() not in LONG_COLUMNS)
        if unknown:
            allowed = ", ".join(PRICE_SCHEMA)
            raise _fail(
                table,
                [
                    Problem(None, None, c, f"unknown column in long form (allowed: {allowed})")
                    for c in unknown
                ],
            )
        if "close" not in lower:
            raise _fail(table, [Problem(None, None, "close", "missing required column")])
        frame = table.frame.rename({orig: low for low, orig in lower.items()})
        clean = _clean_long(frame)
        if clean is not None:
            return ValidatedTable(name=table.name, form=form, prices=clean)
        frame = frame.with_row_index("_row", offset=table.first_row).rename({"date": "_date_raw"})
        frame = frame.with_columns(_as_text(pl.col("symbol")).str.strip_chars().alias("symbol"))
        problems += _problems(
            frame,
            pl.col("symbol").is_null() | (pl.col("symbol") == ""),
            "symbol",
            "empty symbol",
        )
        column: str | pl.Expr = "close"
    else:
        cleaned = _clean_wide(table, lower["date"])
        if cleaned is not None:
            prices, empty_cells = cleaned
            return ValidatedTable(
                name=table.name, form=form, prices=prices, empty_cells=empty_cells
            )
        frame, problems = _wide_to_long(table, lower["date"])
        if problems:
            raise _fail(table, problems)
        column = pl.col("symbol")

    frame = _parse_dates(frame)
    date_missing = pl.col("_date_raw").is_null() | (
        _as_text(pl.col("_date_raw")).str.strip_chars() == ""
    )
    problems += _problems(frame, date_missing, lower["date"], "missing date")
    problems += _problems(
        frame,
        ~date_missing & pl.col("date").is_null(),
        lower["date"],
        "unparseable date {value!r} (expected YYYY-MM-DD)",
        "_date_raw",
    )

    frame, found = _value_problems(frame, "close", column, positive=True)
    problems += found
    empty_cells = 0
    empty = pl.col("_close_raw").is_null() | (pl.col("_close_raw").str.strip_chars() == "")
    if form == "wide":
        empty_cells = int(frame.select(empty.sum()).item())
        frame = frame.filter(~empty)
    else:
        problems += _problems(frame, empty, "close", "missing close price")
        for name in ("open", "high", "low"):
            if name in frame.columns:
                frame, found = _value_problems(frame, name, name, positive=True)
                problems += found
        if "volume" in frame.columns:
            frame, found = _value_problems(frame, "volume", "volume", positive=False)
            problems += found
        if "high" in frame.columns and "low" in frame.columns:
            problems += _problems(
                frame,
                pl.col("high") < pl.col("low"),
                "high",
                "high {value} is below the low",
                "high",
            )

    valid_symbol = pl.col("symbol").str.contains(SYMBOL_PATTERN)
    problems += _problems(
        frame,
        pl.col("symbol").is_not_null() & (pl.col("symbol") != "") & ~valid_symbol,
        pl.col("symbol"),
        "invalid symbol {value!r}",
        "symbol",
    )
    dup = pl.struct("date", "symbol").is_duplicated() & pl.col("date").is_not_null()
    first_of = pl.col("_row") != pl.col("_row").min().over("date", "symbol")
    problems += _problems(frame, dup & first_of, column, "duplicate (date, symbol)")

    if problems:
        raise _fail(table, problems)
    for name in PRICE_SCHEMA:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, PRICE_SCHEMA[name]).alias(name))
    prices = in_stored_order(frame.select([pl.col(n).cast(t) for n, t in PRICE_SCHEMA.items()]))
    if prices.height == 0:
        raise _fail(table, [Problem(None, None, None, "no prices (every cell is empty)")])
    return ValidatedTable(name=table.name, form=form, prices=prices, empty_cells=empty_cells)


__all__ = ["PRICE_FIELDS", "ValidatedTable", "validate_table"]
