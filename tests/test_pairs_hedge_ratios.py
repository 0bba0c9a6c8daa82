"""Hedge ratios against independent computations; causality of the dynamic ones."""

from __future__ import annotations

from typing import get_args

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from statsmodels.regression.rolling import RollingOLS

from titan_lib.data import sample_prices
from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.pairs import (
    HEDGE_METHODS,
    HedgeMethod,
    fit_hedge_ratio,
    kalman_hedge_ratio,
    ols_hedge_ratio,
    rolling_ols_hedge_ratio,
    tls_hedge_ratio,
)


@pytest.fixture(scope="module")
def legs() -> tuple[np.ndarray, np.ndarray]:
    """Log closes of KO (y) and PEP (x), last 1500 days of the bundled sample."""
    wide = sample_prices(["KO", "PEP"]).pivot(on="symbol", index="date", values="close")
    wide = wide.sort("date").tail(1500)
    return np.log(wide["KO"].to_numpy()), np.log(wide["PEP"].to_numpy())


def test_ols_both_directions_equal_statsmodels(legs: tuple[np.ndarray, np.ndarray]) -> None:
    y, x = legs
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    ours = ols_hedge_ratio(y, x)
    assert ours.hedge_ratio == pytest.approx(fit.params[1], abs=1e-10)
    assert ours.intercept == pytest.approx(fit.params[0], abs=1e-10)
    back = sm.OLS(x, sm.add_constant(y)).fit()  # x = c + d y  =>  y = -c/d + x/d
    flipped = ols_hedge_ratio(pl.Series(y), pl.Series(x), direction="x_on_y")
    assert flipped.hedge_ratio == pytest.approx(1 / back.params[1], rel=1e-10)
    assert flipped.intercept == pytest.approx(-back.params[0] / back.params[1], rel=1e-10)
    assert flipped.hedge_ratio > ours.hedge_ratio  # the two OLS lines bracket the cloud


def test_tls_equals_the_principal_axis(legs: tuple[np.ndarray, np.ndarray]) -> None:
    y, x = legs
    centred = np.column_stack([x - x.mean(), y - y.mean()])
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    normal = vt[-1]  # the line's normal: smallest singular direction
    expected = -normal[0] / normal[1]
    tls = tls_hedge_ratio(y, x)
    assert tls.hedge_ratio == pytest.approx(expected, rel=1e-10)
    assert tls.intercept == pytest.approx(y.mean() - expected * x.mean(), rel=1e-10)
    # symmetric: the TLS line of x on y is the same line
    swapped = tls_hedge_ratio(x, y)
    assert swapped.hedge_ratio == pytest.approx(1 / tls.hedge_ratio, rel=1e-10)


def test_rolling_ols_equals_statsmodels_rolling(legs: tuple[np.ndarray, np.ndarray]) -> None:
    y, x = legs
    window = 120
    ours = rolling_ols_hedge_ratio(y, x, window)
    ref = RollingOLS(y, sm.add_constant(x), window=window).fit().params
    assert ours.height == y.shape[0]
    assert ours["hedge_ratio"][: window - 1].null_count() == window - 1
    got = ours.slice(window - 1)
    assert np.abs(got["hedge_ratio"].to_numpy() - ref[window - 1 :, 1]).max() < 1e-9
    assert np.abs(got["intercept"].to_numpy() - ref[window - 1 :, 0]).max() < 1e-9


def test_kalman_without_drift_is_ridge_least_squares(legs: tuple[np.ndarray, np.ndarray]) -> None:
    y, x = legs
    r, p0 = 2e-3, 0.5
    out = kalman_hedge_ratio(y, x, delta=0.0, obs_var=r, initial_var=p0)
    X = np.column_stack([x, np.ones_like(x)])
    for t in (0, 1, 10, 250, 1499):
        Xt, yt = X[: t + 1], y[: t + 1]
        theta = np.linalg.solve(Xt.T @ Xt / r + np.eye(2) / p0, Xt.T @ yt / r)
        assert out["hedge_ratio"][t] == pytest.approx(theta[0], rel=1e-8, abs=1e-10)
        assert out["intercept"][t] == pytest.approx(theta[1], rel=1e-8, abs=1e-10)


def test_kalman_equals_a_direct_matrix_loop(legs: tuple[np.ndarray, np.ndarray]) -> None:
    y, x = legs
    delta, r, p0 = 1e-4, 1e-3, 1.0
    out = kalman_hedge_ratio(y, x, delta=delta, obs_var=r, initial_var=p0)
    Q = delta / (1 - delta) * np.eye(2)
    m, P = np.zeros(2), p0 * np.eye(2)
    for t in range(y.shape[0]):
        P = P + Q
        h = np.array([x[t], 1.0])
        S = h @ P @ h + r
        gain = P @ h / S
        err = y[t] - h @ m
        m = m + gain * err
        P = (np.eye(2) - np.outer(gain, h)) @ P
        assert out["forecast_error"][t] == pytest.approx(err, rel=1e-9, abs=1e-12)
        assert out["forecast_var"][t] == pytest.approx(S, rel=1e-9)
        assert out["hedge_ratio_var"][t] == pytest.approx(P[0, 0], rel=1e-7, abs=1e-15)
    assert out["hedge_ratio"][-1] == pytest.approx(m[0], rel=1e-9)
    assert out["intercept"][-1] == pytest.approx(m[1], rel=1e-9)


@pytest.mark.parametrize(
    "method",
    [
        lambda y, x: rolling_ols_hedge_ratio(y, x, 60),
        lambda y, x: kalman_hedge_ratio(y, x),
    ],
    ids=["rolling_ols", "kalman"],
)
def test_dynamic_hedge_ratios_use_no_future_data(
    legs: tuple[np.ndarray, np.ndarray], method: object
) -> None:
    y, x = legs
    cut = 900
    base = method(y, x)  # type: ignore[operator]
    rng = np.random.default_rng(5)
    y2, x2 = y.copy(), x.copy()
    y2[cut:] += rng.normal(0, 0.3, y.shape[0] - cut)
    x2[cut:] *= 1.5
    moved = method(y2, x2)  # type: ignore[operator]
    assert base.slice(0, cut).equals(moved.slice(0, cut))
    assert not base.slice(cut).equals(moved.slice(cut))


def test_hedge_ratio_bad_input() -> None:
    with pytest.raises(DataValidationError, match="same length"):
        ols_hedge_ratio([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(DataValidationError, match="x is constant"):
        tls_hedge_ratio([1.0, 2.0, 4.0], [3.0, 3.0, 3.0])
    with pytest.raises(DataValidationError, match="missing or infinite"):
        ols_hedge_ratio([1.0, np.nan, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0])
    with pytest.raises(DataValidationError, match="too short"):
        rolling_ols_hedge_ratio(np.arange(10.0), np.sin(np.arange(10.0)), 20)
    with pytest.raises(ParameterError, match="window"):
        rolling_ols_hedge_ratio(np.arange(10.0), np.sin(np.arange(10.0)), 1)
    with pytest.raises(ParameterError, match="delta"):
        kalman_hedge_ratio(np.arange(10.0), np.sin(np.arange(10.0)), delta=1.0)
    with pytest.raises(ParameterError, match="direction"):
        ols_hedge_ratio(np.arange(10.0), np.sin(np.arange(10.0)), direction="sideways")  # type: ignore[arg-type]


def test_every_named_hedge_method_is_registered_and_dispatched(
    legs: tuple[np.ndarray, np.ndarray],
) -> None:
    """The ``HedgeMethod`` names and ``HEDGE_METHODS`` agree; dispatch calls the estimator."""
    y, x = legs
    assert set(HEDGE_METHODS) == set(get_args(HedgeMethod))
    assert fit_hedge_ratio(y, x) == ols_hedge_ratio(y, x)
    assert fit_hedge_ratio(y, x, "tls") == tls_hedge_ratio(y, x)
    with pytest.raises(ParameterError, match="hedge_method must be one of ols, tls"):
        fit_hedge_ratio(y, x, "lasso")  # type: ignore[arg-type]
