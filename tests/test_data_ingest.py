"""Price ingest: formats, validation messages, gaps, atomicity, idempotency, stores."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import date
from pathlib import Path

import boto3
import polars as pl
import pytest
from fixtures.cli_runs import run_titan as run_cli

from titan_lib.core.prices import latest_prices
from titan_lib.data import ingest, ingest_frame, list_symbols, load_prices, sample_prices
from titan_lib.data.price_store import MANIFEST_KEY, read_manifest
from titan_lib.exceptions import DataValidationError, NotFoundError
from titan_lib.stores import open_store

WIDE = """Date,AAA,BBB
2021-01-04,10.0,20.0
2021-01-05,10.5,20.5
2021-01-06,11.0,21.0
"""


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def snapshot(root: Path) -> dict[str, str]:
    """Every file below root (hidden ones included) with its sha256."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_wide_csv_round_trip(tmp_path: Path, local_store: str) -> None:
    report = ingest(write(tmp_path / "w.csv", WIDE), store=local_store)
    assert report.rows_read == 6 and report.rows_added == 6
    prices = load_prices(store=local_store)
    assert prices.columns == ["date", "symbol", "close", "open", "high", "low", "volume"]
    assert prices.get_column("symbol").to_list() == ["AAA"] * 3 + ["BBB"] * 3
    assert prices.filter(pl.col("symbol") == "BBB").get_column("close").to_list() == [
        20.0,
        20.5,
        21.0,
    ]
    assert prices.schema["date"] == pl.Date


def test_long_csv_with_ohlcv(tmp_path: Path, local_store: str) -> None:
    text = (
        "date,symbol,open,high,low,close,volume\n"
        "2021-01-04,XYZ,9.5,10.5,9.0,10.0,1000\n"
        "2021-01-05,XYZ,10.0,11.0,9.8,10.9,0\n"
    )
    ingest(write(tmp_path / "l.csv", text), store=local_store)
    row = load_prices("XYZ", store=local_store).row(1, named=True)
    assert row == {
        "date": date(2021, 1, 5),
        "symbol": "XYZ",
        "close": 10.9,
        "open": 10.0,
        "high": 11.0,
        "low": 9.8,
        "volume": 0.0,
    }


def test_parquet_long_and_wide(tmp_path: Path, local_store: str) -> None:
    wide = pl.read_csv(io.StringIO(WIDE)).with_columns(pl.col("Date").str.to_date())
    wide.write_parquet(tmp_path / "w.parquet")
    ingest(str(tmp_path / "w.parquet"), store=local_store)
    assert load_prices(store=local_store).height == 6


BAD_CASES = [
    # (name, file text, substrings the message must contain)
    ("missing_date", "Date,AAA\n2021-01-04,1\n,2\n", ["row 3", "column Date", "missing date"]),
    (
        "bad_date",
        "Date,AAA\n2021-01-04,1\n2021-13-45,2\n",
        ["row 3", "2021-13-45", "column Date", "unparseable date"],
    ),
    (
        "dup_wide",
        "Date,AAA\n2021-01-04,1\n2021-01-04,2\n",
        ["row 3", "date 2021-01-04", "column AAA", "duplicate (date, symbol)"],
    ),
    (
        "dup_long",
        "date,symbol,close\n2021-01-04,AAA,1\n2021-01-05,AAA,2\n2021-01-04,AAA,3\n",
        ["row 4", "date 2021-01-04", "duplicate (date, symbol)"],
    ),
    ("dup_column", "Date,AAA,AAA\n2021-01-04,1,2\n", ["column AAA", "duplicate symbol column"]),
    (
        "non_numeric",
        "Date,AAA,BBB\n2021-01-04,1,2\n2021-01-05,1,abc\n",
        ["row 3", "date 2021-01-05", "column BBB", "'abc' is not a number"],
    ),
    ("nan_text", "Date,AAA\n2021-01-04,NaN\n", ["row 2", "column AAA", "NaN"]),
    ("na_text", "Date,AAA\n2021-01-04,n/a\n", ["row 2", "column AAA", "'n/a' is not a number"]),
    ("zero", "Date,AAA\n2021-01-04,1\n2021-01-05,0\n", ["row 3", "column AAA", "must be positive"]),
    ("negative", "Date,AAA\n2021-01-04,-3.5\n", ["row 2", "column AAA", "must be positive"]),
    (
        "high_below_low",
        "date,symbol,high,low,close\n2021-01-04,AAA,9,10,9.5\n",
        ["row 2", "column high", "below the low"],
    ),
    ("empty_file", "", ["the file is empty"]),
    ("header_only", "Date,AAA\n", ["the file is empty"]),
    (
        "unknown_long_column",
        "date,symbol,close,colour\n2021-01-04,AAA,1,red\n",
        ["column colour", "unknown column in long form"],
    ),
    ("missing_close_long", "date,symbol,close\n2021-01-04,AAA,\n", ["row 2", "missing close"]),
    (
        "negative_volume",
        "date,symbol,close,volume\n2021-01-04,AAA,1,-5\n",
        ["row 2", "column volume", "must not be negative"],
    ),
]


@pytest.mark.parametrize(("name", "text", "needles"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_is_rejected_with_its_location(
    name: str,
    text: str,
    needles: list[str],
    tmp_path: Path,
    local_store: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path / f"{name}.csv", text)
    code, out, err = run_cli(["data", "ingest", path, "--store", local_store], capsys)
    assert code == 1
    assert err.startswith("error: ")
    assert "Traceback" not in err + out
    assert path in err, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    assert snapshot(Path(local_store)) == {}


def test_nan_in_parquet_is_rejected(tmp_path: Path, local_store: str) -> None:
    frame = pl.DataFrame({"date": [date(2021, 1, 4), date(2021, 1, 5)], "AAA": [1.0, float("nan")]})
    frame.write_parquet(tmp_path / "nan.parquet")
    with pytest.raises(DataValidationError, match=r"row 2 \(date 2021-01-05\), column AAA.*NaN"):
        ingest(str(tmp_path / "nan.parquet"), store=local_store)


def test_gaps_are_legal_and_reported(tmp_path: Path, local_store: str) -> None:
    text = (
        "Date,EARLY,LATE,HOLEY\n"
        "2021-01-04,1,,5\n"
        "2021-01-05,1.1,,5.1\n"
        "2021-01-06,1.2,7,\n"
        "2021-01-07,1.3,7.1,5.3\n"
    )
    report = ingest(write(tmp_path / "g.csv", text), store=local_store)
    rows = {r["symbol"]: r for r in report.summary.iter_rows(named=True)}
    assert rows["LATE"]["late_start"] and rows["LATE"]["gaps"] == 0
    assert rows["HOLEY"]["gaps"] == 1 and not rows["HOLEY"]["late_start"]
    assert rows["EARLY"]["gaps"] == 0
    assert report.empty_cells == 3
    assert "HOLEY: 1 missing dates" in str(report) and "starts late on 2021-01-06" in str(report)
    assert load_prices("LATE", store=local_store).height == 2


def test_failed_batch_leaves_store_byte_for_byte_unchanged(
    tmp_path: Path, local_store: str
) -> None:
    ingest(write(tmp_path / "first.csv", WIDE), store=local_store)
    before = snapshot(Path(local_store))
    good = write(tmp_path / "good.csv", WIDE.replace("2021-01-0", "2022-01-0"))
    bad = write(tmp_path / "bad.csv", "Date,AAA\n2022-02-01,oops\n")
    with pytest.raises(DataValidationError, match=r"bad\.csv"):
        ingest([good, bad], store=local_store)
    assert snapshot(Path(local_store)) == before


def test_crash_before_commit_leaves_store_unchanged(
    tmp_path: Path, local_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data files are written, then the manifest swap fails: the call cleans up after itself."""
    ingest(write(tmp_path / "first.csv", WIDE), store=local_store)
    before = snapshot(Path(local_store))
    from titan_lib.stores.local import LocalObjectStore

    def crash(self: LocalObjectStore, key: str, data: bytes, token: str | None) -> None:
        assert any(k.endswith(".parquet") for k in self.list("prices/data"))
        raise KeyboardInterrupt("interrupted during commit")

    monkeypatch.setattr(LocalObjectStore, "write_if_match", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest(
            write(tmp_path / "more.csv", WIDE.replace("2021-01-0", "2023-01-0")), store=local_store
        )
    assert snapshot(Path(local_store)) == before


def test_reingest_is_idempotent_and_newer_rows_append(tmp_path: Path, local_store: str) -> None:
    lines = WIDE.strip().splitlines()
    first = write(tmp_path / "a.csv", "\n".join(lines[:3]) + "\n")
    ingest(first, store=local_store)
    before = snapshot(Path(local_store))
    again = ingest(first, store=local_store)
    assert again.rows_added == 0 and again.rows_revised == 0
    assert snapshot(Path(local_store)) == before
    newer = write(tmp_path / "b.csv", "\n".join([lines[0], *lines[2:]]) + "\n")
    report = ingest(newer, store=local_store)
    assert report.rows_added == 2 and report.rows_revised == 0
    full = load_prices(store=local_store)
    assert full.height == 6
    assert read_manifest(open_store(local_store)).version == 2


def test_restated_rows_are_revised(tmp_path: Path, local_store: str) -> None:
    ingest(write(tmp_path / "a.csv", WIDE), store=local_store)
    report = ingest(write(tmp_path / "b.csv", "Date,AAA\n2021-01-05,10.25\n"), store=local_store)
    assert report.rows_revised == 1 and report.rows_added == 0
    closes = load_prices("AAA", store=local_store).get_column("close").to_list()
    assert closes == [10.0, 10.25, 11.0]


def test_load_prices_filters_and_errors(local_store: str) -> None:
    ingest_frame(sample_prices(["KO", "PEP"]), store=local_store)
    frame = load_prices(
        ["PEP", "KO"], start="2010-01-01", end=date(2010, 12, 31), store=local_store
    )
    assert frame.get_column("symbol").unique(maintain_order=True).to_list() == ["KO", "PEP"]
    assert frame.get_column("date").min() >= date(2010, 1, 1)
    assert frame.get_column("date").max() <= date(2010, 12, 31)
    assert frame.filter(pl.col("symbol") == "KO").get_column("date").is_sorted()
    with pytest.raises(NotFoundError, match=r"unknown symbol ZZZZ in store .*holds 2 symbols"):
        load_prices(["KO", "ZZZZ"], store=local_store)


def test_empty_store_says_what_to_run(local_store: str) -> None:
    with pytest.raises(NotFoundError, match="titan data ingest sample"):
        load_prices(store=local_store)


def test_sample_ingest_and_symbols_command(
    local_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["data", "ingest", "sample", "--store", local_store], capsys)
    assert code == 0 and "21 symbols" in out
    code, out, _ = run_cli(["data", "symbols", "--store", local_store], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 22
    assert lines[1].split() == ["AAPL", "1990-01-02", "2022-12-28", "8313"]
    table = list_symbols(local_store)
    assert set(table.get_column("symbol")) == set(sample_prices().get_column("symbol"))


def test_serving_tail_matches_the_dataset(local_store: str) -> None:
    ingest_frame(sample_prices(["KO"]), store=local_store)
    tail = latest_prices(open_store(local_store), "KO")
    stored = load_prices("KO", store=local_store).tail(len(tail.close))
    assert list(tail.close) == stored.get_column("close").to_list()
    assert list(tail.dates) == [d.isoformat() for d in stored.get_column("date").to_list()]
    assert tail.last_date == "2022-12-28"


def test_s3_source_and_s3_store(tmp_path: Path, s3_bucket: str) -> None:
    s3 = boto3.client("s3")
    s3.put_object(Bucket=s3_bucket, Key="raw/w.csv", Body=WIDE.encode())
    store = f"s3://{s3_bucket}/titan"
    report = ingest(f"s3://{s3_bucket}/raw/w.csv", store=store)
    assert report.rows_added == 6
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert f"titan/{MANIFEST_KEY}" in keys
    assert any(k.startswith("titan/prices/latest/AAA.json") for k in keys)
    frame = load_prices(["BBB"], store=store)
    assert frame.get_column("close").to_list() == [20.0, 20.5, 21.0]
    assert ingest(f"s3://{s3_bucket}/raw/w.csv", store=store).rows_added == 0
    with pytest.raises(NotFoundError, match="no such S3 object"):
        ingest(f"s3://{s3_bucket}/raw/missing.csv", store=store)


def test_s3_failed_batch_leaves_bucket_unchanged(tmp_path: Path, s3_bucket: str) -> None:
    s3 = boto3.client("s3")
    store = f"s3://{s3_bucket}/titan"
    ingest(write(tmp_path / "w.csv", WIDE), store=store)

    def listing() -> dict[str, str]:
        return {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}

    before = listing()
    bad = write(tmp_path / "bad.csv", "Date,AAA\n2022-02-01,-1\n")
    with pytest.raises(DataValidationError):
        ingest([write(tmp_path / "ok.csv", WIDE.replace("2021", "2022")), bad], store=store)
    assert listing() == before


def test_cli_is_a_real_command(tmp_path: Path) -> None:
    """The installed `titan` entry point exits 1 with a one-line error, no traceback."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("titan")
    bad = write(tmp_path / "bad.csv", "Date,AAA\n2021-01-04,n/a\n")
    proc = subprocess.run(
        [str(exe), "data", "ingest", bad, "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}, row 2 (date 2021-01-04), column AAA: value 'n/a' is not a number"
    ]
