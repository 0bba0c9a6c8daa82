"""Bulk paths of the ingest: the vectorised check of clean tables and the bulk-encoded
serving documents give exactly what the cell-by-cell check and per-symbol encoding give."""

from __future__ import annotations

import hashlib
import io
import json
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from titan_lib.core.prices import PRICE_TAIL_LENGTH, PRICE_TAIL_SCHEMA_VERSION
from titan_lib.core.serving.research_documents import PRICE_FIELDS, RESEARCH_SCHEMA_VERSION
from titan_lib.data import ingest, load_prices
from titan_lib.data import validate as validation
from titan_lib.data.json_columns import number_text
from titan_lib.data.price_store import tail_documents
from titan_lib.data.serving_documents import price_documents
from titan_lib.data.sources import RawTable, read_table
from titan_lib.exceptions import DataValidationError
from titan_lib.stores.objects import dumps_json


def _full_check(monkeypatch: pytest.MonkeyPatch, table: RawTable) -> Any:
    """validate_table with the bulk path switched off: every cell checked one rule at a time."""
    with monkeypatch.context() as patch:
        patch.setattr(validation, "_clean_wide", lambda *_: None)
        patch.setattr(validation, "_clean_long", lambda *_: None)
        try:
            return validation.validate_table(table)
        except DataValidationError as exc:
            return exc


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> RawTable:
    path = tmp_path / name
    path.write_text(text)
    return read_table(str(path))


def _parquet(tmp_path: Path, frame: pl.DataFrame) -> RawTable:
    path = tmp_path / "t.parquet"
    frame.write_parquet(path)
    return read_table(str(path))


CLEAN_CSV = {
    "wide_unsorted_with_gaps": (
        "Date,ZED,AAA,B.X\n"
        "2021-01-06,3, ,1e2\n"
        "2021-01-04,1.5,,0.0001\n"
        "2021-01-05, 2.25 ,7,5\n"
        "2021-01-07,4,8,\n"
    ),
    "wide_padded_dates": "date,AAA\n 2021-01-04 ,1\n2021-01-05,2\n",
    "long_ohlcv_unsorted": (
        "Date,Symbol,Open,High,Low,Close,Volume\n"
        "2021-01-05,BBB,10,11,9.5,10.5,0\n"
        "2021-01-04,BBB,9,10,8.5,9.5,\n"
        "2021-01-04,AAA,1,1.2,0.9,1.1,100\n"
        "2021-01-05,AAA,,,,1.15, 7 \n"
    ),
    "long_padded_symbol": "date,symbol,close\n2021-01-04, AAA ,1\n2021-01-05,AAA,2\n",
}

BAD_CSV = {
    "wide_inf": "Date,AAA,BBB\n2021-01-04,1,2\n2021-01-05,inf,2\n",
    "wide_nan_late": "Date,AAA,BBB\n2021-01-04,1,2\n2021-01-05,1,nan\n",
    "wide_zero": "Date,AAA\n2021-01-04,0\n",
    "wide_text": "Date,AAA,BBB\n2021-01-04,1,2\n2021-01-05,1, x \n",
    "wide_bad_symbol": "Date,A A\n2021-01-04,1\n",
    "wide_dup_date": "Date,AAA,BBB\n2021-01-04,1,2\n2021-01-04,,3\n",
    "wide_bad_date": "Date,AAA\n2021-02-30,1\n",
    "wide_all_empty": "Date,AAA\n2021-01-04,\n",
    "long_dup": "date,symbol,close\n2021-01-04,AAA,1\n2021-01-04,AAA,1\n",
    "long_nan": "date,symbol,close\n2021-01-04,AAA,NaN\n",
    "long_no_close": "date,symbol,close\n2021-01-04,AAA, \n",
    "long_bad_symbol": "date,symbol,close\n2021-01-04,A/B,1\n",
    "long_empty_symbol": "date,symbol,close\n2021-01-04,,1\n",
    "long_high_below_low": "date,symbol,high,low,close\n2021-01-04,AAA,1,2,1.5\n",
    "long_negative_volume": "date,symbol,close,volume\n2021-01-04,AAA,1,-1\n",
    "long_zero_open": "date,symbol,open,close\n2021-01-04,AAA,0,1\n",
    "long_missing_date": "date,symbol,close\n,AAA,1\n",
}


@pytest.mark.parametrize("name", sorted(CLEAN_CSV))
def test_clean_text_tables_equal_the_full_check(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _csv(tmp_path, CLEAN_CSV[name])
    fast = validation.validate_table(table)
    full = _full_check(monkeypatch, table)
    assert fast.prices.equals(full.prices) and fast.prices.schema == full.prices.schema
    assert (fast.form, fast.empty_cells) == (full.form, full.empty_cells)


def test_clean_tables_take_the_bulk_path(tmp_path: Path) -> None:
    wide = _csv(tmp_path, CLEAN_CSV["wide_unsorted_with_gaps"])
    cleaned = validation._clean_wide(wide, "Date")
    assert cleaned is not None and cleaned[1] == 3
    assert cleaned[0].get_column("symbol").to_list()[:3] == ["AAA", "AAA", "B.X"]
    long = _csv(tmp_path, CLEAN_CSV["long_ohlcv_unsorted"]).frame
    assert validation._clean_long(long.rename(str.lower)) is not None


@pytest.mark.parametrize("name", sorted(BAD_CSV))
def test_bad_tables_get_the_full_checks_error(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _csv(tmp_path, BAD_CSV[name], f"{name}.csv")
    with pytest.raises(DataValidationError) as raised:
        validation.validate_table(table)
    full = _full_check(monkeypatch, table)
    assert isinstance(full, DataValidationError)
    assert str(raised.value) == str(full) and raised.value.details == full.details
    assert str(raised.value).startswith(f"{table.name}")


def test_typed_parquet_tables_equal_the_full_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [date(2021, 1, 4), date(2021, 1, 6), date(2021, 1, 5)]
    wide = pl.DataFrame(
        {"date": days, "AAA": [1, 2, 3], "BBB": [None, 2.5, 3.5], "CCC": [1.0, None, 2.0]}
    )
    long = pl.DataFrame(
        {
            "date": [datetime(2021, 1, 5, tzinfo=UTC), datetime(2021, 1, 4, tzinfo=UTC)],
            "symbol": ["AAA", "AAA"],
            "close": [2, 1],
            "volume": [0, 5],
        }
    )
    for frame in (wide, long):
        table = _parquet(tmp_path, frame)
        fast = validation.validate_table(table)
        full = _full_check(monkeypatch, table)
        assert fast.prices.equals(full.prices) and fast.empty_cells == full.empty_cells
    bad = wide.with_columns(pl.Series("CCC", [1.0, math.nan, 2.0]))
    with pytest.raises(DataValidationError, match=r"row 2 \(date 2021-01-06\), column CCC.*NaN"):
        validation.validate_table(_parquet(tmp_path, bad))


def test_one_bad_cell_in_a_large_file_is_named_and_nothing_is_written(
    tmp_path: Path, local_store: str
) -> None:
    rng = np.random.default_rng(3)
    dates = pl.date_range(date(2015, 1, 1), date(2015, 12, 31), eager=True)
    wide = pl.DataFrame(
        {"date": dates, **{f"S{i:03d}": rng.uniform(1, 2, dates.len()) for i in range(120)}}
    )
    text = wide.with_columns(pl.col("S077").cast(pl.String)).with_columns(
        pl.when(pl.int_range(pl.len()) == 200).then(pl.lit("-0.5")).otherwise("S077").alias("S077")
    )
    path = tmp_path / "big.csv"
    text.write_csv(path)
    with pytest.raises(DataValidationError) as raised:
        ingest(str(path), store=local_store)
    assert str(raised.value).startswith(f"{path}, row 202 (date 2015-07-20), column S077: value")
    assert "must be positive" in str(raised.value)
    assert not Path(local_store).exists()
    wide.write_csv(tmp_path / "ok.csv")
    ingest(str(tmp_path / "ok.csv"), store=local_store)
    assert load_prices(["S077"], store=local_store)["close"].to_list() == wide["S077"].to_list()


def _reference_price_document(symbol: str, frame: pl.DataFrame, sha256: str, stamp: str) -> bytes:
    """The price document encoded value by value (the documented layout)."""
    fields = ["close"] + [
        f for f in PRICE_FIELDS if frame.get_column(f).null_count() < frame.height
    ]
    doc: dict[str, Any] = {
        "schema_version": RESEARCH_SCHEMA_VERSION,
        "symbol": symbol,
        "fields": fields,
        "date": [d.isoformat() for d in frame.get_column("date").to_list()],
        "data_sha256": sha256,
        "updated_at": stamp,
    }
    for name in fields:
        doc[name] = [
            None if v is not None and math.isnan(v) else v for v in frame.get_column(name).to_list()
        ]
    return dumps_json(doc, pretty=False)


@pytest.fixture(scope="module")
def awkward_frames() -> dict[str, pl.DataFrame]:
    """Symbols with every kind of value the encoding must get right."""
    rng = np.random.default_rng(11)
    odd = [1e-5, 9.99e-5, 1e-4, 1.0, 10.0, 1e16, 1.5e17, 123456789.123, 0.1 + 0.2, 2.5e-7]
    frames = {}
    for n, symbol in enumerate(["AAA", "B.X", "C-1", "DDD"]):
        days = pl.date_range(date(1999, 12, 20 + n), date(2000, 3, 5), eager=True)
        close = rng.lognormal(0, 3, days.len())
        close[: len(odd)] = odd
        frame = pl.DataFrame({"date": days, "symbol": symbol, "close": close})
        frame = frame.with_columns(
            open=pl.col("close") * 0.99 if n % 2 else pl.lit(None, pl.Float64),
            high=pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("close")),
            low=pl.lit(None, pl.Float64) if n != 3 else pl.lit(math.nan),
            volume=pl.int_range(pl.len()).cast(pl.Float64) * 1000,
        )
        frames[symbol] = frame
    return frames


def test_price_documents_equal_the_value_by_value_encoding(
    awkward_frames: dict[str, pl.DataFrame],
) -> None:
    sha = {s: hashlib.sha256(s.encode()).hexdigest() for s in awkward_frames}
    docs = price_documents(awkward_frames, sha)
    assert list(docs) == list(awkward_frames)
    for symbol, frame in awkward_frames.items():
        body, entry = docs[symbol]
        stamp = json.loads(body)["updated_at"]
        assert body == _reference_price_document(symbol, frame, sha[symbol], stamp)
        assert entry == {
            "symbol": symbol,
            "first_date": frame["date"][0].isoformat(),
            "last_date": frame["date"][-1].isoformat(),
            "last_close": frame["close"][-1],
            "rows": frame.height,
            "data_sha256": sha[symbol],
        }
    assert json.loads(docs["DDD"][0])["low"][0] is None  # NaN is served as null


def test_tail_documents_equal_the_value_by_value_encoding(
    awkward_frames: dict[str, pl.DataFrame],
) -> None:
    tails = tail_documents(awkward_frames, {s: "f" * 64 for s in awkward_frames})
    for symbol, frame in awkward_frames.items():
        tail = frame.tail(PRICE_TAIL_LENGTH)
        expected = {
            "schema_version": PRICE_TAIL_SCHEMA_VERSION,
            "symbol": symbol,
            "dates": [d.isoformat() for d in tail["date"].to_list()],
            "close": tail["close"].to_list(),
            "data_sha256": "f" * 64,
            "updated_at": json.loads(tails[symbol])["updated_at"],
        }
        assert tails[symbol] == dumps_json(expected, pretty=False)


def test_number_text_is_what_json_writes() -> None:
    values = np.concatenate(
        [
            np.random.default_rng(5).lognormal(0, 12, 20_000),
            [0.0, -0.0, 1e-4, 9.999e-5, 5e-324, 1e16, 9999999999999998.0, 1.7976931348623157e308],
        ]
    )
    text = number_text(pl.Series(values)).to_list()
    assert text == [json.dumps(float(v)) for v in values]
    assert number_text(pl.Series([1.0, None, math.nan])).to_list() == ["1.0", "null", "null"]
    with pytest.raises(ValueError, match="JSON"):
        number_text(pl.Series([math.inf]))


def test_csv_round_trip_through_bulk_paths(tmp_path: Path, local_store: str) -> None:
    """Gaps, late starts and the serving documents after a wide ingest."""
    text = CLEAN_CSV["wide_unsorted_with_gaps"]
    path = tmp_path / "w.csv"
    path.write_text(text)
    report = ingest(str(path), store=local_store)
    assert report.empty_cells == 3 and report.rows_added == 9
    stored = load_prices(store=local_store)
    reference = pl.read_csv(io.StringIO(text), infer_schema=False)
    assert stored.filter(pl.col("symbol") == "B.X")["close"].to_list() == [1e-4, 5.0, 1e2]
    assert sorted(set(stored["symbol"])) == sorted(reference.columns[1:])


def test_one_batch_adds_revises_and_keeps_symbols_side_by_side(
    tmp_path: Path, local_store: str
) -> None:
    first = tmp_path / "first.csv"
    first.write_text("Date,AAA,BBB,CCC\n2021-01-04,1,2,3\n2021-01-05,1.1,2.1,3.1\n")
    ingest(str(first), store=local_store)
    data = Path(local_store) / "prices" / "data"
    before = {p.parent.name: p.name for p in data.rglob("*.parquet")}
    second = tmp_path / "second.csv"
    # AAA unchanged, BBB revised on 01-05 and extended, CCC absent, DDD new
    second.write_text("Date,AAA,BBB,DDD\n2021-01-05,1.1,2.2,9\n2021-01-06,,2.3,9.1\n")
    report = ingest(str(second), store=local_store)
    rows = {r["symbol"]: r for r in report.summary.iter_rows(named=True)}
    assert {s: (r["added"], r["revised"], r["stored_rows"]) for s, r in rows.items()} == {
        "AAA": (0, 0, 2),
        "BBB": (1, 1, 3),
        "DDD": (2, 0, 2),
    }
    after = {p.parent.name: p.name for p in data.rglob("*.parquet")}
    assert after["AAA"] == before["AAA"] and after["CCC"] == before["CCC"]
    assert after["BBB"] != before["BBB"] and set(after) == {"AAA", "BBB", "CCC", "DDD"}
    stored = load_prices(store=local_store)
    assert stored.filter(pl.col("symbol") == "BBB")["close"].to_list() == [2.0, 2.2, 2.3]
    assert stored.filter(pl.col("symbol") == "CCC")["close"].to_list() == [3.0, 3.1]


def test_several_files_in_one_batch_merge_in_order(tmp_path: Path, local_store: str) -> None:
    base = tmp_path / "base.csv"
    base.write_text("Date,BBB,AAA\n2021-01-04,20,10\n2021-01-05,21,11\n")
    ingest(str(base), store=local_store)
    one = tmp_path / "one.csv"
    one.write_text("date,symbol,close\n2021-01-08,AAA,14\n2021-01-06,CCC,5\n2021-01-05,AAA,11.5\n")
    two = tmp_path / "two.csv"
    two.write_text("Date,BBB,AAA\n2021-01-07,23,13\n2021-01-06,22,12\n")
    report = ingest([str(one), str(two)], store=local_store)
    rows = {r["symbol"]: (r["added"], r["revised"]) for r in report.summary.iter_rows(named=True)}
    assert rows == {"AAA": (3, 1), "BBB": (2, 0), "CCC": (1, 0)}
    stored = load_prices(store=local_store)
    assert stored["symbol"].to_list() == ["AAA"] * 5 + ["BBB"] * 4 + ["CCC"]
    assert stored.filter(pl.col("symbol") == "AAA")["close"].to_list() == [10, 11.5, 12, 13, 14]
    assert stored.filter(pl.col("symbol") == "BBB")["date"].is_sorted()
