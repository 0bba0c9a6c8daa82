"""Markov-switching regimes of returns (statsmodels ``MarkovRegression``).

Model: ``r_t = mu[s_t] + e_t``, ``e_t ~ N(0, sigma2[s_t])`` with a hidden Markov regime
``s_t`` in ``0..k-1``; mean and variance switch. Regimes are ordered by variance so that
label 0 is the calmest in every fit.

Trading uses FILTERED probabilities ``P(s_t | r_1..r_t)``: the Hamilton filter runs forward
only. Smoothed probabilities ``P(s_t | all data)`` look ahead and are returned only for
plots, under ``smoothed_probabilities_plot_only``.

Parameters are estimated on the returns divided by their standard deviation (for a
well-scaled optimisation) and stored back in the units of the input.

Fits (``fit``):

``"walk-forward"`` (default)
    Causal: refit every ``refit_every`` rows on the returns up to that row (all of them with
    ``walk_forward="expanding"``, the last ``window`` with ``"rolling"``). Rows from one refit
    to the next are filtered with that fit's parameters, the filter starting at the first
    row of its training window. Rows before the first fit (``min_train``) have null
    probabilities and labels. Everything reported at row ``t`` depends on returns up to
    ``t`` only.
``"full-sample"``
    One fit on all returns (opt-in, for research). Filtered probabilities are causal given
    the parameters, but the parameters come from the whole sample, so a row's probabilities
    change when later returns change: never trade or backtest them. Use the walk-forward fit
    or a model frozen at fit time (:func:`markov_filter`) instead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.core.regime_gate import MarkovRegimeModel
from titan_lib.exceptions import ConvergenceError, DataValidationError, ParameterError
from titan_lib.regimes.kernels import hamilton_filter
from titan_lib.regimes.returns import return_values

WalkForward = Literal["expanding", "rolling"]
MarkovFit = Literal["walk-forward", "full-sample"]
MARKOV_FITS: tuple[str, ...] = ("walk-forward", "full-sample")


class RegimeFitWarning(UserWarning):
    """A regime fit converged poorly or its regimes are barely distinguishable."""


@dataclass(frozen=True)
class MarkovRegimes:
    """Result of :func:`markov_regimes`.

    Attributes
    ----------
    filtered
        One row per input date: ``date``, ``prob_0 .. prob_{k-1}`` (filtered) and
        ``regime`` (argmax, Int64). Null before the first walk-forward fit.
    model
        The last fit, frozen (feed it to a gate or to :func:`markov_filter`).
    fits
        One row per fit: ``fit_end``, ``train_start``, ``nobs``, ``converged``, ``loglike``.
    smoothed_probabilities_plot_only
        Smoothed probabilities of a single fit, for plots only (they use future data);
        ``None`` in walk-forward mode.
    """

    filtered: pl.DataFrame
    model: MarkovRegimeModel
    fits: pl.DataFrame
    smoothed_probabilities_plot_only: pl.DataFrame | None

    @property
    def labels(self) -> pl.Series:
        """Filtered regime labels (0 = lowest volatility)."""
        return self.filtered.get_column("regime")

    @property
    def probabilities(self) -> pl.DataFrame:
        """``date`` and the filtered probabilities."""
        return self.filtered.drop("regime")


@dataclass(frozen=True)
class _Fit:
    model: MarkovRegimeModel
    order: np.ndarray
    params: np.ndarray
    converged: bool
    loglike: float
    result: Any


def _fit(values: np.ndarray, k: int, switching_mean: bool, start: np.ndarray | None) -> _Fit:
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    scale = float(np.std(values))
    if not scale > 0.0:
        raise ConvergenceError(
            "returns are constant: no regime can be fitted", {"nobs": values.size}
        )
    scaled = values / scale
    model = MarkovRegression(
        scaled, k_regimes=k, trend="c", switching_trend=switching_mean, switching_variance=True
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(disp=False, start_params=start)
        converged = bool(result.mle_retvals.get("converged", False))
        if not converged or not np.all(np.isfinite(result.params)):
            result = model.fit(disp=False, search_reps=20)
            converged = bool(result.mle_retvals.get("converged", False))
    params = np.asarray(result.params, dtype=np.float64)
    if not np.all(np.isfinite(params)):
        raise ConvergenceError(
            f"Markov regime fit on {values.size} returns gave non-finite parameters",
            {"nobs": int(values.size)},
        )
    slices = model.parameters
    const = params[slices["exog"]]
    means = (const if switching_mean else np.repeat(const, k)) * scale
    variances = params[slices["variance"]] * scale * scale
    column_stochastic = model.regime_transition_matrix(params)[:, :, 0]
    initial = np.asarray(model.initial_probabilities(params), dtype=np.float64)
    if np.any(variances <= 0.0) or not np.all(np.isfinite(column_stochastic)):
        raise ConvergenceError(
            "Markov regime fit is degenerate (a variance <= 0 or invalid transitions)",
            {"nobs": int(values.size)},
        )
    order = np.argsort(variances, kind="stable")
    transition = column_stochastic.T[np.ix_(order, order)]
    transition = transition / transition.sum(axis=1, keepdims=True)
    initial = initial[order] / initial[order].sum()
    frozen = MarkovRegimeModel(
        means=tuple(float(v) for v in means[order]),
        variances=tuple(float(v) for v in variances[order]),
        transition=tuple(tuple(float(v) for v in row) for row in transition),
        initial=tuple(float(v) for v in initial),
    )
    if not converged:
        warnings.warn(
            f"Markov regime fit on {values.size} returns did not converge; parameters kept "
            "from the best of 20 random starts",
            RegimeFitWarning,
            stacklevel=3,
        )
    # One Gaussian for all returns vs k regimes: warn when AIC does not prefer the regimes.
    single_llf = -0.5 * scaled.size * (np.log(2.0 * np.pi * np.var(scaled)) + 1.0)
    extra = k * (k - 1) + (k - 1) * (2 if switching_mean else 1)
    if 2.0 * (float(result.llf) - single_llf) < 2.0 * extra:
        warnings.warn(
            f"a {k}-regime model fits no better than one regime (AIC): the regimes found in "
            f"{values.size} returns are not supported by the data; labels are unreliable",
            RegimeFitWarning,
            stacklevel=3,
        )
    return _Fit(frozen, order, params, converged, float(result.llf), result)


def _filter(values: np.ndarray, model: MarkovRegimeModel) -> np.ndarray:
    return hamilton_filter(
        np.ascontiguousarray(values, dtype=np.float64),
        np.asarray(model.means),
        np.asarray(model.variances),
        np.asarray(model.transition),
        np.asarray(model.initial),
    )


def _frame(dates: pl.Series, probs: np.ndarray, defined: np.ndarray) -> pl.DataFrame:
    k = probs.shape[1]
    labels = pl.Series("regime", np.argmax(probs, axis=1), dtype=pl.Int64)
    cols: dict[str, Any] = {"date": dates}
    for j in range(k):
        cols[f"prob_{j}"] = pl.Series(probs[:, j]).scatter(np.flatnonzero(~defined), None)
    cols["regime"] = labels.scatter(np.flatnonzero(~defined), None)
    return pl.DataFrame(cols)


def markov_regimes(
    returns: pl.DataFrame,
    k_regimes: int = 2,
    *,
    fit: MarkovFit = "walk-forward",
    walk_forward: WalkForward = "expanding",
    min_train: int = 504,
    refit_every: int = 126,
    window: int | None = None,
    switching_mean: bool = True,
    column: str | None = None,
) -> MarkovRegimes:
    """Fit a Markov-switching model and return filtered regime probabilities and labels.

    Parameters
    ----------
    returns
        ``date`` plus one return column (or name it with ``column``), sorted by date, e.g.
        :func:`titan_lib.regimes.log_returns` of ``SP500``, or spread changes.
    k_regimes
        2 or 3.
    fit
        ``"walk-forward"`` (default, causal) or ``"full-sample"`` (one fit on all rows,
        look-ahead in the parameters; module docstring).
    walk_forward
        Walk-forward training windows: ``"expanding"`` (default) or ``"rolling"``.
    min_train, refit_every, window
        Walk-forward: rows before the first fit, rows between refits (126: about half a
        year of trading days), and the rolling training window (defaults to
        ``min_train``).
    switching_mean
        Let the mean switch too (the variance always switches).

    Raises
    ------
    DataValidationError
        Missing/non-finite returns or too few rows.
    ConvergenceError
        Constant returns or a degenerate fit. Poor convergence warns
        (:class:`RegimeFitWarning`) instead.
    """
    if k_regimes not in (2, 3):
        raise ParameterError(f"k_regimes must be 2 or 3, got {k_regimes}")
    if fit not in MARKOV_FITS:
        raise ParameterError(f"fit must be 'walk-forward' or 'full-sample', got {fit!r}")
    if walk_forward not in ("expanding", "rolling"):
        hint = " (a single fit on all rows is fit='full-sample')" if walk_forward is None else ""
        raise ParameterError(
            f"walk_forward must be 'expanding' or 'rolling', got {walk_forward!r}{hint}"
        )
    values_s, _ = return_values(returns, column)
    values = values_s.to_numpy().astype(np.float64)
    dates = returns.get_column("date")
    n = values.size
    minimum = 50 * k_regimes
    if n < minimum:
        raise DataValidationError(
            f"Markov regimes with k={k_regimes} need at least {minimum} returns, got {n}",
            {"rows": n},
        )
    if fit == "full-sample":
        single = _fit(values, k_regimes, switching_mean, None)
        filtered = np.asarray(single.result.filtered_marginal_probabilities)[:, single.order]
        smoothed = np.asarray(single.result.smoothed_marginal_probabilities)[:, single.order]
        everywhere = np.ones(n, dtype=bool)
        fits = pl.DataFrame(
            {
                "fit_end": [dates[-1]],
                "train_start": [dates[0]],
                "nobs": [n],
                "converged": [single.converged],
                "loglike": [single.loglike],
            }
        )
        return MarkovRegimes(
            filtered=_frame(dates, filtered, everywhere),
            model=single.model,
            fits=fits,
            smoothed_probabilities_plot_only=_frame(dates, smoothed, everywhere).drop("regime"),
        )

    train = window if window is not None else min_train
    if min_train < minimum or refit_every < 1 or train < minimum:
        raise ParameterError(
            f"walk-forward needs min_train and window >= {minimum} and refit_every >= 1"
        )
    if n <= min_train:
        raise DataValidationError(
            f"walk-forward needs more than min_train={min_train} returns, got {n}", {"rows": n}
        )
    probs = np.full((n, k_regimes), np.nan)
    defined = np.zeros(n, dtype=bool)
    rows: list[dict[str, Any]] = []
    start_params: np.ndarray | None = None
    current: _Fit | None = None
    for end in range(min_train - 1, n, refit_every):
        first = 0 if walk_forward == "expanding" else max(0, end + 1 - train)
        try:
            current = _fit(values[first : end + 1], k_regimes, switching_mean, start_params)
            start_params = current.params
        except ConvergenceError as exc:
            if current is None:
                raise
            warnings.warn(
                f"refit at {dates[end]} failed ({exc.message}); keeping the previous fit",
                RegimeFitWarning,
                stacklevel=2,
            )
        assert current is not None
        stop = min(n, end + refit_every)
        segment = _filter(values[first:stop], current.model)
        probs[end:stop] = segment[end - first :]
        defined[end:stop] = True
        rows.append(
            {
                "fit_end": dates[end],
                "train_start": dates[first],
                "nobs": end + 1 - first,
                "converged": current.converged,
                "loglike": current.loglike,
            }
        )
    assert current is not None
    return MarkovRegimes(
        filtered=_frame(dates, np.nan_to_num(probs), defined),
        model=current.model,
        fits=pl.DataFrame(rows),
        smoothed_probabilities_plot_only=None,
    )


def fit_markov_model(
    returns: pl.DataFrame,
    k_regimes: int = 2,
    *,
    switching_mean: bool = True,
    column: str | None = None,
) -> MarkovRegimeModel:
    """Fit once on all of ``returns`` and freeze the parameters.

    Give it the returns up to the fit end only: the frozen model is then free of look-ahead
    for every later date (a served gate filters new returns with it).
    """
    return markov_regimes(
        returns, k_regimes, fit="full-sample", switching_mean=switching_mean, column=column
    ).model


def markov_filter(
    returns: pl.DataFrame, model: MarkovRegimeModel, *, column: str | None = None
) -> pl.DataFrame:
    """Filtered probabilities and labels of a frozen model: ``date, prob_*, regime``.

    The filter starts from ``model.initial`` at the first finite return; rows with a NaN or
    null return (e.g. a pair's first bar) are skipped and get null. This is what
    :mod:`titan_lib.core.regime_gate` computes in production.
    """
    if "date" not in returns.columns:
        raise DataValidationError("returns need a 'date' column")
    name = column or next(c for c in returns.columns if c != "date")
    values = returns.get_column(name).cast(pl.Float64).fill_null(float("nan")).to_numpy()
    finite = np.isfinite(values)
    probs = np.zeros((values.size, model.k_regimes))
    if finite.any():
        first = int(np.argmax(finite))
        if not finite[first:].all():
            raise DataValidationError("returns have a gap (NaN) after the first finite value")
        probs[first:] = _filter(values[first:], model)
    return _frame(returns.get_column("date"), probs, finite)
