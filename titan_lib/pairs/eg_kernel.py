"""Compiled Engle-Granger kernels (numba, cached on disk under ``NUMBA_CACHE_DIR``).

Notation for one pair on its common sample of ``N`` observations:

- ``e_s`` (s = 0..N-1) the residual of the cointegrating regression ``y = a + b x (+ c t)``;
- ``u_s = e_s - e_{s-1}`` (s = 1..N-1) its first difference;
- ``P`` the largest lag searched (statsmodels' ``maxlag``).

The second step is the ADF regression without deterministic terms (statsmodels' ``adfuller``
with ``regression="n"``)::

    u_t = rho * e_{t-1} + g_1 u_{t-1} + ... + g_p u_{t-p} + eps_t

Lag selection fits p = 0..P on the common sample t = P+1..N-1 and keeps the lag of smallest
information criterion (ties: the shorter lag); the chosen lag is refitted on its own longer
sample t = p+1..N-1 and the t-statistic of ``rho`` is returned.

All regressions are solved from Gram matrices. The selection Gram matrix over
``[e_{t-1}, u_{t-1}, ..., u_{t-P}, u_t]`` is assembled from a few sufficient statistics:

- ``F[d] = sum_{s=P+1}^{N-1} u_s u_{s-d}`` for d = 0..P (lagged products on one window);
- the first and last ``P + 1`` values of ``e`` and ``u`` (edge corrections: every lag's window
  is shifted, and the sums involving the level ``e_{t-1}`` follow from telescoping
  ``e_s u_s = (e_s^2 - e_{s-1}^2 + u_s^2) / 2``);
- ``ssr = sum e_s^2``.

One Cholesky factorisation of that (P+2)x(P+2) matrix gives the residual sums of squares of
all P+1 nested regressions. The batch path (:mod:`titan_lib.pairs.eg_batch`) computes ``F``
for thousands of pairs at once with BLAS; the single-pair path here computes it directly.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numba import prange

METHOD_NONE = 0
METHOD_AIC = 1
METHOD_BIC = 2

TREND_C = 0
TREND_CT = 1

# Pair outcome codes (the batch table turns them into reasons).
OK = 0
COLLINEAR = 1
TOO_FEW_OBS = 2
CONSTANT_Y = 3
CONSTANT_X = 4
MAXLAG_TOO_LARGE = 5
DEGENERATE = 6

COLLINEAR_R2 = 1.0 - 100.0 * math.sqrt(np.finfo(np.float64).eps)
"""statsmodels' rule: with R^2 at or above this the pair is collinear (t = -inf, p = 0)."""

_LOG_2PI = math.log(2.0 * math.pi)
DENSE_CHUNK = 256
"""Pairs per parallel work item of the dense kernel (scratch arrays allocated once each)."""


_FAST = {"reassoc", "contract"}
"""Let LLVM reorder sums (vectorised reductions); NaN and inf semantics stay intact."""


@nb.njit(cache=True, nogil=True, fastmath=_FAST)
def cholesky_lower(S: np.ndarray, L: np.ndarray, n: int) -> bool:  # pragma: no cover
    """Lower Cholesky factor of ``S[:n, :n]`` (lower triangle read) into ``L[:n, :n]``
    (lower triangle written); ``L`` may be ``S`` (in place).

    Returns False when the matrix is not numerically positive definite. Rows below the
    diagonal are reduced four at a time (four independent sums share ``L[j, k]``).
    """
    for j in range(n):
        s = S[j, j]
        for k in range(j):
            s -= L[j, k] * L[j, k]
        if not s > 0.0:
            return False
        d = math.sqrt(s)
        L[j, j] = d
        i = j + 1
        while i + 3 < n:
            s0 = S[i, j]
            s1 = S[i + 1, j]
            s2 = S[i + 2, j]
            s3 = S[i + 3, j]
            for k in range(j):
                a = L[j, k]
                s0 -= L[i, k] * a
                s1 -= L[i + 1, k] * a
                s2 -= L[i + 2, k] * a
                s3 -= L[i + 3, k] * a
            L[i, j] = s0 / d
            L[i + 1, j] = s1 / d
            L[i + 2, j] = s2 / d
            L[i + 3, j] = s3 / d
            i += 4
        while i < n:
            s = S[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            L[i, j] = s / d
            i += 1
    return True


@nb.njit(cache=True, nogil=True)
def lagged_products(u: np.ndarray, P: int, F: np.ndarray) -> None:  # pragma: no cover
    """``F[d] = sum_{s=P+1}^{n-1} u[s] u[s-d]`` for d = 0..P (four partial sums each)."""
    n = u.shape[0]
    for d in range(P + 1):
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        s = P + 1
        while s + 3 < n:
            a0 += u[s] * u[s - d]
            a1 += u[s + 1] * u[s + 1 - d]
            a2 += u[s + 2] * u[s + 2 - d]
            a3 += u[s + 3] * u[s + 3 - d]
            s += 4
        while s < n:
            a0 += u[s] * u[s - d]
            s += 1
        F[d] = (a0 + a1) + (a2 + a3)


@nb.njit(cache=True, nogil=True)
def _info_criterion(ssr: float, nobs: float, k: int, method: int) -> float:  # pragma: no cover
    # statsmodels OLS: llf = -n/2 log(2 pi) - n/2 log(ssr/n) - n/2; aic = -2 llf + 2 k
    nobs2 = nobs / 2.0
    llf = -nobs2 * _LOG_2PI - nobs2 * math.log(ssr / nobs) - nobs2
    if method == METHOD_AIC:
        return -2.0 * llf + 2.0 * k
    return -2.0 * llf + math.log(nobs) * k


@nb.njit(cache=True, nogil=True)
def adf_from_moments(
    F: np.ndarray,
    e_head: np.ndarray,
    e_tail: np.ndarray,
    u_head: np.ndarray,
    u_tail: np.ndarray,
    ssr: float,
    N: int,
    P: int,
    method: int,
    G: np.ndarray,
    R: np.ndarray,
) -> tuple[float, int, int]:  # pragma: no cover - compiled
    """ADF t-statistic and chosen lag of the residual series described by its moments.

    ``e_head[i] = e_i`` and ``u_head[i] = u_i`` for i = 0..P (``u_head[0]`` unused);
    ``e_tail[i] = e_{N-1-P+i}`` and ``u_tail[i] = u_{N-1-P+i}`` for i = 0..P. ``G`` and
    ``R`` are scratch matrices of at least (P+2)x(P+2). Returns ``(tstat, lag, code)``.
    """
    tgt = P + 1
    # The lower triangle of G holds the moments: lag j in row j (lag 0, u_t, in row tgt).
    # Lagged-difference block A(j, k) = sum_{t=P+1}^{N-1} u_{t-j} u_{t-k}: row tgt is F,
    # and row k follows from row k-1 along the row,
    # A(j, k) = A(j-1, k-1) + u_{P+1-j} u_{P+1-k} - u_{N-j} u_{N-k}.
    rh = R[0]
    rt = R[1]
    for k in range(1, P + 1):
        rh[k] = u_head[P + 1 - k]
        rt[k] = u_tail[P + 1 - k]
        G[tgt, k] = F[k]
    G[tgt, tgt] = F[0]
    for k in range(1, P + 1):
        hk = rh[k]
        tk = rt[k]
        G[k, 1] = F[k - 1] + rh[1] * hk - rt[1] * tk
        for j in range(2, k + 1):
            G[k, j] = G[k - 1, j - 1] + rh[j] * hk - rt[j] * tk
    # Level column (telescoping e_s u_s = (e_s^2 - e_{s-1}^2 + u_s^2) / 2).
    e_last = e_tail[P]
    head_sq = 0.0
    for s in range(P):
        head_sq += e_head[s] * e_head[s]
    G[0, 0] = ssr - head_sq - e_last * e_last
    G[tgt, 0] = 0.5 * (e_last * e_last - e_head[P] * e_head[P] - F[0])
    for k in range(1, P + 1):
        v = 0.5 * (e_tail[P - k] * e_tail[P - k] - e_head[P - k] * e_head[P - k] + G[k, k])
        for m in range(1, k):
            v += G[k, m]
        G[k, 0] = v

    p = P
    if method != METHOD_NONE:
        # Factor into R (lower triangle); G keeps the moments for the refit below.
        K = P + 2
        if not cholesky_lower(G, R, K):
            return math.nan, -1, DEGENERATE
        nobs = float(N - 1 - P)
        ssr_k = R[tgt, tgt] * R[tgt, tgt]
        best = math.inf
        # walk k = P+1 down to 1 regressors, keep the smallest criterion (ties: fewer lags)
        for k in range(P + 1, 0, -1):
            if k <= P:
                ssr_k += R[tgt, k] * R[tgt, k]
            ic = _info_criterion(ssr_k, nobs, k, method)
            if ic <= best:
                best = ic
                p = k - 1

    # Refit with p lags on t = p+1..N-1; order [u_{t-1}..u_{t-p}, e_{t-1}, u_t]. The
    # moments are read from the lower triangle of G.
    K = p + 2
    lvl = p
    tg = p + 1
    for i in range(p):
        for j in range(i + 1):
            R[i, j] = G[i + 1, j + 1]
        R[lvl, i] = G[i + 1, 0]
        R[tg, i] = G[tgt, i + 1]
    R[lvl, lvl] = G[0, 0]
    R[tg, lvl] = G[tgt, 0]
    R[tg, tg] = G[tgt, tgt]
    for t in range(p + 1, P + 1):
        el = e_head[t - 1]
        ut = u_head[t]
        for i in range(p):
            ui = u_head[t - 1 - i]
            for j in range(i + 1):
                R[i, j] += ui * u_head[t - 1 - j]
            R[lvl, i] += el * ui
            R[tg, i] += ut * ui
        R[lvl, lvl] += el * el
        R[tg, lvl] += ut * el
        R[tg, tg] += ut * ut
    dof = N - 1 - p - (p + 1)
    if dof <= 0 or not cholesky_lower(R, R, K):
        return math.nan, p, DEGENERATE
    ssr_p = R[tg, tg] * R[tg, tg]
    if not ssr_p > 0.0:
        return math.nan, p, DEGENERATE
    return R[tg, lvl] / math.sqrt(ssr_p / dof), p, OK


@nb.njit(cache=True, nogil=True)
def cointegrating_fit(
    y: np.ndarray, x: np.ndarray, trend: int, e: np.ndarray
) -> tuple[float, float, float, float, float]:  # pragma: no cover - compiled
    """OLS of ``y`` on ``[x, 1]`` (``trend=TREND_C``) or ``[x, 1, t]``, t = 1..N.

    Writes the residuals into ``e`` and returns ``(b, a, c, ssr, tss)``: slope, intercept,
    trend slope (0 for ``TREND_C``), residual and centred total sums of squares.
    """
    n = y.shape[0]
    my = 0.0
    mx = 0.0
    for i in range(n):
        my += y[i]
        mx += x[i]
    my /= n
    mx /= n
    gy = 0.0
    gx = 0.0
    tbar = 0.5 * (n + 1)
    if trend == TREND_CT:
        stt = 0.0
        sty = 0.0
        stx = 0.0
        for i in range(n):
            tc = (i + 1) - tbar
            stt += tc * tc
            sty += tc * (y[i] - my)
            stx += tc * (x[i] - mx)
        gy = sty / stt
        gx = stx / stt
    sxx = 0.0
    sxy = 0.0
    tss = 0.0
    for i in range(n):
        tc = (i + 1) - tbar
        yc = y[i] - my
        yt = yc - gy * tc
        xt = (x[i] - mx) - gx * tc
        sxx += xt * xt
        sxy += xt * yt
        tss += yc * yc
    b = sxy / sxx
    ssr = 0.0
    for i in range(n):
        tc = (i + 1) - tbar
        r = (y[i] - my - gy * tc) - b * ((x[i] - mx) - gx * tc)
        e[i] = r
        ssr += r * r
    c = gy - b * gx
    a = my - b * mx - c * tbar
    return b, a, c, ssr, tss


@nb.njit(cache=True, nogil=True)
def _is_constant(v: np.ndarray) -> bool:  # pragma: no cover - compiled
    i = 1
    while i < v.shape[0] and v[i] == v[0]:
        i += 1
    return i == v.shape[0]


@nb.njit(cache=True, nogil=True)
def engle_granger_series(
    y: np.ndarray, x: np.ndarray, trend: int, P: int, method: int, out: np.ndarray
) -> int:  # pragma: no cover - compiled
    """Engle-Granger test of two aligned series without missing values.

    ``out`` receives ``[tstat, lag, b, a, c, ssr, tss]``. Returns the outcome code.
    """
    N = y.shape[0]
    out[:] = math.nan
    if _is_constant(y):
        return CONSTANT_Y
    if _is_constant(x):
        return CONSTANT_X
    e = np.empty(N)
    b, a, c, ssr, tss = cointegrating_fit(y, x, trend, e)
    out[2] = b
    out[3] = a
    out[4] = c
    out[5] = ssr
    out[6] = tss
    if not (1.0 - ssr / tss) < COLLINEAR_R2:
        out[0] = -math.inf
        return COLLINEAR
    u = np.empty(N)
    u[0] = 0.0
    for s in range(1, N):
        u[s] = e[s] - e[s - 1]
    F = np.empty(P + 1)
    lagged_products(u, P, F)
    G = np.empty((P + 2, P + 2))
    R = np.empty((P + 2, P + 2))
    tstat, lag, code = adf_from_moments(
        F, e[: P + 1], e[N - 1 - P :], u[: P + 1], u[N - 1 - P :], ssr, N, P, method, G, R
    )
    out[0] = tstat
    out[1] = lag
    return code


@nb.njit(cache=True, nogil=True, parallel=True)
def engle_granger_sparse(
    series: np.ndarray,
    ii: np.ndarray,
    jj: np.ndarray,
    lags: np.ndarray,
    trend: int,
    method: int,
    min_obs: int,
    out: np.ndarray,
    codes: np.ndarray,
    span: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Engle-Granger for pairs ``(series[ii[q]], series[jj[q]])`` of a NaN-padded panel.

    ``series`` holds one symbol per row. Each pair is tested where both legs are present.
    ``lags[q]`` is the pair's ``P`` (negative: too short for the requested maxlag).
    ``out[q]`` receives
    ``[tstat, lag, b, a, c, ssr, tss]``, ``span[q]`` ``[nobs, first row, last row]``.
    """
    T = series.shape[1]
    for q in prange(ii.shape[0]):
        ys = series[ii[q]]
        xs = series[jj[q]]
        y = np.empty(T)
        x = np.empty(T)
        n = 0
        first = -1
        last = -1
        for t in range(T):
            yv = ys[t]
            xv = xs[t]
            if yv == yv and xv == xv:
                y[n] = yv
                x[n] = xv
                n += 1
                if first < 0:
                    first = t
                last = t
        span[q, 0] = n
        span[q, 1] = first
        span[q, 2] = last
        if n < min_obs:
            out[q, :] = math.nan
            codes[q] = TOO_FEW_OBS
        elif lags[q] < 0:
            out[q, :] = math.nan
            codes[q] = MAXLAG_TOO_LARGE
        else:
            codes[q] = engle_granger_series(y[:n], x[:n], trend, lags[q], method, out[q])


@nb.njit(cache=True, nogil=True, parallel=True)
def engle_granger_dense(
    raw: np.ndarray,
    acov_i: np.ndarray,
    acov_j: np.ndarray,
    S_ij: np.ndarray,
    ss_i: np.ndarray,
    ss_j: np.ndarray,
    tss_i: np.ndarray,
    tss_j: np.ndarray,
    head_i: np.ndarray,
    head_j: np.ndarray,
    tail_i: np.ndarray,
    tail_j: np.ndarray,
    dhead_i: np.ndarray,
    dhead_j: np.ndarray,
    dtail_i: np.ndarray,
    dtail_j: np.ndarray,
    li: np.ndarray,
    lj: np.ndarray,
    y_is_i: np.ndarray,
    N: int,
    P: int,
    method: int,
    out: np.ndarray,
    codes: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Assemble and solve the ADF regressions of many pairs of one block pair (I, J).

    Symbols ``i`` of block I and ``j`` of block J have centred (or detrended) levels ``l``
    and differences ``u``; ``a``, ``b`` are their local indices:

    - ``raw[0, b, a] = sum_{s=P+1}^{N-1} u^i_s u^j_s``, and for d >= 1
      ``raw[d, b, a] = sum_{s=P+1}^{N-1} (u^i_s + u^i_{s-d}) (u^j_s + u^j_{s-d})``;
    - ``acov_*[a, d] = sum_{s=P+1}^{N-1} u_s u_{s-d}`` of each symbol;
    - ``S_ij[a, b] = sum_s l^i_s l^j_s``; ``ss_*`` the own sums ``sum l^2``; ``tss_*`` the
      centred total sums of squares of the series;
    - ``head_*[a, r] = l_r`` and ``dhead_*[a, r] = u_r`` for r = 0..P (``dhead[a, 0]`` is
      0); ``tail_*[a, r] = l_{N-1-P+r}``, ``dtail_*[a, r] = u_{N-1-P+r}``.

    Pair q is ``(li[q], lj[q])``; ``y_is_i[q]`` says whether the I-symbol is the dependent
    leg. ``out[q]`` receives ``[tstat, lag, b, ssr]``.
    """
    m = li.shape[0]
    n_chunks = (m + DENSE_CHUNK - 1) // DENSE_CHUNK
    for chunk in prange(n_chunks):
        F = np.empty(P + 1)
        eh = np.empty(P + 1)
        et = np.empty(P + 1)
        uh = np.empty(P + 1)
        ut = np.empty(P + 1)
        G = np.empty((P + 2, P + 2))
        R = np.empty((P + 2, P + 2))
        for q in range(chunk * DENSE_CHUNK, min(m, (chunk + 1) * DENSE_CHUNK)):
            a_ = li[q]
            b_ = lj[q]
            yi = y_is_i[q]
            sxy = S_ij[a_, b_]
            if yi:
                syy = ss_i[a_]
                sxx = ss_j[b_]
                tss = tss_i[a_]
            else:
                syy = ss_j[b_]
                sxx = ss_i[a_]
                tss = tss_j[b_]
            b = sxy / sxx
            ssr = syy - b * sxy
            out[q, 2] = b
            out[q, 3] = ssr
            if not (1.0 - ssr / tss) < COLLINEAR_R2:
                out[q, 0] = -math.inf
                out[q, 1] = math.nan
                codes[q] = COLLINEAR
                continue
            b2 = b * b
            q0 = raw[0, b_, a_]
            head = 0.0
            tail = 0.0
            for d in range(P + 1):
                if d == 0:
                    cross = 2.0 * q0
                else:
                    r = P + 1 - d
                    head += dhead_i[a_, r] * dhead_j[b_, r]
                    tail += dtail_i[a_, r] * dtail_j[b_, r]
                    cross = raw[d, b_, a_] - 2.0 * q0 - head + tail
                if yi:
                    F[d] = acov_i[a_, d] - b * cross + b2 * acov_j[b_, d]
                else:
                    F[d] = acov_j[b_, d] - b * cross + b2 * acov_i[a_, d]
            if yi:
                hy, hx = head_i[a_], head_j[b_]
                ty, tx = tail_i[a_], tail_j[b_]
                dhy, dhx = dhead_i[a_], dhead_j[b_]
                dty, dtx = dtail_i[a_], dtail_j[b_]
            else:
                hy, hx = head_j[b_], head_i[a_]
                ty, tx = tail_j[b_], tail_i[a_]
                dhy, dhx = dhead_j[b_], dhead_i[a_]
                dty, dtx = dtail_j[b_], dtail_i[a_]
            for r in range(P + 1):
                eh[r] = hy[r] - b * hx[r]
                et[r] = ty[r] - b * tx[r]
                uh[r] = dhy[r] - b * dhx[r]
                ut[r] = dty[r] - b * dtx[r]
            tstat, lag, code = adf_from_moments(F, eh, et, uh, ut, ssr, N, P, method, G, R)
            out[q, 0] = tstat
            out[q, 1] = lag
            codes[q] = code


@nb.njit(cache=True, nogil=True)
def block_pair_order(
    ly: np.ndarray, lx: np.ndarray, chunk_size: int, n_blocks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """Sort pair requests ``(ly[q], lx[q])`` (symbol positions) into symbol-block pairs.

    Block ``I <= J`` of a pair holds its two legs' blocks; ``a`` is the leg's position in
    block I and ``b`` in block J (``a < b`` when ``I == J``), ``y_in_i`` whether ``ly`` is
    the leg in block I. Requests are ordered by block pair, then by ``b``, then by ``a``
    (neighbouring pairs read neighbouring products), keeping request order among equals:
    two counting sorts, O(requests + blocks^2 + chunk_size^2).

    Returns ``(order, starts, a, b, y_in_i)``: request ``order[r]`` is the ``r``-th;
    block pair ``k = I * n_blocks + J`` holds ranks ``starts[k]:starts[k+1]``; ``a``, ``b``,
    ``y_in_i`` are given in the sorted order.
    """
    m = ly.shape[0]
    cs = chunk_size
    n_keys = n_blocks * n_blocks
    key = np.empty(m, dtype=np.int64)
    sub = np.empty(m, dtype=np.int64)
    y_first = np.empty(m, dtype=np.bool_)
    starts = np.zeros(n_keys + 1, dtype=np.int64)
    for q in range(m):
        by = ly[q] // cs
        bx = lx[q] // cs
        if by <= bx:
            bi, bj, yi, a, b = by, bx, True, ly[q] - by * cs, lx[q] - bx * cs
        else:
            bi, bj, yi, a, b = bx, by, False, lx[q] - bx * cs, ly[q] - by * cs
        if bi == bj and a > b:  # the rank-k update fills the upper triangle: keep a < b
            a, b, yi = b, a, not yi
        key[q] = bi * n_blocks + bj
        sub[q] = b * cs + a
        y_first[q] = yi
        starts[key[q] + 1] += 1
    for k in range(n_keys):
        starts[k + 1] += starts[k]
    by_block = np.empty(m, dtype=np.int64)
    fill = starts[:-1].copy()
    for q in range(m):
        by_block[fill[key[q]]] = q
        fill[key[q]] += 1
    order = np.empty(m, dtype=np.int64)
    count = np.zeros(cs * cs + 1, dtype=np.int64)
    for k in range(n_keys):
        lo = starts[k]
        hi = starts[k + 1]
        if hi == lo:
            continue
        count[:] = 0
        for r in range(lo, hi):
            count[sub[by_block[r]] + 1] += 1
        for s in range(cs * cs):
            count[s + 1] += count[s]
        for r in range(lo, hi):
            q = by_block[r]
            order[lo + count[sub[q]]] = q
            count[sub[q]] += 1
    a_out = np.empty(m, dtype=np.int64)
    b_out = np.empty(m, dtype=np.int64)
    y_out = np.empty(m, dtype=np.bool_)
    for r in range(m):
        q = order[r]
        a_out[r] = sub[q] % cs
        b_out[r] = sub[q] // cs
        y_out[r] = y_first[q]
    return order, starts, a_out, b_out, y_out
