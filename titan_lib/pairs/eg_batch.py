"""The batched Engle-Granger test: a plan of independent tasks over symbol blocks.

Pairs whose legs have prices on exactly the same dates ("dense" groups) share one sample, so
the lagged products of every pair's residual differences follow from symbol-by-symbol
products. With ``l`` the centred (or detrended) log or level prices, ``u`` their first
differences and ``e = l^y - b l^x``::

    sum_s u^e_s u^e_{s-d} = A^y_d - b (K_d[y, x] + K_d[x, y]) + b^2 A^x_d

where ``A_d`` is a symbol's own lagged product and ``K_d[i, j] = sum_s u^i_s u^j_{s-d}``. The
symmetric sum ``K_d + K_d'`` is one BLAS rank-k update per lag (polarisation)::

    W_d = U_{s} + U_{s-d}    =>    W_d' W_d = Q_s + Q_{s-d} + (K_d + K_d')

with ``Q`` the lag-0 products on the two windows (edge rows corrected exactly). Symbols are cut
into blocks of ``chunk_size`` so memory is bounded: a block pair needs
``chunk_size^2 * (P+1)`` doubles. Every other pair (legs with different dates, or a sparse
pair list) is tested on its own common sample by the compiled per-pair kernel.

Each task is self-contained and deterministic, so running the tasks in a loop or on a Dask
cluster gives identical numbers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numba as nb
import numpy as np
from numpy.typing import NDArray

from titan_lib.compile_once import compiling_once
from titan_lib.pairs import blas, eg_kernel

Trend = Literal["c", "ct"]
Autolag = Literal["aic", "bic"] | None

TREND_CODES = {"c": eg_kernel.TREND_C, "ct": eg_kernel.TREND_CT}
METHOD_CODES = {
    "aic": eg_kernel.METHOD_AIC,
    "bic": eg_kernel.METHOD_BIC,
    None: eg_kernel.METHOD_NONE,
}
SPARSE_TASK_PAIRS = 4096
"""Pairs per task on the per-pair path."""

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def statsmodels_maxlag(nobs: IntArray, maxlag: int | None) -> IntArray:
    """The lag search bound ``P`` of statsmodels' ``adfuller`` (residual test, no trend).

    ``ceil(12 (nobs/100)^(1/4))`` capped at ``nobs//2 - 1``; with an explicit ``maxlag``,
    ``maxlag`` where it is at most ``nobs//2 - 1`` and -1 (too large) elsewhere.
    """
    nobs = np.asarray(nobs, dtype=np.int64)
    cap = nobs // 2 - 1
    if maxlag is None:
        auto = np.ceil(12.0 * np.power(nobs / 100.0, 1 / 4.0)).astype(np.int64)
        return np.asarray(np.minimum(cap, auto), dtype=np.int64)
    return np.asarray(np.where(maxlag <= cap, maxlag, -1), dtype=np.int64)


@dataclass
class TaskResult:
    """Outcome of one task: rows of the request list and their values.

    ``values`` columns: tstat, lag, hedge_ratio, intercept, trend_slope. ``span`` columns:
    nobs, first row, last row (rows of the panel).
    """

    rows: IntArray
    values: FloatArray
    codes: NDArray[np.int8]
    span: IntArray


@dataclass
class DenseTask:
    """Pairs between symbol blocks I and J of one dense group (same dates for all)."""

    rows: IntArray
    levels_i: FloatArray
    levels_j: FloatArray | None  # None: J is I
    li: IntArray
    lj: IntArray
    y_is_i: NDArray[np.bool_]
    first_row: int
    last_row: int
    trend: int
    maxlag: int
    method: int
    blocks: tuple[int, int] = (0, 0)  # I and J, keys of ``prepared``
    prepared: PreparedBlocks | None = None  # shared by the group's tasks; None: prepare here

    @property
    def size(self) -> int:
        """Number of pairs in the task."""
        return int(self.rows.shape[0])

    def run(self) -> TaskResult:
        """Compute the block's lagged products with BLAS and solve every pair."""
        return _run_dense(self)


@dataclass
class SparseTask:
    """Pairs tested one by one on their own common samples (columns of a NaN panel)."""

    rows: IntArray
    series: FloatArray  # one row per symbol
    ii: IntArray
    jj: IntArray
    lags: IntArray
    trend: int
    method: int
    min_obs: int

    @property
    def size(self) -> int:
        """Number of pairs in the task."""
        return int(self.rows.shape[0])

    def run(self) -> TaskResult:
        """Run the compiled per-pair kernel over the task's pairs."""
        m = self.ii.shape[0]
        out = np.empty((m, 7))
        codes = np.empty(m, dtype=np.int8)
        span = np.empty((m, 3), dtype=np.int64)
        with compiling_once("engle-granger-sparse"):
            eg_kernel.engle_granger_sparse(
                self.series,
                self.ii,
                self.jj,
                self.lags,
                self.trend,
                self.method,
                self.min_obs,
                out,
                codes,
                span,
            )
        return TaskResult(self.rows, out[:, [0, 1, 2, 3, 4]], codes, span)


Task = DenseTask | SparseTask


_task_threads = threading.local()
"""``limit``: the threads the task running in this thread may use (``None``: every core)."""


def run_task(task: Task) -> TaskResult:
    """Run one task (a module-level function, so Dask can ship it to workers).

    On a Dask worker the task uses as many threads as the worker has, for its compiled loops
    and its products alike, so worker processes sharing a machine do not oversubscribe its
    cores (a worker's ``--nthreads`` is what it may use). The numbers do not depend on it.
    """
    threads = _dask_worker_threads()
    if threads is None:
        return task.run()
    previous = nb.get_num_threads()
    nb.set_num_threads(max(1, min(threads, nb.config.NUMBA_NUM_THREADS)))  # type: ignore[attr-defined]
    _task_threads.limit = threads
    try:
        return task.run()
    finally:
        _task_threads.limit = None
        nb.set_num_threads(previous)


def _dask_worker_threads() -> int | None:
    """The thread count of the Dask worker running this code, or ``None`` outside one."""
    try:
        from distributed import get_worker
    except ImportError:  # pragma: no cover - Dask is optional for local scans
        return None
    try:
        return int(get_worker().state.nthreads)
    except ValueError:
        return None


@dataclass
class _Prepared:
    lt: FloatArray  # centred/detrended levels, Fortran order
    du: FloatArray  # first differences of lt, Fortran order
    ss: FloatArray
    tss: FloatArray
    mean: FloatArray
    slope: FloatArray
    acov: FloatArray  # (n, P+1)
    head: FloatArray  # (symbols, P+1) from here on: one row per symbol
    tail: FloatArray
    dhead: FloatArray
    dtail: FloatArray


def _prepare(levels: FloatArray, trend: int, P: int) -> _Prepared:
    N = levels.shape[0]
    mean = levels.mean(axis=0)
    centred = levels - mean
    tc = np.arange(1, N + 1, dtype=np.float64) - 0.5 * (N + 1)
    if trend == eg_kernel.TREND_CT:
        slope = (tc @ centred) / (tc @ tc)
        lt = centred - np.outer(tc, slope)
    else:
        slope = np.zeros(levels.shape[1])
        lt = centred
    lt = np.asfortranarray(lt)
    du = np.asfortranarray(np.diff(lt, axis=0))
    M = N - 1
    acov = np.empty((levels.shape[1], P + 1))
    for d in range(P + 1):
        acov[:, d] = np.einsum("ij,ij->j", du[P:], du[P - d : M - d])
    dhead = np.zeros((levels.shape[1], P + 1))
    dhead[:, 1:] = du[:P].T
    return _Prepared(
        lt=lt,
        du=du,
        ss=np.einsum("ij,ij->j", lt, lt),
        tss=np.einsum("ij,ij->j", centred, centred),
        mean=mean,
        slope=slope,
        acov=acov,
        head=np.ascontiguousarray(lt[: P + 1].T),
        tail=np.ascontiguousarray(lt[N - 1 - P :].T),
        dhead=dhead,
        dtail=np.ascontiguousarray(du[M - 1 - P :].T),
    )


class PreparedBlocks:
    """The per-symbol products of the blocks of one dense group (centred levels, their
    differences, own lagged products, edge values), made on a block's first use and kept
    for the group's other tasks in this process. A pickled copy (a task shipped to a Dask
    worker) starts empty: each worker prepares what its tasks need.
    """

    def __init__(self) -> None:
        self._blocks: dict[int, _Prepared] = {}

    def get(self, block: int, levels: FloatArray, trend: int, P: int) -> _Prepared:
        """The prepared block ``block`` (``levels`` are its columns)."""
        found = self._blocks.get(block)
        if found is None:
            found = self._blocks[block] = _prepare(levels, trend, P)
        return found

    def __getstate__(self) -> dict[str, object]:
        return {"_blocks": {}}


def _lagged_cross_products(
    pi: _Prepared, pj: _Prepared | None, P: int
) -> tuple[FloatArray, FloatArray]:
    """Raw BLAS products of a block pair, ``raw[d, b, a]`` (layout read by the kernel), and
    the level products ``S[a, b] = sum_s l^i_s l^j_s``.

    ``raw[0] = U_s' U_s`` and ``raw[d] = W_d' W_d`` with ``W_d = U_s + U_{s-d}``, s = P+1..N-1;
    the kernel turns them into the symmetric lagged products (edge rows corrected). Each
    product is written in place (``raw[d].T`` is the Fortran-ordered BLAS output). The
    products are shared among threads, each taking the next one when done and running
    single-threaded BLAS without the GIL: the same numbers whatever the thread count, and
    no BLAS threads spinning against each other.
    """
    from threadpoolctl import threadpool_limits

    di = pi.du
    dj = di if pj is None else pj.du
    lj = pi.lt if pj is None else pj.lt
    M = di.shape[0]
    ni, nj = di.shape[1], dj.shape[1]
    raw = np.empty((P + 1, nj, ni))
    S = np.empty((ni, nj))
    products = iter(range(P + 2))  # the lags 0..P, then S
    taken = threading.Lock()
    workers = min(_workers(), P + 2)

    def next_product() -> int | None:
        with taken:
            return next(products, None)

    def lag_products() -> None:
        wi = np.empty((M - P, ni), order="F")
        wj = wi if pj is None else np.empty((M - P, nj), order="F")
        sums = [(wi, di)] if pj is None else [(wi, di), (wj, dj)]  # W_d of each block
        while (d := next_product()) is not None:
            if d == P + 1:
                blas.gemm_tn(lj, pi.lt, S.T)
                continue
            for w, u in sums:
                if d == 0:
                    w[...] = u[P:]
                else:
                    np.add(u[P:], u[P - d : M - d], out=w)
            if pj is None:
                blas.syrk_upper(wi, raw[d].T)
            else:
                blas.gemm_tn(wi, wj, raw[d].T)

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        for done in [pool.submit(lag_products) for _ in range(workers)]:
            done.result()
    return raw, S


def _workers() -> int:
    limit = getattr(_task_threads, "limit", None)
    if limit is not None:
        return max(1, int(limit))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _run_dense(task: DenseTask) -> TaskResult:
    P = task.maxlag
    N = task.levels_i.shape[0]
    blocks = PreparedBlocks() if task.prepared is None else task.prepared
    pi = blocks.get(task.blocks[0], task.levels_i, task.trend, P)
    pj = None if task.levels_j is None else blocks.get(task.blocks[1], task.levels_j, task.trend, P)
    qj = pi if pj is None else pj
    raw, S = _lagged_cross_products(pi, pj, P)
    m = task.size
    out = np.empty((m, 4))
    codes = np.empty(m, dtype=np.int8)
    with compiling_once("engle-granger-dense"):
        eg_kernel.engle_granger_dense(
            raw,
            pi.acov,
            qj.acov,
            S,
            pi.ss,
            qj.ss,
            pi.tss,
            qj.tss,
            pi.head,
            qj.head,
            pi.tail,
            qj.tail,
            pi.dhead,
            qj.dhead,
            pi.dtail,
            qj.dtail,
            task.li,
            task.lj,
            task.y_is_i,
            N,
            P,
            task.method,
            out,
            codes,
        )
    b = out[:, 2]
    mean_y = np.where(task.y_is_i, pi.mean[task.li], qj.mean[task.lj])
    mean_x = np.where(task.y_is_i, qj.mean[task.lj], pi.mean[task.li])
    slope_y = np.where(task.y_is_i, pi.slope[task.li], qj.slope[task.lj])
    slope_x = np.where(task.y_is_i, qj.slope[task.lj], pi.slope[task.li])
    c = slope_y - b * slope_x
    a = mean_y - b * mean_x - c * 0.5 * (N + 1)
    values = np.column_stack([out[:, 0], out[:, 1], b, a, c])
    span = np.empty((m, 3), dtype=np.int64)
    span[:] = (N, task.first_row, task.last_row)
    return TaskResult(task.rows, values, codes, span)


def _mask_groups(valid: NDArray[np.bool_]) -> IntArray:
    """Label symbols by their exact pattern of valid dates (same label: same dates)."""
    packed = np.ascontiguousarray(np.packbits(valid, axis=0).T)
    seen: dict[bytes, int] = {}
    return np.array([seen.setdefault(row.tobytes(), len(seen)) for row in packed], np.int64)


def plan_batch(
    values: FloatArray,
    y_idx: IntArray,
    x_idx: IntArray,
    *,
    trend: Trend,
    autolag: Autolag,
    maxlag: int | None,
    min_obs: int,
    chunk_size: int,
) -> tuple[list[Task], TaskResult]:
    """Split the requested pairs ``(y_idx[q], x_idx[q])`` of a NaN panel into tasks.

    Returns the tasks and the pre-decided rows (too few observations, constant legs,
    maxlag too large), which need no computation.
    """
    tcode, mcode = TREND_CODES[trend], METHOD_CODES[autolag]
    valid = ~np.isnan(values)
    labels = _mask_groups(valid)
    m = y_idx.shape[0]
    rows = np.arange(m, dtype=np.int64)
    label_y = labels[y_idx]
    same = label_y == labels[x_idx]
    tasks: list[Task] = []
    decided: list[TaskResult] = []
    sparse_rows: list[IntArray] = [rows[~same]]
    per_group = np.bincount(label_y[same], minlength=int(labels.max()) + 1)

    for g in np.flatnonzero(per_group).tolist():
        # one group holding every request (a universe on one calendar): no masks
        in_group = rows if per_group[g] == m else rows[same & (label_y == g)]
        members = np.flatnonzero(labels == g)
        date_rows = np.flatnonzero(valid[:, members[0]])
        n_g = members.shape[0]
        if n_g < 4 or in_group.shape[0] * 16 < n_g * n_g:
            sparse_rows.append(in_group)
            continue
        nobs = date_rows.shape[0]
        P = int(statsmodels_maxlag(np.array([nobs]), maxlag)[0])
        code = eg_kernel.OK
        if nobs < min_obs:
            code = eg_kernel.TOO_FEW_OBS
        elif P < 0:
            code = eg_kernel.MAXLAG_TOO_LARGE
        span = np.array([nobs, date_rows[0] if nobs else -1, date_rows[-1] if nobs else -1])
        if code != eg_kernel.OK:
            decided.append(_decided(in_group, code, span))
            continue
        levels = values[np.ix_(date_rows, members)]
        constant = np.ptp(levels, axis=0) == 0.0
        local = np.full(values.shape[1], -1, dtype=np.int64)
        local[members] = np.arange(n_g)
        ly, lx = local[y_idx[in_group]], local[x_idx[in_group]]
        if constant.any():
            const_y, const_x = constant[ly], constant[lx] & ~constant[ly]
            for hit, code_ in ((const_y, eg_kernel.CONSTANT_Y), (const_x, eg_kernel.CONSTANT_X)):
                if hit.any():
                    decided.append(_decided(in_group[hit], code_, span))
            keep = ~(const_y | const_x)
            in_group, ly, lx = in_group[keep], ly[keep], lx[keep]
        tasks.extend(
            _dense_tasks(
                levels, in_group, ly, lx, int(span[1]), int(span[2]), tcode, P, mcode, chunk_size
            )
        )

    sparse = np.concatenate(sparse_rows)
    if sparse.shape[0]:
        tasks.extend(
            _sparse_tasks(values, valid, y_idx, x_idx, sparse, tcode, mcode, maxlag, min_obs)
        )
    empty = TaskResult(
        np.empty(0, np.int64), np.empty((0, 5)), np.empty(0, np.int8), np.empty((0, 3), np.int64)
    )
    return tasks, concat_results([empty, *decided])


def _decided(rows: IntArray, code: int, span: IntArray) -> TaskResult:
    m = rows.shape[0]
    return TaskResult(
        rows,
        np.full((m, 5), np.nan),
        np.full(m, code, dtype=np.int8),
        np.tile(span, (m, 1)).astype(np.int64),
    )


def _dense_tasks(
    levels: FloatArray,
    rows: IntArray,
    ly: IntArray,
    lx: IntArray,
    first_row: int,
    last_row: int,
    trend: int,
    P: int,
    method: int,
    chunk_size: int,
) -> Iterator[DenseTask]:
    n_blocks = (levels.shape[1] + chunk_size - 1) // chunk_size
    order, starts, a, b, y_in_i = eg_kernel.block_pair_order(ly, lx, chunk_size, n_blocks)
    prepared = PreparedBlocks()
    for k in np.flatnonzero(np.diff(starts)).tolist():
        lo, hi = int(starts[k]), int(starts[k + 1])
        bi_, bj_ = divmod(k, n_blocks)
        cols_i = levels[:, bi_ * chunk_size : (bi_ + 1) * chunk_size]
        cols_j = None if bi_ == bj_ else levels[:, bj_ * chunk_size : (bj_ + 1) * chunk_size]
        yield DenseTask(
            rows=rows[order[lo:hi]],
            levels_i=cols_i,  # views: a task holds no copy until it runs or ships
            levels_j=cols_j,
            li=a[lo:hi],
            lj=b[lo:hi],
            y_is_i=y_in_i[lo:hi],
            first_row=first_row,
            last_row=last_row,
            trend=trend,
            maxlag=P,
            method=method,
            blocks=(bi_, bj_),
            prepared=prepared,
        )


def _sparse_tasks(
    values: FloatArray,
    valid: NDArray[np.bool_],
    y_idx: IntArray,
    x_idx: IntArray,
    rows: IntArray,
    trend: int,
    method: int,
    maxlag: int | None,
    min_obs: int,
) -> Iterator[SparseTask]:
    vf = valid.astype(np.float64)
    counts = np.rint(vf.T @ vf).astype(np.int64)
    series = np.ascontiguousarray(values.T)  # shared by every task of this batch
    for start in range(0, rows.shape[0], SPARSE_TASK_PAIRS):
        chunk = rows[start : start + SPARSE_TASK_PAIRS]
        yi, xi = y_idx[chunk], x_idx[chunk]
        yield SparseTask(
            rows=chunk,
            series=series,
            ii=np.ascontiguousarray(yi),
            jj=np.ascontiguousarray(xi),
            lags=statsmodels_maxlag(counts[yi, xi], maxlag),
            trend=trend,
            method=method,
            min_obs=min_obs,
        )


def concat_results(parts: Iterable[TaskResult]) -> TaskResult:
    """Stack task results (rows keep their request positions)."""
    items = list(parts)
    return TaskResult(
        np.concatenate([p.rows for p in items]),
        np.concatenate([p.values for p in items]),
        np.concatenate([p.codes for p in items]),
        np.concatenate([p.span for p in items]),
    )


Executor = Callable[[list[Task]], Iterable[TaskResult]]


def run_sequential(tasks: list[Task]) -> Iterator[TaskResult]:
    """Run tasks one after another in this process."""
    for task in tasks:
        yield task.run()
