"""Engle-Granger cointegration tests that reproduce statsmodels' ``coint`` exactly.

Step 1 regresses ``y`` on ``[x, 1]`` (``trend="c"``) or ``[x, 1, t]`` with t = 1..N
(``trend="ct"``) by OLS; the slope is the hedge ratio. Step 2 runs the ADF regression without
deterministic terms on the residuals, with statsmodels' lag rules:

- ``maxlag`` defaults to ``ceil(12 (N/100)^(1/4))``, capped at ``N//2 - 1``;
- with ``autolag`` ("aic" or "bic") every lag 0..maxlag is fitted on the same sample
  (the last ``N - 1 - maxlag`` differences), the smallest criterion wins (ties: the shorter
  lag), and the chosen lag is refitted on its own, longer sample;
- with ``autolag=None`` exactly ``maxlag`` lags are used;
- if the first-step R^2 is at least ``1 - 100 sqrt(eps)`` the legs are collinear: the
  t-statistic is ``-inf`` and the p-value 0.

The p-value is MacKinnon's asymptotic one for two series with the given trend; the critical
values use ``T = N - 1``. Prices are used as given: pass log prices for a log-price test
(:func:`titan_lib.pairs.scan` does, by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError
from titan_lib.pairs import eg_kernel
from titan_lib.pairs.eg_batch import (
    METHOD_CODES,
    TREND_CODES,
    Autolag,
    Executor,
    Task,
    TaskResult,
    Trend,
    concat_results,
    plan_batch,
    run_sequential,
    statsmodels_maxlag,
)
from titan_lib.pairs.mackinnon import mackinnon_critical_values, mackinnon_pvalue
from titan_lib.pairs.panel import PricePanel, PriceTransform, price_panel

MIN_OBS = 30
"""Default minimum number of common observations for a pair to be tested."""

REASONS = {
    eg_kernel.COLLINEAR: "collinear legs: R^2 >= 1 - 100*sqrt(eps), t = -inf and p = 0",
    eg_kernel.TOO_FEW_OBS: "fewer than {min_obs} common observations",
    eg_kernel.CONSTANT_Y: "y is constant on the common sample",
    eg_kernel.CONSTANT_X: "x is constant on the common sample",
    eg_kernel.MAXLAG_TOO_LARGE: "maxlag {maxlag} exceeds nobs//2 - 1 for the common sample",
    eg_kernel.DEGENERATE: "the ADF regression is singular",
}


@dataclass(frozen=True)
class EngleGrangerResult:
    """One Engle-Granger test of ``y`` on ``x``.

    Attributes
    ----------
    tstat
        ADF t-statistic of the residuals (``-inf`` for collinear legs).
    pvalue
        MacKinnon asymptotic p-value (two series, the test's trend).
    crit_values
        Critical values at 1 %, 5 % and 10 %.
    lag
        Lagged differences used in the ADF regression (``None`` for collinear legs).
    maxlag
        The largest lag searched.
    hedge_ratio, intercept, trend_slope
        OLS coefficients of ``y = intercept + hedge_ratio * x + trend_slope * t``
        (t = 1..nobs; ``trend_slope`` is 0 for ``trend="c"``).
    nobs
        Observations used (rows where both legs are present).
    trend, autolag
        The test settings.
    """

    tstat: float
    pvalue: float
    crit_values: tuple[float, float, float]
    lag: int | None
    maxlag: int
    hedge_ratio: float
    intercept: float
    trend_slope: float
    nobs: int
    trend: Trend
    autolag: Autolag

    @property
    def collinear(self) -> bool:
        """Whether statsmodels' collinearity rule applied (t = -inf, p = 0)."""
        return self.tstat == -math.inf

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return {
            "tstat": self.tstat,
            "pvalue": self.pvalue,
            "crit_values": list(self.crit_values),
            "lag": self.lag,
            "maxlag": self.maxlag,
            "hedge_ratio": self.hedge_ratio,
            "intercept": self.intercept,
            "trend_slope": self.trend_slope,
            "nobs": self.nobs,
            "trend": self.trend,
            "autolag": self.autolag,
        }


def check_settings(trend: str, autolag: str | None, maxlag: int | None, min_obs: int) -> None:
    """Raise :class:`ParameterError` for settings the test does not support."""
    if trend not in TREND_CODES:
        raise ParameterError(f"trend must be 'c' or 'ct', got {trend!r}", {"trend": trend})
    if autolag not in METHOD_CODES:
        raise ParameterError(
            f"autolag must be 'aic', 'bic' or None, got {autolag!r}", {"autolag": autolag}
        )
    if maxlag is not None and (not isinstance(maxlag, int | np.integer) or maxlag < 0):
        raise ParameterError(f"maxlag must be a non-negative integer, got {maxlag!r}", {})
    if min_obs < 4:
        raise ParameterError(f"min_obs must be at least 4, got {min_obs}", {})


def _series(name: str, values: ArrayLike) -> NDArray[np.float64]:
    if isinstance(values, pl.Series):
        values = values.cast(pl.Float64).to_numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise DataValidationError(f"{name} must be one-dimensional, got shape {arr.shape}", {})
    if np.isinf(arr).any():
        raise DataValidationError(
            f"{name} has an infinite value at position {int(np.flatnonzero(np.isinf(arr))[0])}",
            {"series": name},
        )
    return arr


def engle_granger(
    y: ArrayLike,
    x: ArrayLike,
    trend: Trend = "c",
    autolag: Autolag = "aic",
    maxlag: int | None = None,
    *,
    min_obs: int = MIN_OBS,
) -> EngleGrangerResult:
    """Engle-Granger test of ``y`` on ``x``, equal to statsmodels ``coint(y, x, ...)``.

    Parameters
    ----------
    y, x
        The two price series (same length; rows with a NaN in either leg are dropped).
    trend
        ``"c"`` (constant) or ``"ct"`` (constant and linear trend) in the cointegrating
        regression.
    autolag
        ``"aic"``, ``"bic"`` or ``None`` (use exactly ``maxlag`` lags).
    maxlag
        Largest lag; statsmodels' default ``ceil(12 (N/100)^(1/4))`` when ``None``.
    min_obs
        Fewer common observations than this is an error.

    Returns
    -------
    EngleGrangerResult

    Raises
    ------
    DataValidationError
        Different lengths, too few observations, infinite values, or a constant leg.
    ParameterError
        Unsupported settings, or ``maxlag`` above ``N//2 - 1``.
    """
    check_settings(trend, autolag, maxlag, min_obs)
    ya, xa = _series("y", y), _series("x", x)
    if ya.shape != xa.shape:
        raise DataValidationError(
            f"y and x must have the same length, got {ya.shape[0]} and {xa.shape[0]}", {}
        )
    both = ~(np.isnan(ya) | np.isnan(xa))
    ya, xa = np.ascontiguousarray(ya[both]), np.ascontiguousarray(xa[both])
    nobs = int(ya.shape[0])
    if nobs < min_obs:
        raise DataValidationError(
            f"too short: {nobs} common observations, need at least {min_obs}",
            {"nobs": nobs, "min_obs": min_obs},
        )
    P = int(statsmodels_maxlag(np.array([nobs]), maxlag)[0])
    if P < 0:
        raise ParameterError(
            f"maxlag={maxlag} is too large for {nobs} observations (at most {nobs // 2 - 1})",
            {"maxlag": maxlag, "nobs": nobs},
        )
    out = np.empty(7)
    code = eg_kernel.engle_granger_series(ya, xa, TREND_CODES[trend], P, METHOD_CODES[autolag], out)
    if code in (eg_kernel.CONSTANT_Y, eg_kernel.CONSTANT_X):
        leg = "y" if code == eg_kernel.CONSTANT_Y else "x"
        raise DataValidationError(f"{leg} is constant: no cointegration test possible", {})
    if code == eg_kernel.DEGENERATE:
        raise DataValidationError(REASONS[eg_kernel.DEGENERATE], {})
    tstat = float(out[0])
    return EngleGrangerResult(
        tstat=tstat,
        pvalue=float(mackinnon_pvalue(tstat, trend)),
        crit_values=mackinnon_critical_values(nobs, trend),
        lag=None if code == eg_kernel.COLLINEAR else int(out[1]),
        maxlag=P,
        hedge_ratio=float(out[2]),
        intercept=float(out[3]),
        trend_slope=float(out[4]),
        nobs=nobs,
        trend=trend,
        autolag=autolag,
    )


PairList = Sequence[tuple[str, str]] | pl.DataFrame


def pair_indices(
    panel: PricePanel, pairs: PairList | None, both_directions: bool
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Column indices ``(y, x)`` of the pairs to test.

    ``pairs=None`` means every unordered pair of the panel, the earlier symbol as ``y``;
    ``both_directions`` adds each reversed pair.
    """
    n = len(panel.symbols)
    if pairs is None:
        yi, xi = np.triu_indices(n, 1)
    else:
        if isinstance(pairs, pl.DataFrame):
            if not {"y", "x"} <= set(pairs.columns):
                raise ParameterError("a pair frame needs columns 'y' and 'x'", {})
            listed = list(zip(pairs["y"].to_list(), pairs["x"].to_list(), strict=True))
        else:
            listed = [(str(p[0]), str(p[1])) for p in pairs]
        position = {s: i for i, s in enumerate(panel.symbols)}
        unknown = sorted({s for p in listed for s in p if s not in position})
        if unknown:
            raise NotFoundError(
                f"pair symbol(s) not in the prices: {', '.join(unknown)}", {"symbols": unknown}
            )
        same = [p for p in listed if p[0] == p[1]]
        if same:
            raise ParameterError(f"a pair needs two different symbols, got {same[0]}", {})
        yi = np.array([position[p[0]] for p in listed], dtype=np.int64)
        xi = np.array([position[p[1]] for p in listed], dtype=np.int64)
    yi, xi = np.asarray(yi, dtype=np.int64), np.asarray(xi, dtype=np.int64)
    if both_directions:
        yi, xi = np.concatenate([yi, xi]), np.concatenate([xi, yi])
    return yi, xi


def engle_granger_batch(
    prices: pl.DataFrame | PricePanel,
    pairs: PairList | None = None,
    *,
    symbols: Sequence[str] | None = None,
    trend: Trend = "c",
    autolag: Autolag = "aic",
    maxlag: int | None = None,
    both_directions: bool = False,
    min_obs: int = MIN_OBS,
    chunk_size: int = 512,
    price_transform: PriceTransform = "level",
    executor: Executor | None = None,
) -> pl.DataFrame:
    """Engle-Granger tests of many pairs at once; each row equals :func:`engle_granger`.

    Parameters
    ----------
    prices
        A :class:`~titan_lib.pairs.panel.PricePanel`, or a polars frame, long
        (``date, symbol, close``) or wide (``date`` + symbols).
    pairs
        ``(y, x)`` tuples or a frame with columns ``y`` and ``x``; every unordered pair of
        the universe (earlier symbol as ``y``) when ``None``.
    symbols
        Restrict the universe (frames only).
    trend, autolag, maxlag
        As :func:`engle_granger`; ``maxlag=None`` is statsmodels' default for each pair's
        own sample size.
    both_directions
        Also test every pair the other way round (``x`` on ``y``).
    min_obs
        Pairs with fewer common observations get no result and a ``reason``.
    chunk_size
        Symbols per block: memory is about ``chunk_size^2 * (maxlag + 1) * 8`` bytes per task.
    price_transform
        ``"level"`` (as given) or ``"log"``; frames only (a panel carries its own).
    executor
        Runs the task list (default: one after another in this process); see
        :func:`titan_lib.pairs.scan.scan` for the Dask executor.

    Returns
    -------
    polars.DataFrame
        One row per tested direction: ``y, x, nobs, start, end, hedge_ratio, intercept,
        trend_slope, tstat, pvalue, lag, reason``. ``reason`` is null for a tested pair;
        untested pairs have null statistics.
    """
    check_settings(trend, autolag, maxlag, min_obs)
    if chunk_size < 2:
        raise ParameterError(f"chunk_size must be at least 2, got {chunk_size}", {})
    panel = (
        prices
        if isinstance(prices, PricePanel)
        else price_panel(prices, symbols=symbols, transform=price_transform)
    )
    yi, xi = pair_indices(panel, pairs, both_directions)
    tasks, decided = plan_batch(
        panel.values,
        yi,
        xi,
        trend=trend,
        autolag=autolag,
        maxlag=maxlag,
        min_obs=min_obs,
        chunk_size=chunk_size,
    )
    run: Executor = executor or run_sequential
    return batch_frame(
        panel, yi, xi, concat_results([decided, *run(tasks)]), trend, min_obs, maxlag
    )


def batch_frame(
    panel: PricePanel,
    yi: NDArray[np.int64],
    xi: NDArray[np.int64],
    result: TaskResult,
    trend: Trend,
    min_obs: int,
    maxlag: int | None,
) -> pl.DataFrame:
    """The result table of :func:`engle_granger_batch`, rows in request order."""
    m = yi.shape[0]
    order = np.empty(m, dtype=np.int64)
    order[result.rows] = np.arange(result.rows.shape[0])
    values, codes, span = result.values[order], result.codes[order], result.span[order]
    tested = (codes == eg_kernel.OK) | (codes == eg_kernel.COLLINEAR)
    tstat = np.where(tested, values[:, 0], np.nan)
    pvalue = mackinnon_pvalue(tstat, trend)
    reasons = {code: text.format(min_obs=min_obs, maxlag=maxlag) for code, text in REASONS.items()}
    names = pl.Series(panel.symbols, dtype=pl.String)
    reason_of_code = pl.Series(
        [None if code == eg_kernel.OK else reasons.get(code) for code in range(max(reasons) + 1)],
        dtype=pl.String,
    )
    dates = panel.dates
    has_span = span[:, 1] >= 0
    first = np.where(has_span, span[:, 1], 0)
    last = np.where(has_span, span[:, 2], 0)
    frame = pl.DataFrame(
        {
            "y": names.gather(yi),
            "x": names.gather(xi),
            "nobs": span[:, 0],
            "start": pl.Series(dates[first]).cast(pl.Date),
            "end": pl.Series(dates[last]).cast(pl.Date),
            "hedge_ratio": np.where(tested, values[:, 2], np.nan),
            "intercept": np.where(tested, values[:, 3], np.nan),
            "trend_slope": np.where(tested, values[:, 4], np.nan),
            "tstat": tstat,
            "pvalue": pvalue,
            "lag": np.where(codes == eg_kernel.OK, values[:, 1], np.nan),
            "reason": reason_of_code.gather(codes.astype(np.int64)),
        },
    )
    return frame.with_columns(
        pl.when(pl.Series(has_span)).then(pl.col("start", "end")),
        pl.col("hedge_ratio", "intercept", "trend_slope", "tstat", "pvalue").fill_nan(None),
        pl.col("lag").fill_nan(None).cast(pl.Int64),
    )


__all__ = [
    "MIN_OBS",
    "EngleGrangerResult",
    "Task",
    "engle_granger",
    "engle_granger_batch",
]
