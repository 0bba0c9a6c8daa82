"""The research serving documents: symbols, prices, scans and runs as small JSON objects.

The research side (:mod:`titan_lib.data.serving_documents`) writes them when it stores
prices, scans and run records, so the read API needs neither Parquet nor a numeric
library. Layout under the store root (every object written atomically)::

    serving/symbols.json                  every symbol: first/last date, last close
    serving/prices/<SYMBOL>.json          one symbol's stored prices, columnar
    serving/scans.json                    every scan's summary, newest first
    serving/scans/<scan_id>/scan.json     a scan's document and its pair pieces
    serving/scans/<scan_id>/pairs-<n>.json  ranked pairs, PAIRS_PER_PIECE per piece
    serving/runs.json                     every run's summary, newest first
    serving/runs/<run_id>.json            a run's document (metrics of backtests)

Each document carries ``schema_version`` (:data:`RESEARCH_SCHEMA_VERSION`). Dates are ISO
``YYYY-MM-DD`` text, prices are in the stored currency, missing values are ``null``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from titan_lib.exceptions import DataValidationError, NotFoundError, SchemaVersionError
from titan_lib.stores.objects import ObjectStore

RESEARCH_SCHEMA_VERSION = 1
SERVING_PREFIX = "serving/"
SYMBOLS_KEY = "serving/symbols.json"
SCANS_INDEX_KEY = "serving/scans.json"
RUNS_INDEX_KEY = "serving/runs.json"
PAIRS_PER_PIECE = 2000
"""Ranked pairs per piece of a scan's serving document."""
PRICE_FIELDS = ("open", "high", "low", "volume")
"""Price columns served besides ``close`` when a symbol has them stored."""
RunKind = Literal["backtest", "walk_forward"]
BACKTEST_KINDS: dict[str, RunKind] = {"05_backtest": "backtest", "06_walk_forward": "walk_forward"}
"""Notebooks whose runs are backtests, and the kind each one is."""

SCAN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")
RUN_ID = re.compile(r"[0-9]{8}T[0-9]{9}Z-[0-9a-f]{6}")


def price_document_key(symbol: str) -> str:
    """Store key of a symbol's price document."""
    return f"serving/prices/{symbol}.json"


def scan_document_key(scan_id: str) -> str:
    """Store key of a scan's serving document."""
    return f"serving/scans/{scan_id}/scan.json"


def pairs_piece_key(scan_id: str, piece: int) -> str:
    """Store key of the ``piece``-th piece (from 0) of a scan's ranked pairs."""
    return f"serving/scans/{scan_id}/pairs-{piece:05d}.json"


def run_document_key(run_id: str) -> str:
    """Store key of a run's serving document."""
    return f"serving/runs/{run_id}.json"


def read_document(store: ObjectStore, key: str, what: str, details: dict[str, Any]) -> Any:
    """Parse one serving document, checking its schema version.

    Raises
    ------
    NotFoundError
        The store has no such document; the message names ``what``.
    DataValidationError, SchemaVersionError
        The document is not valid JSON, or was written by another schema version.
    """
    try:
        data = store.read_bytes(key)
    except NotFoundError:
        raise NotFoundError(f"no {what} in store {store.uri}", details) from None
    return _parsed(store, key, data, details)


def _parsed(store: ObjectStore, key: str, data: bytes, details: dict[str, Any]) -> Any:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise DataValidationError(f"{store.uri}/{key} is not valid JSON: {exc}", details) from None
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if version != RESEARCH_SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{store.uri}/{key} has schema_version {version!r}; "
            f"this code reads {RESEARCH_SCHEMA_VERSION}",
            details,
        )
    return doc


def read_index(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    """The items of an index document (empty when none was written yet)."""
    found = store.read_versioned(key)
    if found is None:
        return []
    items: list[dict[str, Any]] = _parsed(store, key, found[0], {})["items"]
    return items


def read_symbols(store: ObjectStore) -> list[dict[str, Any]]:
    """Every stored symbol, by name: ``symbol, first_date, last_date, last_close, rows``."""
    return read_index(store, SYMBOLS_KEY)


def read_prices(store: ObjectStore, symbol: str) -> dict[str, Any]:
    """A symbol's price document: ``symbol``, ``fields`` and one list per field (``date``,
    ``close`` and the stored ones of :data:`PRICE_FIELDS`), oldest first.

    Raises
    ------
    NotFoundError
        No prices for ``symbol``.
    """
    doc: dict[str, Any] = read_document(
        store, price_document_key(symbol), f"prices for symbol {symbol!r}", {"symbol": symbol}
    )
    return doc


def read_scan(store: ObjectStore, scan_id: str) -> dict[str, Any]:
    """A scan's serving document: its summary, parameters, universe and ``pieces``.

    Raises
    ------
    NotFoundError
        No scan ``scan_id``.
    """
    doc: dict[str, Any] = read_document(
        store, scan_document_key(scan_id), f"scan {scan_id!r}", {"scan_id": scan_id}
    )
    return doc


def read_scan_pairs(store: ObjectStore, scan_id: str) -> list[dict[str, Any]]:
    """Every ranked pair of a scan, best first (the pieces joined)."""
    scan = read_scan(store, scan_id)
    pairs: list[dict[str, Any]] = []
    for piece in range(int(scan["pieces"])):
        doc = read_document(
            store, pairs_piece_key(scan_id, piece), f"scan {scan_id!r}", {"scan_id": scan_id}
        )
        pairs.extend(doc["items"])
    return pairs


def read_run(store: ObjectStore, run_id: str) -> dict[str, Any]:
    """A run's serving document.

    Raises
    ------
    NotFoundError
        No run ``run_id``.
    """
    doc: dict[str, Any] = read_document(
        store, run_document_key(run_id), f"run {run_id!r}", {"run_id": run_id}
    )
    return doc
