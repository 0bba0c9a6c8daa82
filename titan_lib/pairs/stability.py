"""Stability of a pair's cointegration: the Engle-Granger test repeated on parts of the sample.

A pair that is cointegrated over the full sample but in none of its parts, or whose hedge
ratio wanders far from the full-sample one, is a poor candidate: the relation it trades may
have held once and not since. :func:`pair_stability` repeats the test on

- ``n_subperiods`` consecutive slices of (nearly) equal length (default), or
- rolling windows of ``window`` bars, one every ``step`` bars,

and summarises them for a publish decision: the share of parts with ``p <= alpha`` and the
largest relative drift of the part's hedge ratio from the full-sample one,
``|beta_part - beta_full| / |beta_full|``.

P-values follow the scan's ``direction`` rule (:mod:`titan_lib.pairs.scan`): by default
each part is tested both ways and its p-value is the larger of the two. Hedge ratios,
intercepts and half-lives are those of ``y`` on ``x``. Short parts have less power, so
individual p-values are higher than the full sample's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import polars.selectors as cs
from numpy.typing import ArrayLike

from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.pairs.eg_batch import Autolag, Trend
from titan_lib.pairs.engle_granger import (
    MIN_OBS,
    EngleGrangerResult,
    check_settings,
    engle_granger,
)
from titan_lib.pairs.hedge_ratios import aligned_legs
from titan_lib.pairs.scan import SCAN_DIRECTIONS, ScanDirection
from titan_lib.pairs.spread_stats import spread_stats

PERIOD_COLUMNS = (
    "period",
    "start_index",
    "end_index",
    "nobs",
    "tstat",
    "pvalue_yx",
    "pvalue_xy",
    "pvalue",
    "hedge_ratio",
    "intercept",
    "hedge_drift",
    "half_life",
    "reason",
)
"""Columns of :attr:`PairStability.periods` (``start`` and ``end`` follow ``end_index`` when
dates are given)."""


@dataclass(frozen=True)
class EngleGrangerSettings:
    """The settings of each part's Engle-Granger test."""

    trend: Trend
    autolag: Autolag
    maxlag: int | None
    min_obs: int

    def run(self, y: np.ndarray, x: np.ndarray) -> EngleGrangerResult:
        """:func:`~titan_lib.pairs.engle_granger` of ``y`` on ``x`` with these settings."""
        return engle_granger(y, x, self.trend, self.autolag, self.maxlag, min_obs=self.min_obs)


@dataclass(frozen=True)
class PairStability:
    """Engle-Granger tests of the parts of one pair's sample.

    Attributes
    ----------
    periods
        One row per part, columns :data:`PERIOD_COLUMNS`: ``period`` (1 = first),
        ``start_index`` and ``end_index`` (rows, inclusive), ``start`` and ``end`` (dates,
        when given), ``nobs``, ``tstat`` (``y`` on ``x``), ``pvalue_yx``, ``pvalue_xy``,
        ``pvalue`` (by ``direction``), ``hedge_ratio``, ``intercept``, ``hedge_drift``
        (relative to the full sample), ``half_life`` (bars) of the part's own spread, and
        ``reason`` when the part could not be tested (its p-value is then null and it counts
        as not significant).
    hedge_ratio, intercept
        The full-sample Engle-Granger (OLS ``y`` on ``x``) coefficients.
    alpha
        Significance level of :attr:`fraction_significant`.
    direction
        How each part's p-value combines the two directions.
    """

    periods: pl.DataFrame
    hedge_ratio: float
    intercept: float
    alpha: float
    direction: ScanDirection

    @property
    def n_periods(self) -> int:
        """Number of parts tested."""
        return self.periods.height

    @property
    def n_significant(self) -> int:
        """Parts with ``pvalue <= alpha``."""
        return int((self.periods.get_column("pvalue") <= self.alpha).sum())

    @property
    def fraction_significant(self) -> float:
        """Share of parts with ``pvalue <= alpha`` (untested parts count as not)."""
        return self.n_significant / self.n_periods

    @property
    def max_hedge_drift(self) -> float:
        """Largest ``|beta_part - beta_full| / |beta_full|`` over the tested parts.

        ``inf`` when the full-sample hedge ratio is 0 or no part could be fitted.
        """
        drift = self.periods.get_column("hedge_drift").drop_nulls()
        return float(drift.max()) if drift.len() else math.inf  # type: ignore[arg-type]

    @property
    def hedge_sign_stable(self) -> bool:
        """Whether every fitted part has a hedge ratio of the full sample's sign."""
        ratios = self.periods.get_column("hedge_ratio").drop_nulls().to_numpy()
        return bool(ratios.size) and bool((np.sign(ratios) == np.sign(self.hedge_ratio)).all())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and parts."""
        return {
            "n_periods": self.n_periods,
            "n_significant": self.n_significant,
            "fraction_significant": self.fraction_significant,
            "alpha": self.alpha,
            "max_hedge_drift": self.max_hedge_drift,
            "hedge_sign_stable": self.hedge_sign_stable,
            "hedge_ratio": self.hedge_ratio,
            "intercept": self.intercept,
            "direction": self.direction,
            "periods": self.periods.with_columns(cs.temporal().cast(pl.String))
            .fill_nan(None)
            .to_dicts(),
        }


def period_bounds(
    n: int, n_subperiods: int | None, window: int | None, step: int | None
) -> list[tuple[int, int]]:
    """``(first, last + 1)`` row bounds of the parts (see :func:`pair_stability`)."""
    if window is None:
        if step is not None:
            raise ParameterError("step needs a rolling window", {"parameter": "step"})
        k = 4 if n_subperiods is None else n_subperiods
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ParameterError(
                f"n_subperiods must be a whole number >= 1, got {n_subperiods!r}",
                {"parameter": "n_subperiods"},
            )
        edges = np.linspace(0, n, k + 1).astype(int)
        return [(int(lo), int(hi)) for lo, hi in itertools.pairwise(edges)]
    if n_subperiods is not None:
        raise ParameterError(
            "give either n_subperiods or a rolling window, not both",
            {"parameter": "n_subperiods"},
        )
    if isinstance(window, bool) or not isinstance(window, int) or not 2 <= window <= n:
        raise ParameterError(
            f"window must be a whole number between 2 and the {n} rows, got {window!r}",
            {"parameter": "window"},
        )
    stride = max(1, window // 2) if step is None else step
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ParameterError(
            f"step must be a whole number >= 1, got {step!r}", {"parameter": "step"}
        )
    return [(lo, lo + window) for lo in range(0, n - window + 1, stride)]


def pair_stability(
    y: ArrayLike,
    x: ArrayLike,
    *,
    dates: Sequence[Any] | pl.Series | None = None,
    n_subperiods: int | None = None,
    window: int | None = None,
    step: int | None = None,
    alpha: float = 0.05,
    direction: ScanDirection = "symmetric",
    trend: Trend = "c",
    autolag: Autolag = "aic",
    maxlag: int | None = None,
    min_obs: int = MIN_OBS,
) -> PairStability:
    """Engle-Granger tests and hedge ratios of consecutive or rolling parts of a pair.

    Parameters
    ----------
    y, x
        The two legs, aligned, finite (log prices for a log-price test, as the scan uses).
    dates
        The rows' dates (same length), to label each part with ``start`` and ``end``.
    n_subperiods
        Consecutive parts of (nearly) equal length; 4 when neither this nor ``window`` is
        given.
    window, step
        Rolling parts of ``window`` rows, one every ``step`` rows (default ``window // 2``).
    alpha
        Level at which a part counts as significant, in (0, 1).
    direction
        ``"symmetric"`` (the larger p-value of ``y`` on ``x`` and ``x`` on ``y``, as the
        scan) or ``"y_on_x"``.
    trend, autolag, maxlag
        Engle-Granger settings, as :func:`titan_lib.pairs.engle_granger`.
    min_obs
        A part with fewer rows is listed untested with a reason.

    Returns
    -------
    PairStability

    Raises
    ------
    DataValidationError
        Legs of different lengths, missing or infinite values, a constant leg, or a full
        sample shorter than ``min_obs``.
    ParameterError
        Bad settings (both ``n_subperiods`` and ``window``, ``alpha`` outside (0, 1), ...).
    """
    check_settings(trend, autolag, maxlag, min_obs)
    if direction not in SCAN_DIRECTIONS:
        raise ParameterError(
            f"direction must be 'symmetric' or 'y_on_x', got {direction!r}",
            {"parameter": "direction"},
        )
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ParameterError(f"alpha must lie in (0, 1), got {alpha!r}", {"parameter": "alpha"})
    ya, xa = aligned_legs(y, x, min_obs=min_obs)
    n = ya.shape[0]
    labels = None
    if dates is not None:
        labels = pl.Series("date", dates)
        if labels.len() != n:
            raise DataValidationError(
                f"dates must have one value per row: {labels.len()} dates for {n} rows",
                {"parameter": "dates"},
            )
    full = engle_granger(ya, xa, trend, autolag, maxlag, min_obs=min_obs)
    test = EngleGrangerSettings(trend, autolag, maxlag, min_obs)
    rows = [
        _part(ya[lo:hi], xa[lo:hi], period, lo, full.hedge_ratio, direction, test)
        for period, (lo, hi) in enumerate(period_bounds(n, n_subperiods, window, step), start=1)
    ]
    schema = {
        "period": pl.Int64,
        "start_index": pl.Int64,
        "end_index": pl.Int64,
        "nobs": pl.Int64,
        **{c: pl.Float64 for c in PERIOD_COLUMNS[4:-1]},
        "reason": pl.String,
    }
    periods = pl.DataFrame(rows, schema=schema)
    if labels is not None:
        periods = periods.with_columns(
            labels.gather(periods.get_column("start_index")).alias("start"),
            labels.gather(periods.get_column("end_index")).alias("end"),
        ).select(*PERIOD_COLUMNS[:3], "start", "end", *PERIOD_COLUMNS[3:])
    return PairStability(
        periods=periods,
        hedge_ratio=full.hedge_ratio,
        intercept=full.intercept,
        alpha=float(alpha),
        direction=direction,
    )


def _part(
    y: np.ndarray,
    x: np.ndarray,
    period: int,
    lo: int,
    full_hedge: float,
    direction: ScanDirection,
    test: EngleGrangerSettings,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "period": period,
        "start_index": lo,
        "end_index": lo + y.shape[0] - 1,
        "nobs": y.shape[0],
        **{c: None for c in PERIOD_COLUMNS[4:]},
    }
    try:
        forward = test.run(y, x)
        backward = test.run(x, y) if direction == "symmetric" else None
    except (DataValidationError, ParameterError) as exc:
        row["reason"] = exc.message
        return row
    spread = y - forward.intercept - forward.hedge_ratio * x
    if direction == "symmetric" and backward is not None:
        pvalue = max(forward.pvalue, backward.pvalue)
        row["pvalue_xy"] = backward.pvalue
    else:
        pvalue = forward.pvalue
    row.update(
        tstat=forward.tstat,
        pvalue_yx=forward.pvalue,
        pvalue=pvalue,
        hedge_ratio=forward.hedge_ratio,
        intercept=forward.intercept,
        hedge_drift=(
            abs(forward.hedge_ratio - full_hedge) / abs(full_hedge) if full_hedge else math.inf
        ),
        half_life=spread_stats(spread).half_life,
    )
    return row


__all__ = ["PERIOD_COLUMNS", "PairStability", "pair_stability", "period_bounds"]
