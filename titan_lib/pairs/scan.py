"""The pair scan: universe -> pre-screen -> batched Engle-Granger -> statistics -> q-values.

A scan reads prices from the store, tests every candidate pair, adds the mean-reversion
statistics of each tested spread, controls the false discovery rate over every pair tested
(Benjamini-Hochberg) and ranks the pairs by q-value. It writes two objects::

    scans/<scan_id>/pairs.parquet   the ranked table
    scans/<scan_id>/scan.json       parameters, universe, dates, counts, created_at

``pairs.parquet`` is written first and ``scan.json`` last with a create-only put, so a scan
listed by :func:`list_scans` is always complete. The block tasks run in this process or on a
Dask cluster (``scheduler=``); both give identical numbers.
"""

from __future__ import annotations

import io
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.exceptions import (
    ConflictError,
    DataValidationError,
    NotFoundError,
    ParameterError,
    SchemaVersionError,
)
from titan_lib.pairs.eg_batch import (
    Autolag,
    Executor,
    Task,
    TaskResult,
    Trend,
    run_task,
)
from titan_lib.pairs.engle_granger import check_settings, engle_granger_batch, pair_indices
from titan_lib.pairs.fdr import benjamini_hochberg
from titan_lib.pairs.panel import PricePanel, PriceTransform, price_panel
from titan_lib.pairs.screens import correlation_screen, distance_screen
from titan_lib.pairs.spread_stats import batch_spread_statistics
from titan_lib.stores.objects import ObjectStore, dumps_json, open_store, read_json

SCAN_SCHEMA_VERSION = 1
SCANS_PREFIX = "scans/"
Prescreen = Literal["correlation", "distance"]
DateLike = date | datetime | str | None
CONNECT_TIMEOUT_S = 5
"""Seconds to wait for a Dask scheduler given by address."""

SCAN_COLUMNS = (
    "rank",
    "y",
    "x",
    "hedge_ratio",
    "intercept",
    "trend_slope",
    "tstat",
    "pvalue",
    "qvalue",
    "lag",
    "half_life",
    "hurst",
    "crossings",
    "spread_mean",
    "spread_std",
    "nobs",
    "start",
    "end",
    "reason",
)


@dataclass(frozen=True)
class ScanResult:
    """A stored scan: its id, the ranked pair table and the ``scan.json`` document."""

    scan_id: str
    pairs: pl.DataFrame
    meta: dict[str, Any]

    def significant(self, alpha: float = 0.05) -> pl.DataFrame:
        """The pairs with ``qvalue <= alpha``, best first."""
        return self.pairs.filter(pl.col("qvalue") <= alpha)


def _keys(scan_id: str) -> tuple[str, str]:
    return f"{SCANS_PREFIX}{scan_id}/pairs.parquet", f"{SCANS_PREFIX}{scan_id}/scan.json"


def _progress_runner(run: Callable[[list[Task]], Iterator[TaskResult]], progress: bool) -> Executor:
    def runner(tasks: list[Task]) -> Iterator[TaskResult]:
        from tqdm import tqdm

        total = sum(t.size for t in tasks)
        with tqdm(
            total=total,
            unit="pair",
            desc="pairs",
            disable=not progress,
            file=sys.stderr,
            unit_scale=True,
            mininterval=0.5,
        ) as bar:
            for result in run(tasks):
                bar.update(int(result.rows.shape[0]))
                yield result

    return runner


def _local(tasks: list[Task]) -> Iterator[TaskResult]:
    for task in tasks:
        yield run_task(task)


@contextmanager
def task_executor(scheduler: str | None, progress: bool = False) -> Iterator[Executor]:
    """An executor for the scan's block tasks.

    ``None`` runs them here; ``"local"`` starts a Dask ``LocalCluster`` (two worker
    processes, one thread each) for the duration; any other string is the address of a
    running Dask scheduler (``tcp://host:8786``).
    """
    if scheduler is None:
        yield _progress_runner(_local, progress)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ParameterError(
            f"cannot reach the Dask scheduler {scheduler!r}: {exc}", {"scheduler": scheduler}
        ) from None

    def on_cluster(tasks: list[Task]) -> Iterator[TaskResult]:
        futures = client.map(run_task, tasks, pure=False)
        for future in as_completed(futures):
            yield future.result()

    try:
        yield _progress_runner(on_cluster, progress)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _screen_pairs(
    panel: Any, prescreen: Prescreen | None, top_k: int | None, min_obs: int
) -> pl.DataFrame | None:
    if prescreen is None:
        return None
    if prescreen == "correlation":
        return correlation_screen(panel, top_k=top_k, min_obs=min_obs)
    if prescreen == "distance":
        return distance_screen(panel, top_k=top_k, min_obs=min_obs)
    raise ParameterError(
        f"prescreen must be 'correlation', 'distance' or None, got {prescreen!r}", {}
    )


def scan(
    symbols: Sequence[str] | None = None,
    start: DateLike = None,
    end: DateLike = None,
    store: str | None = None,
    *,
    prescreen: Prescreen | None = None,
    top_k: int | None = 10,
    price_transform: PriceTransform = "log",
    trend: Trend = "c",
    autolag: Autolag = "aic",
    maxlag: int | None = None,
    both_directions: bool = False,
    min_obs: int = 252,
    chunk_size: int = 512,
    scheduler: str | None = None,
    progress: bool = True,
    write: bool = True,
) -> ScanResult:
    """Scan a universe for cointegrated pairs and rank them by q-value.

    Parameters
    ----------
    symbols
        The universe (at least two); every stored symbol when ``None``.
    start, end
        Inclusive date window (``YYYY-MM-DD``, date or datetime); open when ``None``.
    store
        Store URI (``$TITAN_STORE`` or ``./titan-data`` when omitted).
    prescreen
        ``"correlation"`` (log returns) or ``"distance"`` (Gatev): test only each symbol's
        ``top_k`` best partners; ``None`` tests every pair.
    top_k
        Partners kept per symbol by the pre-screen (``None``: all pairs the screen can
        score).
    price_transform
        ``"log"`` (default) or ``"level"`` prices in the cointegrating regression.
    trend, autolag, maxlag
        Engle-Granger settings, as :func:`titan_lib.pairs.engle_granger`.
    both_directions
        Test each pair both ways; by default ``y`` is the earlier symbol by name.
    min_obs
        Pairs with fewer common observations are listed untested with a reason.
    chunk_size
        Symbols per block task (memory per task ~ ``chunk_size^2 * (maxlag+1) * 8`` bytes).
    scheduler
        ``None`` (this process), ``"local"`` (start a Dask LocalCluster) or the address
        of a Dask scheduler.
    progress
        Show a progress bar on stderr.
    write
        Store the result under ``scans/<scan_id>/``.

    Returns
    -------
    ScanResult
        ``pairs`` has one row per pair tested (and untested pairs last, with a reason):
        ``rank, y, x, hedge_ratio, intercept, trend_slope, tstat, pvalue, qvalue, lag,
        half_life, hurst, crossings, spread_mean, spread_std, nobs, start, end, reason``
        (plus ``correlation`` or ``distance`` with a pre-screen). ``half_life`` is in bars
        (trading days); spread statistics are in the units of the transformed prices.
    """
    started = time.perf_counter()
    check_settings(trend, autolag, maxlag, min_obs)
    from titan_lib.data import load_prices

    wanted = list(symbols) if symbols is not None else None
    if wanted is not None and len(set(wanted)) < 2:
        raise ParameterError("a scan needs at least two different symbols", {})
    prices = load_prices(wanted, start, end, store)
    if prices.height == 0:
        raise DataValidationError(f"no prices between {start} and {end}", {})
    table, panel = _rank_panel(
        prices,
        wanted,
        prescreen=prescreen,
        top_k=top_k,
        price_transform=price_transform,
        trend=trend,
        autolag=autolag,
        maxlag=maxlag,
        both_directions=both_directions,
        min_obs=min_obs,
        chunk_size=chunk_size,
        scheduler=scheduler,
        progress=progress,
    )

    created = datetime.now(UTC)
    scan_id = f"{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    tested = table.filter(pl.col("pvalue").is_not_null())
    meta: dict[str, Any] = {
        "schema_version": SCAN_SCHEMA_VERSION,
        "scan_id": scan_id,
        "created_at": created.isoformat(),
        "parameters": {
            "symbols": wanted,
            "start": None if start is None else str(start),
            "end": None if end is None else str(end),
            "prescreen": prescreen,
            "top_k": top_k,
            "price_transform": price_transform,
            "trend": trend,
            "autolag": autolag,
            "maxlag": maxlag,
            "both_directions": both_directions,
            "min_obs": min_obs,
            "chunk_size": chunk_size,
            "scheduler": scheduler,
        },
        "universe": list(panel.symbols),
        "first_date": str(panel.dates[0])[:10],
        "last_date": str(panel.dates[-1])[:10],
        "counts": {
            "symbols": len(panel.symbols),
            "pairs": table.height,
            "tested": tested.height,
            "untested": table.height - tested.height,
            "q_below_0.05": int((tested.get_column("qvalue") <= 0.05).sum()),
        },
        "store": open_store(store).uri,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if write:
        _write_scan(open_store(store), scan_id, table, meta)
    return ScanResult(scan_id=scan_id, pairs=table, meta=meta)


def rank_pairs(
    prices: pl.DataFrame,
    *,
    prescreen: Prescreen | None = None,
    top_k: int | None = 10,
    price_transform: PriceTransform = "log",
    trend: Trend = "c",
    autolag: Autolag = "aic",
    maxlag: int | None = None,
    both_directions: bool = False,
    min_obs: int = 252,
    chunk_size: int = 512,
    scheduler: str | None = None,
    progress: bool = False,
) -> pl.DataFrame:
    """The ranked pair table of :func:`scan`, computed from prices in memory.

    Same parameters and columns as :func:`scan`, without the store: ``prices`` is a long
    frame (``date, symbol, close``) and nothing is written. Walk-forward selection calls
    this on each training window, so only data inside that window is used.
    """
    check_settings(trend, autolag, maxlag, min_obs)
    table, _ = _rank_panel(
        prices,
        None,
        prescreen=prescreen,
        top_k=top_k,
        price_transform=price_transform,
        trend=trend,
        autolag=autolag,
        maxlag=maxlag,
        both_directions=both_directions,
        min_obs=min_obs,
        chunk_size=chunk_size,
        scheduler=scheduler,
        progress=progress,
    )
    return table


def _rank_panel(
    prices: pl.DataFrame,
    wanted: list[str] | None,
    *,
    prescreen: Prescreen | None,
    top_k: int | None,
    price_transform: PriceTransform,
    trend: Trend,
    autolag: Autolag,
    maxlag: int | None,
    both_directions: bool,
    min_obs: int,
    chunk_size: int,
    scheduler: str | None,
    progress: bool,
) -> tuple[pl.DataFrame, PricePanel]:
    if chunk_size < 2:
        raise ParameterError(f"chunk_size must be at least 2, got {chunk_size}", {})
    panel = price_panel(prices, symbols=wanted, transform=price_transform)
    if len(panel.symbols) < 2:
        raise ParameterError("a scan needs at least two symbols with prices", {})
    if panel.dates.shape[0] < min_obs:
        raise DataValidationError(
            f"too short: {panel.dates.shape[0]} dates between {panel.dates[0]} and "
            f"{panel.dates[-1]}, min_obs is {min_obs}",
            {"dates": int(panel.dates.shape[0]), "min_obs": min_obs},
        )

    screened = _screen_pairs(panel, prescreen, top_k, min_obs)
    with task_executor(scheduler, progress) as run:
        table = engle_granger_batch(
            panel,
            screened,
            trend=trend,
            autolag=autolag,
            maxlag=maxlag,
            both_directions=both_directions,
            min_obs=min_obs,
            chunk_size=chunk_size,
            executor=run,
        )
    yi, xi = pair_indices(panel, screened, both_directions)
    table = _with_statistics(table, panel.values, yi, xi)
    if screened is not None:
        score = screened.columns[2]
        table = table.join(screened.select("y", "x", score), on=["y", "x"], how="left")
        if both_directions:
            flipped = screened.select(pl.col("x").alias("y"), pl.col("y").alias("x"), score)
            table = table.update(flipped, on=["y", "x"], how="left")
    return _ranked(table), panel


def _with_statistics(
    table: pl.DataFrame, values: np.ndarray, yi: np.ndarray, xi: np.ndarray
) -> pl.DataFrame:
    coef = np.column_stack(
        [
            table.get_column(c).cast(pl.Float64).fill_null(np.nan).to_numpy()
            for c in ("hedge_ratio", "intercept", "trend_slope")
        ]
    )
    stats = batch_spread_statistics(values, yi, xi, coef)
    return table.with_columns(
        pl.Series("spread_mean", stats[:, 0]).fill_nan(None),
        pl.Series("spread_std", stats[:, 1]).fill_nan(None),
        pl.Series("half_life", stats[:, 3]).fill_nan(None),
        pl.Series("hurst", stats[:, 4]).fill_nan(None),
        pl.Series("crossings", stats[:, 5]).fill_nan(None).cast(pl.Int64),
    )


def _ranked(table: pl.DataFrame) -> pl.DataFrame:
    p = table.get_column("pvalue").cast(pl.Float64).fill_null(np.nan).to_numpy()
    table = table.with_columns(pl.Series("qvalue", benjamini_hochberg(p)).fill_nan(None))
    table = table.sort(
        ["qvalue", "pvalue", "tstat", "y", "x"], nulls_last=True, maintain_order=True
    )
    extra = [c for c in table.columns if c not in SCAN_COLUMNS]
    return table.with_row_index("rank", offset=1).select(
        [pl.col("rank").cast(pl.Int64), *[c for c in SCAN_COLUMNS if c != "rank"], *extra]
    )


def _write_scan(
    store: ObjectStore, scan_id: str, table: pl.DataFrame, meta: dict[str, Any]
) -> None:
    pairs_key, meta_key = _keys(scan_id)
    buffer = io.BytesIO()
    table.write_parquet(buffer)
    store.write_bytes(pairs_key, buffer.getvalue())
    if not store.put_if_absent(meta_key, dumps_json(meta)):
        raise ConflictError(f"scan {scan_id} already exists in {store.uri}", {"scan_id": scan_id})


def load_scan(scan_id: str, store: str | None = None) -> ScanResult:
    """Read a stored scan; :class:`NotFoundError` names the id when there is none."""
    opened = open_store(store)
    pairs_key, meta_key = _keys(scan_id)
    if "/" in scan_id or not scan_id or not opened.exists(meta_key):
        raise NotFoundError(f"no scan {scan_id!r} in store {opened.uri}", {"scan_id": scan_id})
    meta = read_json(opened, meta_key)
    if meta.get("schema_version") != SCAN_SCHEMA_VERSION:
        raise SchemaVersionError(
            f"scan {scan_id} has schema_version {meta.get('schema_version')!r}; "
            f"this code reads {SCAN_SCHEMA_VERSION}",
            {"scan_id": scan_id},
        )
    pairs = pl.read_parquet(io.BytesIO(opened.read_bytes(pairs_key)))
    return ScanResult(scan_id=scan_id, pairs=pairs, meta=meta)


def list_scans(store: str | None = None) -> pl.DataFrame:
    """Stored scans, newest first: id, created_at, symbols, pairs, tested, significant."""
    opened = open_store(store)
    rows = []
    for key in opened.list(SCANS_PREFIX):
        if not key.endswith("/scan.json"):
            continue
        meta = read_json(opened, key)
        counts = meta.get("counts", {})
        params = meta.get("parameters", {})
        rows.append(
            {
                "scan_id": meta.get("scan_id"),
                "created_at": meta.get("created_at"),
                "symbols": counts.get("symbols"),
                "pairs": counts.get("pairs"),
                "tested": counts.get("tested"),
                "q_below_0.05": counts.get("q_below_0.05"),
                "first_date": meta.get("first_date"),
                "last_date": meta.get("last_date"),
                "trend": params.get("trend"),
                "autolag": params.get("autolag"),
                "prescreen": params.get("prescreen"),
            }
        )
    schema = {
        "scan_id": pl.String,
        "created_at": pl.String,
        "symbols": pl.Int64,
        "pairs": pl.Int64,
        "tested": pl.Int64,
        "q_below_0.05": pl.Int64,
        "first_date": pl.String,
        "last_date": pl.String,
        "trend": pl.String,
        "autolag": pl.String,
        "prescreen": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("created_at", descending=True)


__all__ = ["ScanResult", "list_scans", "load_scan", "scan", "task_executor"]
