"""The price dataset in a store: one Parquet file per symbol, named by a manifest.

Layout under the store root::

    prices/manifest.json                 which file holds each symbol (the commit point)
    prices/data/<SYMBOL>/<sha256>.parquet one immutable, content-addressed file per version
    prices/latest/<SYMBOL>.json          the serving tail (see titan_lib.core.prices)

A reader takes the manifest, then the files it names. A writer writes new data files first
and then swaps the manifest with a compare-and-swap, so readers see the old dataset or the
new one, never a mix, and two concurrent writers cannot lose each other's update.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from titan_lib.config import store_option
from titan_lib.core.prices import PRICE_TAIL_LENGTH, PRICE_TAIL_SCHEMA_VERSION, price_tail_key
from titan_lib.data.json_columns import json_arrays, json_object, stack_symbols
from titan_lib.data.schema import PRICE_SCHEMA
from titan_lib.exceptions import DataValidationError, NotFoundError, SchemaVersionError
from titan_lib.stores.objects import ObjectStore, dumps_json

MANIFEST_KEY = "prices/manifest.json"
MANIFEST_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SymbolEntry:
    """One symbol's current data file and its coverage."""

    key: str
    sha256: str
    rows: int
    first_date: str
    last_date: str


@dataclass(frozen=True)
class Manifest:
    """The committed state of the price dataset."""

    version: int
    symbols: dict[str, SymbolEntry]
    updated_at: str | None
    token: str | None

    def to_json(self) -> bytes:
        return dumps_json(
            {
                "schema_version": MANIFEST_SCHEMA_VERSION,
                "version": self.version,
                "updated_at": self.updated_at,
                "symbols": {s: e.__dict__ for s, e in sorted(self.symbols.items())},
            }
        )


def read_manifest(store: ObjectStore) -> Manifest:
    """Read the manifest; an empty store gives an empty manifest (version 0)."""
    found = _manifest_document(store)
    if found is None:
        return Manifest(version=0, symbols={}, updated_at=None, token=None)
    doc, token = found
    symbols = {s: SymbolEntry(**e) for s, e in doc["symbols"].items()}
    return Manifest(doc["version"], symbols, doc.get("updated_at"), token)


def _manifest_document(store: ObjectStore) -> tuple[dict[str, Any], str] | None:
    """The parsed manifest and its version token; ``None`` in an empty store."""
    found = store.read_versioned(MANIFEST_KEY)
    if found is None:
        return None
    data, token = found
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise DataValidationError(f"{store.uri}/{MANIFEST_KEY} is not valid JSON: {exc}") from None
    if doc.get("schema_version") != MANIFEST_SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{store.uri}/{MANIFEST_KEY} has schema_version {doc.get('schema_version')!r}; "
            f"this code reads {MANIFEST_SCHEMA_VERSION}"
        )
    return doc, token


def to_parquet_bytes(frame: pl.DataFrame) -> bytes:
    """Serialise one symbol's prices (stored schema) as Parquet."""
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def data_key(symbol: str, payload: bytes) -> tuple[str, str]:
    """The content-addressed key of a symbol's data file, and the payload's sha256."""
    digest = hashlib.sha256(payload).hexdigest()
    return f"prices/data/{symbol}/{digest[:32]}.parquet", digest


def read_symbol(store: ObjectStore, entry: SymbolEntry) -> pl.DataFrame:
    """Read one symbol's stored prices."""
    path = store.local_path(entry.key)
    if path is not None:
        return pl.read_parquet(path)
    return pl.read_parquet(io.BytesIO(store.read_bytes(entry.key)))


def tail_documents(
    frames: Mapping[str, pl.DataFrame], sha256: Mapping[str, str]
) -> dict[str, bytes]:
    """The serving tails of symbols' prices (each frame sorted by date), by symbol: the last
    :data:`~titan_lib.core.prices.PRICE_TAIL_LENGTH` dates and closes, compact JSON."""
    if not frames:
        return {}
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    tails = stack_symbols(
        {s: f.tail(PRICE_TAIL_LENGTH) for s, f in frames.items()}, ["date", "close"]
    )
    return {
        row["symbol"]: json_object(
            {"dates": row["date"], "close": row["close"]},
            {
                "schema_version": PRICE_TAIL_SCHEMA_VERSION,
                "symbol": row["symbol"],
                "data_sha256": sha256[row["symbol"]],
                "updated_at": stamp,
            },
        )
        for row in json_arrays(tails, ["close"]).iter_rows(named=True)
    }


def tail_is_current(store: ObjectStore, symbol: str, entry: SymbolEntry) -> bool:
    """Whether the symbol's serving tail was written from its current data file."""
    found = store.read_versioned(price_tail_key(symbol))
    if found is None:
        return False
    try:
        return bool(json.loads(found[0]).get("data_sha256") == entry.sha256)
    except ValueError:
        return False


def unknown_symbols_error(
    store: ObjectStore, unknown: Iterable[str], manifest: Manifest
) -> NotFoundError:
    """A NotFoundError naming unknown symbols and what the store holds."""
    missing = sorted(set(unknown))
    if not manifest.symbols:
        return NotFoundError(
            f"the store {store.uri} holds no prices; run `titan data ingest sample"
            f"{store_option(store.uri)}` (or ingest your own files) first",
            {"store": store.uri},
        )
    known = sorted(manifest.symbols)
    shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
    return NotFoundError(
        f"unknown symbol{'s' if len(missing) > 1 else ''} {', '.join(missing)} in store "
        f"{store.uri} (it holds {len(known)} symbols: {shown})",
        {"symbols": missing, "store": store.uri},
    )


def coerce_date(value: date | datetime | str | None, name: str) -> date | None:
    """Accept a date, a datetime or an ISO ``YYYY-MM-DD`` string."""
    from titan_lib.exceptions import ParameterError

    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ParameterError(f"{name}={value!r} is not a date (expected YYYY-MM-DD)") from None


def load_from_store(
    store: ObjectStore,
    symbols: Sequence[str] | None,
    start: date | None,
    end: date | None,
) -> pl.DataFrame:
    """Read the named symbols (all when ``None``) between ``start`` and ``end`` inclusive."""
    found = _manifest_document(store)
    # entries are built for the wanted symbols only: a query of two symbols of thousands
    stored: dict[str, dict[str, Any]] = {} if found is None else found[0]["symbols"]
    wanted = sorted(stored) if symbols is None else list(dict.fromkeys(symbols))
    unknown = [s for s in wanted if s not in stored]
    if unknown or not wanted:
        raise unknown_symbols_error(store, unknown or ["(any)"], read_manifest(store))
    # symbols in name order, each file already in date order: no sort needed afterwards
    return read_entries(store, [SymbolEntry(**stored[s]) for s in sorted(wanted)], start, end)


def read_entries(
    store: ObjectStore,
    entries: Sequence[SymbolEntry],
    start: date | None = None,
    end: date | None = None,
) -> pl.DataFrame:
    """The stored rows of the data files of ``entries``, one file after another in the
    order given (each in date order), between ``start`` and ``end`` inclusive.

    Local files are read by one multi-file scan; remote ones one by one.
    """
    paths = [store.local_path(e.key) for e in entries]
    if all(p is not None for p in paths):
        lazy = pl.scan_parquet([str(p) for p in paths])
    else:
        lazy = pl.concat([read_symbol(store, e).lazy() for e in entries])
    if start is not None:
        lazy = lazy.filter(pl.col("date") >= start)
    if end is not None:
        lazy = lazy.filter(pl.col("date") <= end)
    return lazy.select(list(PRICE_SCHEMA)).collect().rechunk()


def manifest_summary(manifest: Manifest) -> pl.DataFrame:
    """One row per stored symbol: symbol, first_date, last_date, rows."""
    rows: list[dict[str, Any]] = [
        {
            "symbol": s,
            "first_date": date.fromisoformat(e.first_date),
            "last_date": date.fromisoformat(e.last_date),
            "rows": e.rows,
        }
        for s, e in sorted(manifest.symbols.items())
    ]
    schema = {"symbol": pl.String, "first_date": pl.Date, "last_date": pl.Date, "rows": pl.Int64}
    return pl.DataFrame(rows, schema=schema)
