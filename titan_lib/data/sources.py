"""Reading raw price files (CSV or Parquet, local or ``s3://``) as untyped tables.

Everything is read as text (CSV) or as stored (Parquet) and typed later by
:mod:`titan_lib.data.validate`, so a bad cell is reported with its file, row and column
instead of failing inside a parser.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from titan_lib.exceptions import DataValidationError, NotFoundError, StoreError

SAMPLE_SOURCE = "sample"
"""The source name of the bundled real sample (20 US stocks and the S&P 500 index)."""

SAMPLE_DIR = Path(__file__).with_name("sample")
SAMPLE_FILES = ("sp500_20_stocks.parquet", "sp500_index.parquet")


@dataclass(frozen=True)
class RawTable:
    """One input file read into memory.

    ``first_row`` is the file row number of ``frame``'s first data row: 2 for CSV (the
    header is row 1), 1 for Parquet.
    """

    name: str
    frame: pl.DataFrame
    first_row: int


def expand_sources(
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> list[str]:
    """Turn a source, a list of sources or ``"sample"`` into a list of file URIs."""
    items = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    out: list[str] = []
    for item in items:
        text = os.fspath(item)
        if text == SAMPLE_SOURCE:
            out.extend(str(SAMPLE_DIR / name) for name in SAMPLE_FILES)
        else:
            out.append(text)
    if not out:
        raise DataValidationError("no source files given to ingest")
    return out


def _read_s3(uri: str) -> bytes:
    import boto3

    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise DataValidationError(f"{uri}: an S3 source needs s3://bucket/key", {"file": uri})
    try:
        obj = boto3.client("s3").get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise NotFoundError(f"{uri}: no such S3 object", {"file": uri}) from None
        raise StoreError(f"{uri}: could not read from S3: {exc}", {"file": uri}) from None
    return bytes(obj["Body"].read())


def _read_bytes(uri: str) -> bytes:
    if uri.startswith("s3://"):
        return _read_s3(uri)
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{uri}: no such file", {"file": uri}) from None
    except IsADirectoryError:
        raise DataValidationError(f"{uri}: is a folder, not a file", {"file": uri}) from None


def read_table(uri: str) -> RawTable:
    """Read one CSV or Parquet file (by suffix) without interpreting its values.

    Raises
    ------
    DataValidationError
        An empty file, an unreadable file or an unknown suffix.
    """
    suffix = uri.rsplit(".", 1)[-1].lower() if "." in uri.rsplit("/", 1)[-1] else ""
    if suffix not in ("csv", "parquet", "pq"):
        raise DataValidationError(
            f"{uri}: unknown file type {suffix!r}; expected .csv or .parquet", {"file": uri}
        )
    data = _read_bytes(uri)
    if not data or data.isspace():
        raise DataValidationError(f"{uri}: the file is empty", {"file": uri})
    try:
        if suffix == "csv":
            frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
            first_row = 2
        else:
            frame = pl.read_parquet(io.BytesIO(data))
            first_row = 1
    except Exception as exc:
        raise DataValidationError(
            f"{uri}: not a readable {suffix} file: {exc}", {"file": uri}
        ) from None
    if frame.height == 0:
        raise DataValidationError(f"{uri}: the file is empty (no data rows)", {"file": uri})
    return RawTable(name=uri, frame=frame, first_row=first_row)
