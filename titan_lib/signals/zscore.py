"""Vectorised z-scores of a spread; conventions in :mod:`titan_lib.core.zscore`."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import polars as pl

from titan_lib.core.zscore import MIN_STD_RELATIVE, ZScoreSpec
from titan_lib.exceptions import DataValidationError
from titan_lib.signals.kernel import ewma_zscores


def zscores(spread: pl.Series, spec: ZScoreSpec, dates: pl.Series | None = None) -> pl.Series:
    """Z-score of each bar of ``spread`` (Float64, NaN where undefined).

    Parameters
    ----------
    spread
        The spread, one value per bar, oldest first, no nulls.
    spec
        Method and parameters. An EWMA spec with a stored state continues the recursion
        from it: bars up to ``state.as_of`` get NaN, and ``dates`` (required then) must
        contain ``state.as_of`` whenever later bars exist.
    dates
        The bars' dates (``pl.Date``), needed only for an EWMA state.
    """
    values = spread.cast(pl.Float64)
    if values.null_count():
        raise DataValidationError("the spread has missing values; align the legs first")
    if spec.method == "rolling":
        window = int(spec.window or 0)
        mean = values.rolling_mean(window)
        std = values.rolling_std(window, ddof=1)
        return _from_moments(values, mean, std)
    if spec.method == "fixed":
        n = values.len()
        return _from_moments(
            values,
            pl.Series([spec.mean] * n, dtype=pl.Float64),
            pl.Series([spec.std] * n, dtype=pl.Float64),
        )
    skip, mean0, var0, count0 = 0, 0.0, 0.0, 0
    if spec.state is not None:
        if dates is None:
            raise DataValidationError("an EWMA z-score with a stored state needs the dates")
        as_of = date.fromisoformat(spec.state.as_of)
        skip = int((dates <= as_of).sum())
        if skip < dates.len() and (skip == 0 or dates[skip - 1] != as_of):
            raise DataValidationError(
                f"prices must include {spec.state.as_of}, the date of the EWMA state to "
                f"continue from; they cover {dates[0]}..{dates[-1]}",
                {"date": spec.state.as_of},
            )
        mean0, var0, count0 = spec.state.mean, spec.state.var, spec.state.count
    z = ewma_zscores(
        values.to_numpy(), spec.alpha, int(spec.min_periods or 1), skip, mean0, var0, count0
    )
    return pl.Series("z", z, dtype=pl.Float64)


def _from_moments(values: pl.Series, mean: pl.Series, std: pl.Series) -> pl.Series:
    """``(values - mean) / std``; NaN where std is missing or degenerate."""
    frame = pl.DataFrame({"v": values, "m": mean, "s": std})
    ok = pl.col("s") > MIN_STD_RELATIVE * pl.max_horizontal(pl.lit(1.0), pl.col("m").abs())
    z = frame.select(
        pl.when(ok).then((pl.col("v") - pl.col("m")) / pl.col("s")).otherwise(math.nan).alias("z")
    ).get_column("z")
    return z.fill_null(math.nan).cast(pl.Float64)


def as_numpy(z: pl.Series) -> np.ndarray:
    """Contiguous float64 array of a z-score series for the kernels."""
    return np.ascontiguousarray(z.fill_null(math.nan).to_numpy(), dtype=np.float64)
