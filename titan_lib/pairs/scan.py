"""The pair scan: universe -> pre-screen -> batched Engle-Granger -> statistics -> q-values.

A scan reads prices from the store, tests every candidate pair, adds the mean-reversion
statistics of each tested spread, controls the false discovery rate over the universe
(Benjamini-Hochberg) and ranks the pairs by q-value. Three rules keep its verdicts valid:

- **Symmetric in the legs.** By default (``direction="symmetric"``) each pair is tested both
  ways, ``y`` on ``x`` and ``x`` on ``y``, and its p-value is the larger of the two
  (``pvalue = max(pvalue_yx, pvalue_xy)``). Each direction is a level-alpha test, so their
  maximum is one too; the verdict does not depend on which symbol is spelled first. The
  row's ``y`` is still the earlier symbol by name and its coefficients are those of ``y``
  on ``x``.
- **False discovery rate over the universe.** q-values count every unordered pair of the
  universe, ``m = n (n - 1) / 2``: pairs a pre-screen dropped or left untested (too few
  common observations, a constant leg) count as ``p = 1``. A pre-screen thus makes the scan
  faster but never makes its q-values smaller.
- **A hedge, not a bet.** A tested pair whose hedge ratio is not positive would be long both
  legs when long the spread; it gets a ``reason``, ``tradable`` false, and ranks after every
  tradable pair.

It writes two objects::

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
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from itertools import chain
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.data.serving_documents import publish_scan_document
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
    plan_batch,
    run_task,
)
from titan_lib.pairs.engle_granger import check_settings, pair_indices
from titan_lib.pairs.panel import PricePanel, PriceTransform, price_panel
from titan_lib.pairs.scan_blocks import (
    TABLE_SLICE_ROWS,
    collect_results,
    rank_arrays,
    ranked_table,
    reason_texts,
    spread_statistics,
)
from titan_lib.pairs.screens import correlation_screen, distance_screen
from titan_lib.stores.objects import ObjectStore, dumps_json, open_store, read_json

SCAN_SCHEMA_VERSION = 1
SCANS_PREFIX = "scans/"
Prescreen = Literal["correlation", "distance"]
ScanDirection = Literal["symmetric", "y_on_x"]
SCAN_DIRECTIONS: tuple[str, ...] = ("symmetric", "y_on_x")
DIRECTION_RULES = {
    "symmetric": "pvalue = max(pvalue_yx, pvalue_xy): Engle-Granger of y on x and of x on y",
    "y_on_x": "pvalue = pvalue_yx: Engle-Granger of y (earlier symbol by name) on x only",
}
"""How ``pvalue`` is made from the two directions, as stored in ``scan.json``."""
FDR_RULE = (
    "Benjamini-Hochberg over every unordered pair of the universe, m = n (n - 1) / 2; "
    "pairs not tested (pre-screened out, too few observations, constant leg) count as p = 1"
)
NON_POSITIVE_HEDGE = (
    "non-positive hedge ratio: long the spread would be long both legs (a directional bet, "
    "not a hedge)"
)
DateLike = date | datetime | str | None
CONNECT_TIMEOUT_S = 5
"""Seconds to wait for a Dask scheduler given by address."""
SERVED_PAIRS = 20_000
"""Best-ranked pairs of a stored scan put in its serving document (a full universe has
millions; every pair stays in ``pairs.parquet``)."""

SCAN_COLUMNS = (
    "rank",
    "y",
    "x",
    "hedge_ratio",
    "intercept",
    "trend_slope",
    "tstat",
    "tstat_xy",
    "pvalue_yx",
    "pvalue_xy",
    "pvalue",
    "qvalue",
    "tradable",
    "direction",
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
class ScanSettings:
    """What a scan tests and how: validated once, recorded as the scan's ``parameters``.

    Each field means what the parameter of :func:`scan` of the same name means; where and
    how a scan runs (``scheduler``, ``progress``, ``write``) is not part of it.
    """

    prescreen: Prescreen | None = None
    top_k: int | None = 10
    price_transform: PriceTransform = "log"
    trend: Trend = "c"
    autolag: Autolag = "aic"
    maxlag: int | None = None
    direction: ScanDirection = "symmetric"
    min_obs: int = 252
    chunk_size: int = 512
    statistics_qvalue: float | None = None

    def __post_init__(self) -> None:
        check_settings(self.trend, self.autolag, self.maxlag, self.min_obs)
        if self.prescreen not in (None, "correlation", "distance"):
            raise ParameterError(
                f"prescreen must be 'correlation', 'distance' or None, got {self.prescreen!r}",
                {"parameter": "prescreen"},
            )
        if self.direction not in SCAN_DIRECTIONS:
            raise ParameterError(
                f"direction must be 'symmetric' or 'y_on_x', got {self.direction!r}",
                {"parameter": "direction"},
            )
        if self.chunk_size < 2:
            raise ParameterError(f"chunk_size must be at least 2, got {self.chunk_size}", {})
        q = self.statistics_qvalue
        if q is not None and not 0.0 <= q <= 1.0:
            raise ParameterError(
                f"statistics_qvalue must be in [0, 1] or None, got {q!r}",
                {"parameter": "statistics_qvalue"},
            )


@dataclass(frozen=True)
class ScanResult:
    """A stored scan: its id, the ranked pair table and the ``scan.json`` document."""

    scan_id: str
    pairs: pl.DataFrame
    meta: dict[str, Any]

    def significant(self, alpha: float = 0.05) -> pl.DataFrame:
        """The tradable pairs with ``qvalue <= alpha``, best first."""
        return self.pairs.filter(pl.col("tradable") & (pl.col("qvalue") <= alpha))


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
        # each result is released on the worker once fetched, so a worker holds only the
        # results not yet gathered, not every result of the scan
        for future in as_completed(client.map(run_task, tasks, pure=False)):
            result = future.result()
            future.release()
            yield result

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
    direction: ScanDirection = "symmetric",
    min_obs: int = 252,
    chunk_size: int = 512,
    scheduler: str | None = None,
    progress: bool = True,
    write: bool = True,
    statistics_qvalue: float | None = None,
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
    direction
        ``"symmetric"`` (default): test ``y`` on ``x`` and ``x`` on ``y`` and keep the larger
        p-value, a verdict independent of the symbols' spelling. ``"y_on_x"``: one test,
        ``y`` the earlier symbol by name (half the work; the verdict can change when a
        symbol is renamed).
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
    statistics_qvalue
        Compute the spread statistics (``half_life``, ``hurst``, ``crossings``,
        ``spread_mean``, ``spread_std``) only for tested pairs with ``qvalue`` at most this
        (null elsewhere): the pairs that can be selected. ``None`` (default): every tested
        pair. On a full universe the statistics cost about as much as the tests; q-values,
        ranks and every other column do not depend on this setting.

    Returns
    -------
    ScanResult
        ``pairs`` has one row per pair tested (and untested pairs last, with a reason),
        columns :data:`SCAN_COLUMNS` (plus ``correlation`` or ``distance`` with a
        pre-screen):

        - ``rank``: 1 = best; tradable pairs by q-value first, then tested pairs that are
          not tradable, then untested pairs;
        - ``y``, ``x``: the earlier and the later symbol by name;
        - ``hedge_ratio``, ``intercept``, ``trend_slope``, ``tstat``, ``lag``: the
          Engle-Granger regression of ``y`` on ``x``; ``tstat_xy`` the t-statistic of ``x``
          on ``y`` (null with ``direction="y_on_x"``);
        - ``pvalue_yx``, ``pvalue_xy``: MacKinnon p-values of each direction; ``pvalue``
          the one the verdict uses (see ``direction``); ``qvalue`` its Benjamini-Hochberg
          q-value over the universe;
        - ``tradable``: tested, hedge ratio > 0 and no ``reason``; ``direction``: the
          scan's direction setting;
        - ``half_life`` (bars, i.e. trading days), ``hurst``, ``crossings``,
          ``spread_mean``, ``spread_std`` of the ``y`` on ``x`` spread, in the units of the
          transformed prices; ``nobs``, ``start``, ``end`` of the common sample;
        - ``reason``: why a pair is untested or not tradable (null otherwise).
    """
    settings = ScanSettings(
        prescreen=prescreen,
        top_k=top_k,
        price_transform=price_transform,
        trend=trend,
        autolag=autolag,
        maxlag=maxlag,
        direction=direction,
        min_obs=min_obs,
        chunk_size=chunk_size,
        statistics_qvalue=statistics_qvalue,
    )
    return run_scan(
        symbols,
        start,
        end,
        store,
        settings=settings,
        scheduler=scheduler,
        progress=progress,
        write=write,
    )


def run_scan(
    symbols: Sequence[str] | None,
    start: DateLike,
    end: DateLike,
    store: str | None,
    *,
    settings: ScanSettings,
    scheduler: str | None = None,
    progress: bool = True,
    write: bool = True,
) -> ScanResult:
    """:func:`scan` under validated :class:`ScanSettings`; ``scheduler``, ``progress`` and
    ``write`` say where and how it runs, not what it computes."""
    started = time.perf_counter()
    from titan_lib.data import load_prices

    wanted = list(symbols) if symbols is not None else None
    if wanted is not None and len(set(wanted)) < 2:
        raise ParameterError("a scan needs at least two different symbols", {})
    prices = load_prices(wanted, start, end, store)
    if prices.height == 0:
        raise DataValidationError(f"no prices between {start} and {end}", {})
    panel = _scan_panel(prices, wanted, settings)
    del prices  # the long frame is larger than the panel: not kept through the scan
    table = _rank_panel(panel, settings, scheduler, progress)

    created = datetime.now(UTC)
    scan_id = f"{created:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    is_tested = pl.col("pvalue").is_not_null()
    tally = table.select(
        tested=is_tested.sum(),
        non_positive=(is_tested & (pl.col("hedge_ratio") <= 0)).sum(),
        q_below=(is_tested & (pl.col("qvalue") <= 0.05)).sum(),
        tradable=pl.col("tradable").sum(),
        tradable_q_below=(pl.col("tradable") & (pl.col("qvalue") <= 0.05)).sum(),
    ).row(0, named=True)
    universe_pairs = len(panel.symbols) * (len(panel.symbols) - 1) // 2
    meta: dict[str, Any] = {
        "schema_version": SCAN_SCHEMA_VERSION,
        "scan_id": scan_id,
        "created_at": created.isoformat(),
        "parameters": {
            "symbols": wanted,
            "start": None if start is None else str(start),
            "end": None if end is None else str(end),
            **asdict(settings),
            "scheduler": scheduler,
        },
        "universe": list(panel.symbols),
        "first_date": str(panel.dates[0])[:10],
        "last_date": str(panel.dates[-1])[:10],
        "pvalue_rule": DIRECTION_RULES[settings.direction],
        "fdr": {"method": "benjamini-hochberg", "n_tests": universe_pairs, "rule": FDR_RULE},
        "counts": {
            "symbols": len(panel.symbols),
            "universe_pairs": universe_pairs,
            "pairs": table.height,
            "tested": int(tally["tested"]),
            "untested": table.height - int(tally["tested"]),
            "tradable": int(tally["tradable"]),
            "non_positive_hedge": int(tally["non_positive"]),
            "q_below_0.05": int(tally["q_below"]),
            "tradable_q_below_0.05": int(tally["tradable_q_below"]),
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
    direction: ScanDirection = "symmetric",
    min_obs: int = 252,
    chunk_size: int = 512,
    scheduler: str | None = None,
    progress: bool = False,
    statistics_qvalue: float | None = None,
) -> pl.DataFrame:
    """The ranked pair table of :func:`scan`, computed from prices in memory.

    Same parameters and columns as :func:`scan`, without the store: ``prices`` is a long
    frame (``date, symbol, close``) and nothing is written. Walk-forward selection calls
    this on each training window, so only data inside that window is used.
    """
    settings = ScanSettings(
        prescreen=prescreen,
        top_k=top_k,
        price_transform=price_transform,
        trend=trend,
        autolag=autolag,
        maxlag=maxlag,
        direction=direction,
        min_obs=min_obs,
        chunk_size=chunk_size,
        statistics_qvalue=statistics_qvalue,
    )
    return _rank_panel(_scan_panel(prices, None, settings), settings, scheduler, progress)


def _scan_panel(
    prices: pl.DataFrame, wanted: list[str] | None, settings: ScanSettings
) -> PricePanel:
    min_obs = settings.min_obs
    panel = price_panel(prices, symbols=wanted, transform=settings.price_transform)
    if len(panel.symbols) < 2:
        raise ParameterError("a scan needs at least two symbols with prices", {})
    if panel.dates.shape[0] < min_obs:
        raise DataValidationError(
            f"too short: {panel.dates.shape[0]} dates between {panel.dates[0]} and "
            f"{panel.dates[-1]}, min_obs is {min_obs}",
            {"dates": int(panel.dates.shape[0]), "min_obs": min_obs},
        )
    return panel


def _rank_panel(
    panel: PricePanel, settings: ScanSettings, scheduler: str | None, progress: bool
) -> pl.DataFrame:
    min_obs, maxlag = settings.min_obs, settings.maxlag
    screened = _screen_pairs(panel, settings.prescreen, settings.top_k, min_obs)
    symmetric = settings.direction == "symmetric"
    yi, xi = pair_indices(panel, screened, False)
    m = yi.shape[0]
    tasks, decided = plan_batch(
        panel.values,
        np.concatenate([yi, xi]) if symmetric else yi,
        np.concatenate([xi, yi]) if symmetric else xi,
        trend=settings.trend,
        autolag=settings.autolag,
        maxlag=maxlag,
        min_obs=min_obs,
        chunk_size=settings.chunk_size,
    )
    with task_executor(scheduler, progress) as run:
        pairs = collect_results(chain([decided], run(tasks)), m, symmetric)
    del tasks
    name_rank = np.argsort(np.argsort(np.array(panel.symbols, dtype=object)))
    n = len(panel.symbols)
    ranked = rank_arrays(pairs, settings.trend, n * (n - 1) // 2, name_rank[yi], name_rank[xi])
    wanted_stats = ~np.isnan(pairs.coef[:, 0])
    if settings.statistics_qvalue is not None:
        wanted_stats &= ranked.qvalue <= settings.statistics_qvalue
    stats = spread_statistics(panel, yi, xi, pairs.coef, wanted_stats)
    extra = None
    if screened is not None:
        score = screened.columns[2]
        extra = {score: screened.get_column(score).cast(pl.Float64).to_numpy()}
    table = ranked_table(
        panel,
        yi,
        xi,
        pairs,
        ranked,
        stats,
        direction=settings.direction,
        reasons=reason_texts(min_obs, maxlag, NON_POSITIVE_HEDGE),
        extra=extra,
    )
    return table


def _write_scan(
    store: ObjectStore, scan_id: str, table: pl.DataFrame, meta: dict[str, Any]
) -> None:
    pairs_key, meta_key = _keys(scan_id)
    buffer = io.BytesIO()
    table.write_parquet(buffer, row_group_size=TABLE_SLICE_ROWS, compression="lz4")
    store.write_bytes(pairs_key, buffer.getvalue())
    if not store.put_if_absent(meta_key, dumps_json(meta)):
        raise ConflictError(f"scan {scan_id} already exists in {store.uri}", {"scan_id": scan_id})
    publish_scan_document(store, scan_id, table.head(SERVED_PAIRS), meta)


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
    """Stored scans, newest first: id, created_at, symbols, pairs, tested, significant,
    dates and settings (a scan stored before ``direction`` existed was one-way, y on x)."""
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
                "direction": params.get("direction", "y_on_x"),
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
        "direction": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("created_at", descending=True)


__all__ = [
    "SCAN_COLUMNS",
    "ScanDirection",
    "ScanResult",
    "list_scans",
    "load_scan",
    "rank_pairs",
    "scan",
    "task_executor",
]
