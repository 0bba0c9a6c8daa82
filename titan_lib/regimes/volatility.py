"""Volatility regimes: realised volatility classified by quantiles of its own past.

Realised volatility at ``t`` is the sample standard deviation (``ddof=1``) of the last
``window`` returns (``t`` included), annualised by ``sqrt(252)``. Its regime is the number of
thresholds it reaches (``vol >= threshold``): label 0 is the calmest of
``len(quantiles) + 1`` regimes.

:func:`volatility_regimes` (research) estimates the thresholds at each date from the
realised volatility of earlier dates only (expanding, or the last ``lookback`` values).
:func:`fit_volatility_model` freezes thresholds from a fitted window for a served gate, and
:func:`volatility_labels` applies frozen thresholds, exactly as
:mod:`titan_lib.core.regime_gate` does in production.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from titan_lib.core.regime_gate import ANNUALIZATION_DAYS, VolatilityRegimeModel
from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.regimes.kernels import past_quantiles
from titan_lib.regimes.returns import return_values


def realized_volatility(values: pl.Series, window: int) -> pl.Series:
    """Annualised rolling sample standard deviation of ``values`` (NaN/null until full)."""
    return (values.rolling_std(window, ddof=1) * math.sqrt(ANNUALIZATION_DAYS)).alias("vol")


def _check_quantiles(quantiles: Sequence[float]) -> np.ndarray:
    q = np.asarray(sorted(float(v) for v in quantiles), dtype=np.float64)
    if q.size == 0 or np.any((q <= 0.0) | (q >= 1.0)) or np.unique(q).size != q.size:
        raise ParameterError(
            f"quantiles must be distinct values strictly between 0 and 1, got {list(quantiles)}"
        )
    return q


def _checked(returns: pl.DataFrame, column: str | None, window: int, needed: int) -> pl.Series:
    if window < 2:
        raise ParameterError(f"volatility window must be >= 2 returns, got {window}")
    values, name = return_values(returns, column)
    if values.len() < needed:
        raise DataValidationError(
            f"volatility regimes need at least {needed} returns, got {values.len()}",
            {"column": name, "rows": values.len()},
        )
    if float(np.ptp(values.to_numpy())) == 0.0:
        raise DataValidationError(
            f"returns column {name!r} is constant: volatility regimes are undefined",
            {"column": name},
        )
    return values


def volatility_regimes(
    returns: pl.DataFrame,
    *,
    window: int = 21,
    quantiles: Sequence[float] = (0.75,),
    min_history: int = 252,
    lookback: int | None = None,
    column: str | None = None,
) -> pl.DataFrame:
    """Classify each date's realised volatility by quantiles of past volatility.

    Parameters
    ----------
    returns
        ``date`` plus one return column (or name it with ``column``), sorted by date.
    window
        Returns in the realised-volatility window.
    quantiles
        Threshold quantiles, e.g. ``(0.75,)`` for calm/stressed, ``(1/3, 2/3)`` for three.
    min_history
        Past realised-volatility values needed before a date gets a label.
    lookback
        Use only the last ``lookback`` past values (``None``: all past values).

    Returns
    -------
    pl.DataFrame
        ``date``, ``vol`` (annualised), ``threshold_<i>`` (from dates before this one only)
        and ``regime`` (Int64; null while the window or the history is too short).
    """
    q = _check_quantiles(quantiles)
    if min_history < 1:
        raise ParameterError(f"min_history must be >= 1, got {min_history}")
    if lookback is not None and lookback < min_history:
        raise ParameterError(f"lookback {lookback} must be >= min_history {min_history}")
    values = _checked(returns, column, window, window + min_history)
    vol = realized_volatility(values, window).fill_null(float("nan"))
    thresholds = past_quantiles(vol.to_numpy(), q, min_history, lookback or 0)
    vol_np = vol.to_numpy()
    defined = ~np.isnan(thresholds[:, 0]) & ~np.isnan(vol_np)
    labels = (vol_np[:, None] >= thresholds).sum(axis=1)
    out = pl.DataFrame(
        {
            "date": returns.get_column("date"),
            "vol": vol_np,
            **{f"threshold_{i}": thresholds[:, i] for i in range(q.size)},
            "regime": pl.Series(labels, dtype=pl.Int64).scatter(np.flatnonzero(~defined), None),
        }
    )
    return out.with_columns(pl.col("vol").fill_nan(None)).with_columns(
        [pl.col(f"threshold_{i}").fill_nan(None) for i in range(q.size)]
    )


def fit_volatility_model(
    returns: pl.DataFrame,
    *,
    window: int = 21,
    quantiles: Sequence[float] = (0.75,),
    column: str | None = None,
) -> VolatilityRegimeModel:
    """Freeze thresholds: the ``quantiles`` of realised volatility over all of ``returns``.

    Use returns up to the model's fit end only; the thresholds are then fixed in production.
    """
    q = _check_quantiles(quantiles)
    values = _checked(returns, column, window, window + 1)
    vol = realized_volatility(values, window).drop_nulls().drop_nans().to_numpy()
    thresholds = np.quantile(vol, q)
    return VolatilityRegimeModel(
        window=window,
        thresholds=tuple(float(t) for t in thresholds),
        quantiles=tuple(float(v) for v in q),
    )


def volatility_labels(
    returns: pl.DataFrame, model: VolatilityRegimeModel, *, column: str | None = None
) -> pl.DataFrame:
    """Regimes from frozen thresholds: ``date``, ``vol``, ``regime`` (null until full).

    Returns may contain NaN (e.g. the first bar of a pair, which has no return); windows
    touching a NaN have no volatility and no regime.
    """
    if "date" not in returns.columns:
        raise DataValidationError("returns need a 'date' column")
    name = column or next(c for c in returns.columns if c != "date")
    values = returns.get_column(name).cast(pl.Float64).fill_null(float("nan"))
    vol = realized_volatility(values, model.window).fill_null(float("nan")).to_numpy()
    labels = (vol[:, None] >= np.asarray(model.thresholds)[None, :]).sum(axis=1)
    regime = pl.Series("regime", labels, dtype=pl.Int64).scatter(
        np.flatnonzero(np.isnan(vol)), None
    )
    return pl.DataFrame(
        {"date": returns.get_column("date"), "vol": pl.Series(vol).fill_nan(None), "regime": regime}
    )
