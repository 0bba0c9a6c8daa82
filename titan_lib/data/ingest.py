"""Ingest price files into the store: validate everything, then commit atomically."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl

from titan_lib.core.prices import price_tail_key
from titan_lib.data.price_store import (
    MANIFEST_KEY,
    Manifest,
    SymbolEntry,
    data_key,
    read_manifest,
    read_symbol,
    tail_document,
    tail_is_current,
    to_parquet_bytes,
)
from titan_lib.data.schema import PRICE_SCHEMA
from titan_lib.data.serving_documents import publish_price_documents
from titan_lib.data.sources import expand_sources, read_table
from titan_lib.data.validate import ValidatedTable, validate_table
from titan_lib.exceptions import DataValidationError
from titan_lib.stores.objects import ObjectStore, open_store

SourceArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass
class IngestReport:
    """What an ingest did.

    Attributes
    ----------
    summary
        One row per ingested symbol: ``symbol, rows_in, added, revised, first_date,
        last_date, stored_rows, gaps`` where ``gaps`` counts the dates of the batch
        calendar, inside the symbol's own span, that have no price, and ``late_start``
        says the symbol starts after the batch's first date.
    """

    store: str
    sources: list[str]
    summary: pl.DataFrame
    rows_read: int
    empty_cells: int
    manifest_version: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def rows_added(self) -> int:
        return int(self.summary.get_column("added").sum())

    @property
    def rows_revised(self) -> int:
        return int(self.summary.get_column("revised").sum())

    def __str__(self) -> str:
        lines = [
            f"ingested {len(self.sources)} file(s) into {self.store} in {self.elapsed_s:.2f} s: "
            f"{self.summary.height} symbols, {self.rows_read} rows read, {self.rows_added} "
            f"added, {self.rows_revised} revised (manifest version {self.manifest_version})",
        ]
        gaps = self.summary.filter((pl.col("gaps") > 0) | pl.col("late_start"))
        if self.empty_cells:
            lines.append(f"empty cells (gaps, kept as missing): {self.empty_cells}")
        for rec in gaps.head(20).iter_rows(named=True):
            late = f", starts late on {rec['first_date']}" if rec["late_start"] else ""
            lines.append(f"  gap: {rec['symbol']}: {rec['gaps']} missing dates in its span{late}")
        if gaps.height > 20:
            lines.append(f"  ... and {gaps.height - 20} more symbols with gaps")
        lines.extend(self.notes)
        return "\n".join(lines)


def _combine(tables: list[ValidatedTable]) -> pl.DataFrame:
    frames = [t.prices.with_columns(pl.lit(t.name).alias("_file")) for t in tables]
    batch = pl.concat(frames) if len(frames) > 1 else frames[0]
    if len(tables) > 1:
        dup = batch.filter(pl.struct("date", "symbol").is_duplicated())
        if dup.height:
            first = dup.sort("symbol", "date").row(0, named=True)
            files = sorted(
                set(
                    dup.filter(
                        (pl.col("symbol") == first["symbol"]) & (pl.col("date") == first["date"])
                    )
                    .get_column("_file")
                    .to_list()
                )
            )
            raise DataValidationError(
                f"duplicate (date, symbol) across files: {first['symbol']} on {first['date']} "
                f"appears in {' and '.join(files)}",
                {"symbol": first["symbol"], "date": str(first["date"]), "files": files},
            )
    return batch.drop("_file")


def _gap_summary(batch: pl.DataFrame) -> pl.DataFrame:
    calendar = batch.select(pl.col("date").unique().sort()).get_column("date")
    first_day = calendar[0]
    spans = batch.group_by("symbol").agg(
        pl.len().alias("rows_in"),
        pl.col("date").min().alias("span_start"),
        pl.col("date").max().alias("span_end"),
    )
    cal = pl.DataFrame({"date": calendar})
    in_span = (
        spans.join(cal, how="cross")
        .filter((pl.col("date") >= pl.col("span_start")) & (pl.col("date") <= pl.col("span_end")))
        .group_by("symbol")
        .agg(pl.len().alias("calendar_days"))
    )
    return (
        spans.join(in_span, on="symbol")
        .with_columns(
            (pl.col("calendar_days") - pl.col("rows_in")).alias("gaps"),
            (pl.col("span_start") > first_day).alias("late_start"),
        )
        .select("symbol", "rows_in", "gaps", "late_start")
    )


def _merge(existing: pl.DataFrame | None, incoming: pl.DataFrame) -> tuple[pl.DataFrame, int, int]:
    """New rows replace stored rows on the same dates. Returns (merged, added, revised)."""
    if existing is None:
        return incoming, incoming.height, 0
    joined = incoming.join(existing, on="date", how="left", suffix="_old")
    added = int(joined.get_column("close_old").is_null().sum())
    same = pl.lit(True)
    for name in ("close", "open", "high", "low", "volume"):
        same = same & pl.col(name).eq_missing(pl.col(f"{name}_old"))
    revised = int(joined.filter(pl.col("close_old").is_not_null() & ~same).height)
    if added == 0 and revised == 0:
        return existing, 0, 0
    kept = existing.join(incoming.select("date"), on="date", how="anti")
    merged = pl.concat([kept, incoming]).sort("date")
    return merged, added, revised


WRITE_THREADS = 8
"""Concurrent object writes: local fsyncs and S3 PUTs are latency-bound, not CPU-bound."""


def _write_all(store: ObjectStore, items: list[tuple[str, bytes]]) -> None:
    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        list(pool.map(lambda item: store.write_bytes(*item), items))


def commit_prices(store: ObjectStore, batch: pl.DataFrame) -> tuple[Manifest, pl.DataFrame]:
    """Merge a validated long batch into the store and swap the manifest.

    Data files are written first; the manifest swap (compare-and-swap) is the commit. On any
    failure before the commit, the files this call created are removed again, so the store
    is left byte-for-byte as it was. Serving tails are refreshed after the commit.
    """
    manifest = read_manifest(store)
    entries = dict(manifest.symbols)
    created: list[str] = []
    stats = []
    changed_frames: dict[str, pl.DataFrame] = {}
    pending: list[tuple[str, bytes]] = []
    try:
        for (symbol,), incoming in (
            batch.sort("symbol", "date")
            .partition_by("symbol", as_dict=True, maintain_order=True)
            .items()
        ):
            symbol = str(symbol)
            old = entries.get(symbol)
            existing = read_symbol(store, old) if old is not None else None
            merged, added, revised = _merge(existing, incoming)
            dates = merged.get_column("date")
            first, last = dates[0], dates[-1]
            stats.append(
                {
                    "symbol": symbol,
                    "added": added,
                    "revised": revised,
                    "stored_rows": merged.height,
                    "first_date": first,
                    "last_date": last,
                }
            )
            if old is not None and added == 0 and revised == 0:
                continue
            payload = to_parquet_bytes(merged.select(list(PRICE_SCHEMA)))
            key, digest = data_key(symbol, payload)
            if old is None or old.key != key:
                pending.append((key, payload))
            entries[symbol] = SymbolEntry(
                key=key,
                sha256=digest,
                rows=merged.height,
                first_date=first.isoformat(),
                last_date=last.isoformat(),
            )
            changed_frames[symbol] = merged
        fresh = [(k, p) for k, p in pending if not store.exists(k)]
        created.extend(k for k, _ in fresh)
        _write_all(store, fresh)
        changed = entries != manifest.symbols
        new_manifest = Manifest(
            version=manifest.version + (1 if changed else 0),
            symbols=entries,
            updated_at=datetime.now(UTC).isoformat(timespec="seconds")
            if changed
            else manifest.updated_at,
            token=None,
        )
        if changed:
            store.write_if_match(MANIFEST_KEY, new_manifest.to_json(), manifest.token)
    except BaseException:
        for key in created:
            with contextlib.suppress(Exception):
                store.delete(key)
        raise
    # Committed. Superseded files are no longer referenced.
    for symbol, old in manifest.symbols.items():
        if entries[symbol].key != old.key:
            with contextlib.suppress(Exception):
                store.delete(old.key)
    refresh_tails(store, new_manifest, changed_frames)
    publish_price_documents(store, new_manifest, changed_frames)
    return new_manifest, pl.DataFrame(stats)


def refresh_tails(
    store: ObjectStore, manifest: Manifest, frames: dict[str, pl.DataFrame] | None = None
) -> list[str]:
    """Rewrite the serving tails of ``frames`` (just committed) and of any symbol whose
    tail does not match its current data file (an earlier run stopped before this step)."""
    frames = dict(frames or {})
    for symbol, entry in manifest.symbols.items():
        if symbol not in frames and not tail_is_current(store, symbol, entry):
            frames[symbol] = read_symbol(store, entry)
    _write_all(
        store,
        [
            (price_tail_key(s), tail_document(s, f, manifest.symbols[s].sha256))
            for s, f in frames.items()
        ],
    )
    return sorted(frames)


def ingest_frame(
    prices: pl.DataFrame, store: str | None = None, sources: list[str] | None = None
) -> IngestReport:
    """Ingest an already-long polars frame (``date, symbol, close`` [+ OHLCV]).

    The frame goes through the same validation as a long-form file.
    """
    from titan_lib.data.sources import RawTable

    table = RawTable(name="<frame>", frame=prices, first_row=1)
    return _ingest_tables([validate_table(table)], store, sources or ["<frame>"])


def ingest(sources: SourceArg, store: str | None = None) -> IngestReport:
    """Validate and ingest CSV/Parquet files into the price dataset of a store.

    Parameters
    ----------
    sources
        A path or ``s3://bucket/key``, a list of them, or ``"sample"`` for the bundled real
        sample (20 US stocks and the S&P 500 index, daily, 1990-2022). Wide form (a date
        column plus one column per symbol, closes) and long form (``date, symbol, close``
        plus optional ``open, high, low, volume``) are detected per file.
    store
        Store URI (local folder or ``s3://bucket/prefix``); ``$TITAN_STORE`` or
        ``./titan-data`` when omitted.

    Returns
    -------
    IngestReport
        Rows read/added/revised per symbol, gaps and late starts.

    Raises
    ------
    DataValidationError
        Any file fails validation; nothing is written. The message names the file, the row
        (and date) and the column or symbol.
    """
    uris = expand_sources(sources)
    tables = [validate_table(read_table(uri)) for uri in uris]
    return _ingest_tables(tables, store, uris)


def _ingest_tables(
    tables: list[ValidatedTable], store: str | None, uris: list[str]
) -> IngestReport:
    started = time.perf_counter()
    batch = _combine(tables)
    target = open_store(store)
    manifest, stats = commit_prices(target, batch)
    summary = (
        stats.join(_gap_summary(batch), on="symbol")
        .select(
            "symbol",
            "rows_in",
            "added",
            "revised",
            "first_date",
            "last_date",
            "stored_rows",
            "gaps",
            "late_start",
        )
        .sort("symbol")
    )
    return IngestReport(
        store=target.uri,
        sources=uris,
        summary=summary,
        rows_read=batch.height,
        empty_cells=sum(t.empty_cells for t in tables),
        manifest_version=manifest.version,
        elapsed_s=time.perf_counter() - started,
    )
