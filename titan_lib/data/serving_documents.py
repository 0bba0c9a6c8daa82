"""Write the research serving documents the read API serves (see
:mod:`titan_lib.core.serving.research_documents` for the layout).

They are written where the research side stores its results: price documents and the
symbols index after an ingest commits (:func:`publish_price_documents`), a scan's
document after the scan is stored (:func:`publish_scan_document`), a run's document
after its record is final (:func:`publish_run_document`). Every object is written
atomically; the indexes are swapped with a compare-and-swap, so concurrent writers (a
sweep's runs) never lose each other's entries. Documents are derived data: every writer
is idempotent, and :func:`backfill_documents` (``titan lambdas publish-documents``)
rebuilds whatever is missing or stale from the stored prices, scans and run records.
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import polars as pl

from titan_lib.core.serving.research_documents import (
    BACKTEST_KINDS,
    PAIRS_PER_PIECE,
    PRICE_FIELDS,
    RESEARCH_SCHEMA_VERSION,
    RUNS_INDEX_KEY,
    SCAN_ID,
    SCANS_INDEX_KEY,
    SYMBOLS_KEY,
    pairs_piece_key,
    price_document_key,
    read_index,
    read_run,
    read_scan,
    run_document_key,
    scan_document_key,
)
from titan_lib.data.json_columns import json_arrays, json_object, stack_symbols
from titan_lib.data.price_store import Manifest, read_manifest, read_symbol
from titan_lib.exceptions import ConflictError, NotFoundError
from titan_lib.stores.objects import ObjectStore, dumps_json, read_json

WRITE_THREADS = 8
INDEX_ATTEMPTS = 50
"""Compare-and-swap attempts on an index before giving up (each after a short pause)."""
SCANS_PREFIX = "scans/"
RUNS_PREFIX = "runs/"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_all(store: ObjectStore, items: Iterable[tuple[str, bytes]]) -> None:
    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        list(pool.map(lambda item: store.write_bytes(*item), items))


def _plain(value: Any) -> Any:
    """A JSON value: non-finite floats to ``None``, dates to ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _update_index(
    store: ObjectStore, key: str, items: list[dict[str, Any]], id_field: str, *order: str
) -> None:
    """Add or replace ``items`` (by ``id_field``) in an index, sorted by the fields
    ``order`` (``id_field`` when none), newest first."""
    fresh = {item[id_field]: item for item in items}
    for _ in range(INDEX_ATTEMPTS):
        found = store.read_versioned(key)
        token = None if found is None else found[1]
        current = [] if found is None else json.loads(found[0])["items"]
        merged = [i for i in current if i[id_field] not in fresh] + list(fresh.values())
        merged.sort(key=lambda item: tuple(item[f] for f in order or (id_field,)), reverse=True)
        doc = {"schema_version": RESEARCH_SCHEMA_VERSION, "updated_at": _now(), "items": merged}
        try:
            store.write_if_match(key, dumps_json(doc, pretty=False), token)
            return
        except ConflictError:
            time.sleep(random.uniform(0.01, 0.1))
    raise ConflictError(
        f"{store.uri}/{key} kept changing; run `titan lambdas publish-documents` to rebuild it",
        {"key": key},
    )


# -- prices -------------------------------------------------------------------------------


DOCUMENTS_PER_BATCH = 500
"""Symbols whose price documents are encoded together (bounds the memory of the text)."""


def price_documents(
    frames: Mapping[str, pl.DataFrame], sha256: Mapping[str, str]
) -> dict[str, tuple[bytes, dict[str, Any]]]:
    """The price documents of symbols' stored prices (each frame sorted by date) and their
    entries in the symbols index, by symbol.

    A document holds ``date`` and one list per served field: ``close`` and each of
    :data:`PRICE_FIELDS` the symbol has any value for (NaN and missing values as
    ``null``), plus ``symbol``, ``fields``, ``data_sha256`` (of the data file) and
    ``updated_at``; compact JSON with sorted keys.
    """
    if not frames:
        return {}
    stamp = _now()
    numbers = ["close", *PRICE_FIELDS]
    batch = stack_symbols(frames, ["date", *numbers]).with_columns(pl.col(numbers).cast(pl.Float64))
    arrays = json_arrays(batch, numbers)
    ends = batch.group_by("symbol", maintain_order=True).agg(
        pl.col("date").first().cast(pl.String).alias("first_date"),
        pl.col("date").last().cast(pl.String).alias("last_date"),
        pl.col("close").fill_nan(None).last().alias("last_close"),
    )
    out = {}
    for row, end in zip(arrays.iter_rows(named=True), ends.iter_rows(named=True), strict=True):
        symbol = row["symbol"]
        fields = ["close"] + [f for f in PRICE_FIELDS if row[f"{f}_given"]]
        body = json_object(
            {"date": row["date"], **{f: row[f] for f in fields}},
            {
                "schema_version": RESEARCH_SCHEMA_VERSION,
                "symbol": symbol,
                "fields": fields,
                "data_sha256": sha256[symbol],
                "updated_at": stamp,
            },
        )
        entry = {
            "symbol": symbol,
            "first_date": end["first_date"],
            "last_date": end["last_date"],
            "last_close": end["last_close"],
            "rows": row["rows"],
            "data_sha256": sha256[symbol],
        }
        out[symbol] = (body, entry)
    return out


def publish_price_documents(
    store: ObjectStore,
    manifest: Manifest,
    frames: Mapping[str, pl.DataFrame] | None = None,
    *,
    verify: bool = False,
) -> list[str]:
    """Write the price documents of ``frames`` (just committed) and of every symbol whose
    entry in the symbols index does not match its current data file, then the index.

    ``verify`` also rewrites a document that is missing although the index lists it.
    Returns the symbols whose documents were written.
    """
    frames = dict(frames or {})
    indexed = {e["symbol"]: e for e in read_index(store, SYMBOLS_KEY)}
    for symbol, entry in manifest.symbols.items():
        current = indexed.get(symbol, {}).get("data_sha256") == entry.sha256
        if current and verify:
            current = store.exists(price_document_key(symbol))
        if symbol not in frames and not current:
            frames[symbol] = read_symbol(store, entry)
    symbols = list(frames)
    entries = {s: e for s, e in indexed.items() if s in manifest.symbols}
    for at in range(0, len(symbols), DOCUMENTS_PER_BATCH):
        chunk = {s: frames[s] for s in symbols[at : at + DOCUMENTS_PER_BATCH]}
        docs = price_documents(chunk, {s: manifest.symbols[s].sha256 for s in chunk})
        _write_all(store, [(price_document_key(s), body) for s, (body, _) in docs.items()])
        entries.update({s: entry for s, (_, entry) in docs.items()})
    if symbols or entries.keys() != indexed.keys():
        index = {
            "schema_version": RESEARCH_SCHEMA_VERSION,
            "updated_at": _now(),
            "items": [entries[s] for s in sorted(entries)],
        }
        store.write_bytes(SYMBOLS_KEY, dumps_json(index, pretty=False))
    return sorted(symbols)


# -- scans --------------------------------------------------------------------------------


def _scan_summary(meta: Mapping[str, Any]) -> dict[str, Any]:
    counts = meta.get("counts", {})
    params = meta.get("parameters", {})
    return {
        "scan_id": meta["scan_id"],
        "created_at": meta.get("created_at"),
        "first_date": meta.get("first_date"),
        "last_date": meta.get("last_date"),
        "symbols": counts.get("symbols"),
        "pairs": counts.get("pairs"),
        "tested": counts.get("tested"),
        "tradable": counts.get("tradable"),
        "significant": counts.get("tradable_q_below_0.05"),
        "direction": params.get("direction", "y_on_x"),
        "prescreen": params.get("prescreen"),
        "trend": params.get("trend"),
    }


def publish_scan_document(
    store: ObjectStore, scan_id: str, table: pl.DataFrame, meta: Mapping[str, Any]
) -> None:
    """Write a stored scan's serving document: its ranked pairs in pieces, then the scan
    document that names them, then its entry in the scans index."""
    summary = _write_scan_document(store, scan_id, table, meta)
    _update_index(store, SCANS_INDEX_KEY, [summary], *SCAN_ORDER)


SCAN_ORDER = ("scan_id", "created_at", "scan_id")
"""Index id field, then the fields the scans index is sorted by (newest first)."""


def _write_scan_document(
    store: ObjectStore, scan_id: str, table: pl.DataFrame, meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Write the pieces and the scan document; return the scan's index entry."""
    rows = _rows(table.sort("rank"))
    pieces = [rows[i : i + PAIRS_PER_PIECE] for i in range(0, len(rows), PAIRS_PER_PIECE)]
    _write_all(
        store,
        [
            (
                pairs_piece_key(scan_id, n),
                dumps_json(
                    {"schema_version": RESEARCH_SCHEMA_VERSION, "items": piece}, pretty=False
                ),
            )
            for n, piece in enumerate(pieces)
        ],
    )
    summary = _scan_summary(meta)
    doc = {
        **summary,
        "schema_version": RESEARCH_SCHEMA_VERSION,
        "counts": meta.get("counts", {}),
        "parameters": meta.get("parameters", {}),
        "universe": meta.get("universe", []),
        "pvalue_rule": meta.get("pvalue_rule"),
        "fdr": meta.get("fdr"),
        "columns": table.columns,
        "pieces": len(pieces),
    }
    store.write_bytes(scan_document_key(scan_id), dumps_json(doc, pretty=False))
    return summary


# -- runs ---------------------------------------------------------------------------------


def run_document(record: Mapping[str, Any], results: Mapping[str, Any] | None) -> dict[str, Any]:
    """A run's serving document from its ``run.json`` and results sidecar.

    ``metrics`` are the run's headline statistics (``values.stats``) measured on
    ``sample`` (``in-sample`` or ``out-of-sample``, as the notebook labelled them);
    a walk-forward's ``degradation`` holds the mean ``in_sample`` and ``out_of_sample``
    objective over its windows.
    """
    values = (results or {}).get("values", {})
    stats = values.get("stats")
    degradation = values.get("degradation")
    return {
        "schema_version": RESEARCH_SCHEMA_VERSION,
        "run_id": record["run_id"],
        "notebook": record["notebook"],
        "kind": BACKTEST_KINDS.get(record["notebook"]),
        "status": record["status"],
        "started_at": record["started_at"],
        "ended_at": record["ended_at"],
        "duration_s": record["duration_s"],
        "parent_id": record.get("parent_id"),
        "step": record.get("step"),
        "parameters": record.get("parameters", {}),
        "code_version": record.get("code_version"),
        "error": record.get("error"),
        "files": record.get("files", []),
        "sample": values.get("sample"),
        "metrics": stats if isinstance(stats, dict) else None,
        "degradation": degradation if isinstance(degradation, dict) else None,
        "summary": (results or {}).get("summary", {}),
    }


RUN_SUMMARY_FIELDS = (
    "run_id",
    "notebook",
    "kind",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "parent_id",
    "sample",
    "metrics",
)


def publish_run_document(
    store: ObjectStore, record: Mapping[str, Any], results: bytes | None
) -> None:
    """Write a final run's serving document and its entry in the runs index.

    ``record`` is the ``run.json`` document, ``results`` the bytes of its results sidecar
    (``None`` for a run without one).
    """
    _update_index(store, RUNS_INDEX_KEY, [_write_run_document(store, record, results)], "run_id")


def _write_run_document(
    store: ObjectStore, record: Mapping[str, Any], results: bytes | None
) -> dict[str, Any]:
    """Write the run document; return the run's index entry."""
    doc = run_document(record, json.loads(results) if results else None)
    store.write_bytes(run_document_key(doc["run_id"]), dumps_json(doc, pretty=False))
    return {k: doc[k] for k in RUN_SUMMARY_FIELDS}


# -- backfill -----------------------------------------------------------------------------


def backfill_documents(store: ObjectStore) -> dict[str, int]:
    """Write every serving document that is missing or stale; returns counts written.

    Prices are compared with the manifest by content hash. A scan or run whose document
    exists is kept (both are immutable once stored); one missing from its index is added
    back. Each index is swapped once, at the end.
    """
    written = {"prices": 0, "scans": 0, "runs": 0}
    manifest = read_manifest(store)
    if manifest.symbols:
        written["prices"] = len(publish_price_documents(store, manifest, verify=True))
    indexed = {i["scan_id"] for i in read_index(store, SCANS_INDEX_KEY)}
    entries = []
    for scan_id in _record_ids(store, SCANS_PREFIX, "scan.json"):
        if not SCAN_ID.fullmatch(scan_id):
            continue
        if store.exists(scan_document_key(scan_id)):
            if scan_id not in indexed:
                entries.append(_scan_summary(read_scan(store, scan_id)))
            continue
        meta = read_json(store, f"{SCANS_PREFIX}{scan_id}/scan.json")
        pairs = store.read_bytes(f"{SCANS_PREFIX}{scan_id}/pairs.parquet")
        entries.append(
            _write_scan_document(store, scan_id, pl.read_parquet(io.BytesIO(pairs)), meta)
        )
        written["scans"] += 1
    if entries:
        _update_index(store, SCANS_INDEX_KEY, entries, *SCAN_ORDER)
    indexed = {i["run_id"] for i in read_index(store, RUNS_INDEX_KEY)}
    entries = []
    for run_id in _record_ids(store, RUNS_PREFIX, "run.json"):
        if store.exists(run_document_key(run_id)):
            if run_id not in indexed:
                doc = read_run(store, run_id)
                entries.append({k: doc[k] for k in RUN_SUMMARY_FIELDS})
            continue
        try:
            results: bytes | None = store.read_bytes(f"{RUNS_PREFIX}{run_id}/results.json")
        except NotFoundError:
            results = None
        record = read_json(store, f"{RUNS_PREFIX}{run_id}/run.json")
        entries.append(_write_run_document(store, record, results))
        written["runs"] += 1
    if entries:
        _update_index(store, RUNS_INDEX_KEY, entries, "run_id")
    return written


def _record_ids(store: ObjectStore, prefix: str, name: str) -> list[str]:
    """Ids of the complete records below ``prefix`` (``<prefix><id>/<name>`` exists)."""
    found = (key.split("/") for key in store.list(prefix))
    return [parts[1] for parts in found if len(parts) == 3 and parts[2] == name]
