"""The scan's pair table assembled from block results streamed into flat per-pair arrays.

Block tasks finish in any order (a loop here or Dask workers); each result is scattered into
preallocated arrays as it arrives and then dropped. Memory thus holds the panel, the
products of the blocks being solved and a few numbers per pair (about 150 bytes with the
p-values, q-values and rank order), never a frame of every tested direction. From those
arrays come the p-values of every pair (what the Benjamini-Hochberg step needs), the
q-values and the rank order; the spread statistics are computed and kept only for the
pairs asked for; the ranked table is then built in slices of :data:`TABLE_SLICE_ROWS`
rows, which are also the Parquet row groups of ``pairs.parquet``.

The numbers are those of :func:`titan_lib.pairs.engle_granger_batch` row by row: the same
tasks run the same kernels, only the bookkeeping differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from titan_lib.pairs import eg_kernel
from titan_lib.pairs.eg_batch import TaskResult, Trend
from titan_lib.pairs.engle_granger import REASONS
from titan_lib.pairs.fdr import benjamini_hochberg
from titan_lib.pairs.mackinnon import mackinnon_pvalue
from titan_lib.pairs.panel import PricePanel
from titan_lib.pairs.spread_stats import batch_spread_statistics

TABLE_SLICE_ROWS = 1 << 20
"""Rows per slice of the ranked table and per Parquet row group of ``pairs.parquet``."""

NON_POSITIVE_CODE = max(REASONS) + 1
"""Reason code of a tested pair whose hedge ratio is not positive."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass
class PairArrays:
    """Per-pair outcome of the batch, pair ``q`` being ``(yi[q], xi[q])``.

    ``tstat`` / ``code`` hold the ``y`` on ``x`` test, ``tstat_xy`` / ``code_xy`` the
    ``x`` on ``y`` one (``None`` for a one-way scan); ``coef`` is (b, a, c) of ``y`` on
    ``x``; ``span`` is (nobs, first row, last row) of the common sample.
    """

    tstat: FloatArray
    code: NDArray[np.int8]
    tstat_xy: FloatArray | None
    code_xy: NDArray[np.int8] | None
    lag: FloatArray
    coef: FloatArray
    span: IntArray


def collect_results(results: Iterable[TaskResult], n_pairs: int, symmetric: bool) -> PairArrays:
    """Scatter task results into per-pair arrays as they arrive.

    Request rows ``0..n_pairs-1`` are the pairs ``y`` on ``x``; with ``symmetric`` rows
    ``n_pairs..2 n_pairs-1`` are the same pairs ``x`` on ``y``.
    """
    n_rows = 2 * n_pairs if symmetric else n_pairs
    tstat = np.full(n_rows, np.nan)
    code = np.zeros(n_rows, dtype=np.int8)
    lag = np.full(n_pairs, np.nan)
    coef = np.full((n_pairs, 3), np.nan)
    span = np.zeros((n_pairs, 3), dtype=np.int64)

    def scatter(result: TaskResult) -> None:
        rows = result.rows
        tstat[rows] = result.values[:, 0]
        code[rows] = result.codes
        forward = rows < n_pairs
        if forward.all():
            lag[rows] = result.values[:, 1]
            coef[rows] = result.values[:, 2:5]
            span[rows] = result.span
        elif forward.any():
            kept = rows[forward]
            lag[kept] = result.values[forward, 1]
            coef[kept] = result.values[forward, 2:5]
            span[kept] = result.span[forward]

    # a result is scattered (numpy, without the GIL) while the next task runs
    with ThreadPoolExecutor(1) as pool:
        pending: Future[None] | None = None
        for result in results:
            if pending is not None:
                pending.result()
            pending = pool.submit(scatter, result)
        if pending is not None:
            pending.result()
    tested = _tested(code[:n_pairs])
    return PairArrays(
        tstat=np.where(tested, tstat[:n_pairs], np.nan),
        code=code[:n_pairs],
        tstat_xy=np.where(_tested(code[n_pairs:]), tstat[n_pairs:], np.nan) if symmetric else None,
        code_xy=code[n_pairs:] if symmetric else None,
        lag=np.where(code[:n_pairs] == eg_kernel.OK, lag, np.nan),
        coef=np.where(tested[:, None], coef, np.nan),
        span=span,
    )


def _tested(code: NDArray[np.int8]) -> NDArray[np.bool_]:
    return np.asarray((code == eg_kernel.OK) | (code == eg_kernel.COLLINEAR))


@dataclass
class RankedPairs:
    """The per-pair verdicts and the rank order (``order[r]`` is the pair ranked ``r+1``)."""

    pvalue_yx: FloatArray
    pvalue_xy: FloatArray | None
    pvalue: FloatArray
    qvalue: FloatArray
    reason_code: NDArray[np.int8]
    tradable: NDArray[np.bool_]
    order: IntArray


def rank_arrays(
    pairs: PairArrays,
    trend: Trend,
    n_tests: int,
    y_rank: IntArray,
    x_rank: IntArray,
) -> RankedPairs:
    """p-values, q-values over ``n_tests`` pairs, reasons, tradability and the rank order.

    The order is: tradable first, then by q-value, p-value, t-statistic (missing last) and
    the names of ``y`` and ``x`` (``y_rank``, ``x_rank``: positions in name order).
    """
    # numpy releases the GIL in these array passes and sorts: the two directions' p-values,
    # then the q-values and the rank order, are computed side by side
    with ThreadPoolExecutor(2) as pool:
        forward = pool.submit(mackinnon_pvalue, pairs.tstat, trend)
        if pairs.tstat_xy is None or pairs.code_xy is None:
            pvalue_xy, reason = None, pairs.code.copy()
            pvalue_yx = pvalue = forward.result()
        else:
            pvalue_xy = mackinnon_pvalue(pairs.tstat_xy, trend)
            reason = np.where(pairs.code != eg_kernel.OK, pairs.code, pairs.code_xy)
            reason = reason.astype(np.int8)
            pvalue_yx = forward.result()
            pvalue = np.maximum(pvalue_yx, pvalue_xy)  # NaN (untested) when either is
        fdr = pool.submit(benjamini_hochberg, pvalue, n_tests=n_tests)
        tested = ~np.isnan(pvalue)
        with np.errstate(invalid="ignore"):
            non_positive = tested & (pairs.coef[:, 0] <= 0.0)
        reason[non_positive] = NON_POSITIVE_CODE
        tradable = tested & (reason == eg_kernel.OK)
        order = rank_order(tradable, pvalue, pairs.tstat, y_rank, x_rank)
        qvalue = fdr.result()
    return RankedPairs(pvalue_yx, pvalue_xy, pvalue, qvalue, reason, tradable, order)


def rank_order(
    tradable: NDArray[np.bool_],
    pvalue: FloatArray,
    tstat: FloatArray,
    y_rank: IntArray,
    x_rank: IntArray,
) -> IntArray:
    """Pairs in rank order: tradable first, then by p-value, t-statistic (missing last),
    ``y`` and ``x`` name positions.

    Benjamini-Hochberg q-values are non-decreasing in the p-value and equal for equal
    p-values, so this is also the order by q-value. One float sort does most of the work;
    only the runs of equal keys (p = 0 or 1, untested pairs) are sorted by the other keys.
    """
    missing_last = np.where(np.isnan(pvalue), np.inf, pvalue)
    key = np.where(tradable, missing_last, missing_last + 2.0)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    tie = np.zeros(order.shape[0], dtype=bool)
    if order.shape[0] > 1:
        same = sorted_key[1:] == sorted_key[:-1]
        tie[1:] |= same
        tie[:-1] |= same
    at = np.flatnonzero(tie)
    if at.shape[0]:
        group = order[at]
        t = tstat[group]
        by = np.lexsort(
            (
                x_rank[group],
                y_rank[group],
                np.where(np.isnan(t), np.inf, t),
                missing_last[group],
                key[group],
            )
        )
        order[at] = group[by]
    return np.asarray(order, dtype=np.int64)


@dataclass
class SelectedStatistics:
    """Spread statistics of the selected pairs only: ``values[k]`` (columns of
    :func:`titan_lib.pairs.spread_stats.batch_spread_statistics`) belongs to pair
    ``rows[k]``; the other pairs have none."""

    rows: IntArray
    values: FloatArray


def spread_statistics(
    panel: PricePanel,
    yi: IntArray,
    xi: IntArray,
    coef: FloatArray,
    selected: NDArray[np.bool_],
) -> SelectedStatistics:
    """Spread statistics of the ``selected`` pairs."""
    rows = np.flatnonzero(selected)
    values = np.empty((0, 6))
    if rows.shape[0]:
        values = batch_spread_statistics(panel.values, yi[rows], xi[rows], coef[rows])
    return SelectedStatistics(rows, values)


def ranked_table(
    panel: PricePanel,
    yi: IntArray,
    xi: IntArray,
    pairs: PairArrays,
    ranked: RankedPairs,
    stats: SelectedStatistics,
    *,
    direction: str,
    reasons: dict[int, str],
    extra: dict[str, FloatArray] | None = None,
) -> pl.DataFrame:
    """The ranked pair table (columns of :data:`titan_lib.pairs.scan.SCAN_COLUMNS`, then
    ``extra``), built in slices of :data:`TABLE_SLICE_ROWS` rows in rank order."""
    names = pl.Series(panel.symbols, dtype=pl.String)
    rank_of = np.empty(ranked.order.shape[0], dtype=np.int64)
    rank_of[ranked.order] = np.arange(ranked.order.shape[0])
    at_rank = rank_of[stats.rows]
    del rank_of
    reason_text = pl.Series([reasons.get(c) for c in range(NON_POSITIVE_CODE + 1)], dtype=pl.String)
    slices = [
        _table_slice(
            ranked.order[start : start + TABLE_SLICE_ROWS],
            start,
            names,
            reason_text,
            panel.dates,
            yi,
            xi,
            pairs,
            ranked,
            _in_slice(stats, at_rank, start, TABLE_SLICE_ROWS),
            direction,
            extra or {},
        )
        for start in range(0, max(yi.shape[0], 1), TABLE_SLICE_ROWS)
    ]
    return pl.concat(slices, rechunk=False)


def _table_slice(
    at: IntArray,
    start: int,
    names: pl.Series,
    reason_text: pl.Series,
    dates: NDArray[np.datetime64],
    yi: IntArray,
    xi: IntArray,
    pairs: PairArrays,
    ranked: RankedPairs,
    stats: tuple[IntArray, FloatArray],
    direction: str,
    extra: dict[str, FloatArray],
) -> pl.DataFrame:
    """Rows ``start+1 ..`` of the ranked table: the pairs ``at``; ``stats`` holds the slice
    positions that have spread statistics and their values."""
    n = at.shape[0]
    slots, stat_values = stats

    def stat(name: str, k: int) -> Callable[[], pl.Series]:
        def make() -> pl.Series:
            values = np.full(n, np.nan)
            values[slots] = stat_values[:, k]
            return pl.Series(name, values, nan_to_null=True)

        return make

    span = pairs.span[at]
    has_span = span[:, 1] >= 0

    def col(name: str, values: FloatArray | None) -> Callable[[], pl.Series]:
        if values is None:
            return lambda: pl.Series(name, np.full(n, None), dtype=pl.Float64)
        return lambda: pl.Series(name, values[at], nan_to_null=True)

    columns: list[Callable[[], pl.Series]] = [
        lambda: pl.Series("rank", np.arange(start + 1, start + 1 + n, dtype=np.int64)),
        lambda: names.gather(yi[at]).alias("y"),
        lambda: names.gather(xi[at]).alias("x"),
        col("hedge_ratio", pairs.coef[:, 0]),
        col("intercept", pairs.coef[:, 1]),
        col("trend_slope", pairs.coef[:, 2]),
        col("tstat", pairs.tstat),
        col("tstat_xy", pairs.tstat_xy),
        col("pvalue_yx", ranked.pvalue_yx),
        col("pvalue_xy", ranked.pvalue_xy),
        col("pvalue", ranked.pvalue),
        col("qvalue", ranked.qvalue),
        lambda: pl.Series("tradable", ranked.tradable[at]),
        lambda: pl.repeat(direction, n, dtype=pl.String, eager=True).alias("direction"),
        lambda: col("lag", pairs.lag)().cast(pl.Int64),
        stat("half_life", 3),
        stat("hurst", 4),
        lambda: stat("crossings", 5)().cast(pl.Int64),
        stat("spread_mean", 0),
        stat("spread_std", 1),
        lambda: pl.Series("nobs", span[:, 0]),
        lambda: pl.Series("start", dates[np.where(has_span, span[:, 1], 0)]).cast(pl.Date),
        lambda: pl.Series("end", dates[np.where(has_span, span[:, 2], 0)]).cast(pl.Date),
        lambda: reason_text.gather(ranked.reason_code[at].astype(np.int64)).alias("reason"),
        *[col(name, values) for name, values in extra.items()],
    ]
    # each column is one gather that releases the GIL: built side by side
    with ThreadPoolExecutor(2) as pool:
        frame = pl.DataFrame(list(pool.map(lambda make: make(), columns)))
    return frame.with_columns(pl.when(pl.Series(has_span)).then(pl.col("start", "end")))


def _in_slice(
    stats: SelectedStatistics, at_rank: IntArray, start: int, rows: int
) -> tuple[IntArray, FloatArray]:
    """Positions in the slice of ranks ``start .. start+rows-1`` that have statistics, and
    their values."""
    inside = (at_rank >= start) & (at_rank < start + rows)
    return at_rank[inside] - start, stats.values[inside]


def reason_texts(min_obs: int, maxlag: int | None, non_positive: str) -> dict[int, str]:
    """Reason text of every code (OK has none)."""
    texts = {code: text.format(min_obs=min_obs, maxlag=maxlag) for code, text in REASONS.items()}
    texts[NON_POSITIVE_CODE] = non_positive
    return texts
