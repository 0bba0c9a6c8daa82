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
    read_entries,
    read_manifest,
    read_symbol,
    tail_documents,
    tail_is_current,
    to_parquet_bytes,
)
from titan_lib.data.schema import PRICE_SCHEMA, in_stored_order, with_sorted_key
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
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each phase: ``read`` and ``validate`` (the files), ``data`` (merge,
    data files and the manifest swap), ``tails`` and ``documents`` (serving documents)
    and ``summary``."""

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
    calendar = batch.get_column("date").unique().sort()
    spans = batch.group_by("symbol").agg(
        pl.len().alias("rows_in"),
        pl.col("date").min().alias("span_start"),
        pl.col("date").max().alias("span_end"),
    )
    # dates of the batch calendar inside each symbol's span, by binary search
    inside = calendar.search_sorted(spans.get_column("span_end"), side="right").cast(
        pl.Int64
    ) - calendar.search_sorted(spans.get_column("span_start"), side="left").cast(pl.Int64)
    return spans.with_columns(
        (inside - pl.col("rows_in")).alias("gaps"),
        (pl.col("span_start") > calendar[0]).alias("late_start"),
    ).select("symbol", "rows_in", "gaps", "late_start")


def _merge(existing: pl.DataFrame | None, batch: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """New rows replace stored rows of the same symbol and date.

    ``existing`` holds the stored rows of the batch's symbols that are stored already.
    Returns the merged rows of every symbol of the batch (sorted by symbol and date) and,
    per symbol, the rows ``added`` (new dates) and ``revised`` (a stored date whose values
    change).
    """
    if existing is None or existing.height == 0:
        counts = batch.group_by("symbol").agg(
            pl.len().alias("added"), pl.lit(0, pl.UInt32).alias("revised")
        )
        return in_stored_order(batch), counts
    fields = ("close", "open", "high", "low", "volume")
    # keys in the batch's symbol order (the stored symbols are a subset of the batch's);
    # both sides are sorted by key, so the joins below merge instead of hashing
    names = batch.get_column("symbol").unique()
    incoming = with_sorted_key(batch, names)
    stored = with_sorted_key(existing, names)
    old = stored.select("_key", *[pl.col(n).alias(f"{n}_old") for n in fields])
    joined = incoming.join(old, on="_key", how="left")
    same = pl.all_horizontal([pl.col(n).eq_missing(pl.col(f"{n}_old")) for n in fields])
    counts = joined.group_by("symbol").agg(
        pl.col("close_old").is_null().sum().alias("added"),
        (pl.col("close_old").is_not_null() & ~same).sum().alias("revised"),
    )
    replaced = incoming.select("_key", pl.lit(True).alias("_replaced"))
    kept = stored.join(replaced, on="_key", how="left").filter(pl.col("_replaced").is_null())
    columns = [*existing.columns, "_key"]
    merged = kept.select(columns).merge_sorted(incoming.select(columns), key="_key")
    return merged.drop("_key"), counts


WRITE_THREADS = 8
"""Concurrent object writes: local fsyncs and S3 PUTs are latency-bound, not CPU-bound."""


def _write_all(store: ObjectStore, items: list[tuple[str, bytes]]) -> None:
    with ThreadPoolExecutor(WRITE_THREADS) as pool:
        list(pool.map(lambda item: store.write_bytes(*item), items))


def commit_prices(
    store: ObjectStore, batch: pl.DataFrame, phases: dict[str, float] | None = None
) -> tuple[Manifest, pl.DataFrame]:
    """Merge a validated long batch into the store and swap the manifest.

    Data files are written first; the manifest swap (compare-and-swap) is the commit. On any
    failure before the commit, the files this call created are removed again, so the store
    is left byte-for-byte as it was. Serving tails are refreshed after the commit.
    ``phases`` (when given) receives the seconds of ``data``, ``tails`` and ``documents``.
    """
    phases = {} if phases is None else phases
    started = time.perf_counter()
    manifest = read_manifest(store)
    entries = dict(manifest.symbols)
    created: list[str] = []
    stats = []
    changed_frames: dict[str, pl.DataFrame] = {}
    pending: list[tuple[str, bytes]] = []
    try:
        symbols = batch.get_column("symbol").unique().to_list()
        stored = [entries[s] for s in sorted(symbols) if s in entries]
        existing = read_entries(store, stored) if stored else None
        merged_rows, counts = _merge(existing, batch)
        changes = {s: (int(a), int(r)) for s, a, r in counts.iter_rows()}
        for (symbol,), merged in merged_rows.partition_by(
            "symbol", as_dict=True, maintain_order=True
        ).items():
            symbol = str(symbol)
            old = entries.get(symbol)
            added, revised = changes[symbol]
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
    phases["data"] = time.perf_counter() - started
    started = time.perf_counter()
    refresh_tails(store, new_manifest, changed_frames)
    phases["tails"] = time.perf_counter() - started
    started = time.perf_counter()
    publish_price_documents(store, new_manifest, changed_frames)
    phases["documents"] = time.perf_counter() - started
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
    tails = tail_documents(frames, {s: manifest.symbols[s].sha256 for s in frames})
    _write_all(store, [(price_tail_key(s), body) for s, body in tails.items()])
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
    phases = {"read": 0.0, "validate": 0.0}
    tables = []
    for uri in uris:
        started = time.perf_counter()
        raw = read_table(uri)
        phases["read"] += time.perf_counter() - started
        started = time.perf_counter()
        tables.append(validate_table(raw))
        phases["validate"] += time.perf_counter() - started
        del raw  # the text of a file is not needed once it is validated
    return _ingest_tables(tables, store, uris, phases)


def _ingest_tables(
    tables: list[ValidatedTable],
    store: str | None,
    uris: list[str],
    phases: dict[str, float] | None = None,
) -> IngestReport:
    phases = dict(phases or {})
    started = time.perf_counter()
    batch = _combine(tables)
    target = open_store(store)
    manifest, stats = commit_prices(target, batch, phases)
    summary_started = time.perf_counter()
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
        phases={**phases, "summary": time.perf_counter() - summary_started},
    )
