"""Regime detection: golden against statsmodels, history, ground truth, causality, errors."""

from __future__ import annotations

import math
import warnings
from datetime import date

import numpy as np
import polars as pl
import pytest
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from titan_lib.core.regime_gate import (
    MarkovRegimeModel,
    hamilton_step,
    markov_filter_step,
    realized_volatility_at,
)
from titan_lib.data import sample_prices
from titan_lib.exceptions import ConvergenceError, DataValidationError, ParameterError
from titan_lib.regimes import (
    fit_volatility_model,
    log_returns,
    markov_filter,
    markov_regimes,
    volatility_labels,
    volatility_regimes,
)
from titan_lib.regimes.kernels import hamilton_filter


@pytest.fixture(scope="module")
def sp500_returns() -> pl.DataFrame:
    return log_returns(sample_prices(["SP500"]), "SP500")


@pytest.fixture(scope="module")
def sp500_fit(sp500_returns):
    return markov_regimes(sp500_returns, k_regimes=2, fit="full-sample")


def share(frame: pl.DataFrame, start: date, end: date, expr: pl.Expr) -> float:
    window = frame.filter(pl.col("date").is_between(start, end))
    assert window.height > 15
    return float(window.select(expr.mean()).item())


def test_sp500_history_sanity(sp500_fit) -> None:
    f = sp500_fit.filtered
    high = pl.col("prob_1") > 0.5
    assert share(f, date(2008, 9, 1), date(2009, 3, 31), high) > 0.8
    assert share(f, date(2020, 3, 1), date(2020, 3, 31), high) > 0.8
    assert share(f, date(2017, 1, 1), date(2017, 12, 31), pl.col("prob_0") > 0.5) > 0.8
    model = sp500_fit.model
    assert model.variances[0] < model.variances[1]  # label 0 is the calm regime
    assert f.get_column("regime").null_count() == 0
    probs = f.select("prob_0", "prob_1").to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.array_equal(f.get_column("regime").to_numpy(), probs.argmax(axis=1))
    smoothed = sp500_fit.smoothed_probabilities_plot_only
    assert smoothed is not None and "regime" not in smoothed.columns


def test_filters_equal_statsmodels(sp500_returns, sp500_fit) -> None:
    """Independent fit in statsmodels (percent returns); both filters reproduce it."""
    r = sp500_returns.get_column("return").to_numpy()
    res = MarkovRegression(r * 100, k_regimes=2, trend="c", switching_variance=True).fit(disp=False)
    p = res.model.regime_transition_matrix(res.params)[:, :, 0]
    order = np.argsort(res.params[4:6])
    model = MarkovRegimeModel(
        means=tuple(res.params[2:4][order] / 100),
        variances=tuple(res.params[4:6][order] / 1e4),
        transition=tuple(tuple(row) for row in p.T[np.ix_(order, order)]),
        initial=tuple(res.model.initial_probabilities(res.params)[order]),
    )
    expected = res.filtered_marginal_probabilities[:, order]
    vectorised = markov_filter(sp500_returns, model).select("prob_0", "prob_1").to_numpy()
    assert np.max(np.abs(vectorised - expected)) < 1e-9
    probs, pure = None, []
    for value in r:
        probs = markov_filter_step(model, probs, float(value))
        pure.append(probs)
    assert np.max(np.abs(np.array(pure) - expected)) < 1e-9
    # our own fit lands on the same likelihood optimum
    ours = np.array(sp500_fit.model.variances)
    assert np.allclose(ours, model.variances, rtol=1e-3)
    ours_filtered = sp500_fit.filtered.select("prob_0", "prob_1").to_numpy()
    assert np.mean(ours_filtered.argmax(1) == expected.argmax(1)) > 0.999


@pytest.mark.parametrize("k", [2, 3, 4])
def test_compiled_and_pure_hamilton_step_agree_on_random_models(k) -> None:
    """The numba filter compiles the core step: both agree on random models and returns,
    the pure step run on tuples and lists as the Lambda runs it."""
    rng = np.random.default_rng(100 + k)
    for _ in range(5):
        transition = rng.dirichlet(np.ones(k), size=k)
        initial = rng.dirichlet(np.ones(k))
        means = rng.normal(0.0, 0.01, k)
        variances = np.sort(rng.uniform(1e-5, 1e-3, k))
        values = rng.normal(0.0, 0.02, 300)
        values[::37] *= 25.0  # far tails: the log-space step must not underflow
        compiled = hamilton_filter(values, means, variances, transition, initial)
        rows: list[list[float]] = []
        for t, value in enumerate(values):
            out = [0.0] * k
            previous = tuple(initial) if t == 0 else rows[-1]
            hamilton_step(
                previous, t > 0, float(value), tuple(means), tuple(variances),
                tuple(tuple(row) for row in transition), out,
            )  # fmt: skip
            rows.append(out)
        pure = np.array(rows)
        assert np.isfinite(pure).all()
        assert np.allclose(pure.sum(axis=1), 1.0, atol=1e-12)
        assert np.max(np.abs(compiled - pure)) < 1e-12


def simulate_regimes(n: int, seed: int, k: int = 2):
    rng = np.random.default_rng(seed)
    sigmas = np.array([0.006, 0.025, 0.05])[:k]
    stay = 0.985
    states = np.zeros(n, dtype=int)
    for t in range(1, n):
        states[t] = states[t - 1] if rng.uniform() < stay else rng.integers(k)
    returns = rng.normal(0.0, sigmas[states])
    dates = pl.date_range(
        date(2001, 1, 1), date(2001, 1, 1) + np.timedelta64(n - 1, "D"), eager=True
    )
    return pl.DataFrame({"date": dates, "return": returns}), states


@pytest.mark.parametrize("k", [2, 3])
def test_planted_regimes_are_recovered(k) -> None:
    returns, states = simulate_regimes(3000, seed=7 + k, k=k)
    fit = markov_regimes(returns, k_regimes=k, fit="full-sample")
    labels = fit.filtered.get_column("regime").to_numpy()
    assert np.mean(labels == states) > 0.85
    assert list(fit.model.variances) == sorted(fit.model.variances)


def perturbed(frame: pl.DataFrame, column: str, cut: date, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    noise = pl.Series(rng.normal(0.0, 0.03, frame.height))
    return frame.with_columns(
        pl.when(pl.col("date") > cut).then(pl.col(column) * 3.0 + noise).otherwise(pl.col(column))
    )


@pytest.mark.parametrize("mode", ["expanding", "rolling"])
def test_walk_forward_filtered_probabilities_have_no_look_ahead(mode) -> None:
    returns, _ = simulate_regimes(900, seed=21)
    kwargs = dict(walk_forward=mode, min_train=300, refit_every=200, window=400)
    base = markov_regimes(returns, **kwargs)
    assert base.smoothed_probabilities_plot_only is None
    assert base.filtered.get_column("regime").null_count() == 299
    assert base.fits.get_column("nobs").to_list()[:2] == [300, 500 if mode == "expanding" else 400]
    cut = returns.get_column("date")[650]
    changed = markov_regimes(perturbed(returns, "return", cut, 1), **kwargs)
    before = pl.col("date") <= cut
    assert base.filtered.filter(before).equals(changed.filtered.filter(before))
    assert not base.filtered.filter(~before).equals(changed.filtered.filter(~before))


def test_default_fit_is_walk_forward_and_has_no_look_ahead() -> None:
    """The default call is causal; the full-sample fit (opt-in) is not, and says so."""
    returns, _ = simulate_regimes(800, seed=23)
    base = markov_regimes(returns)
    assert base.smoothed_probabilities_plot_only is None
    assert base.fits.height == 3 and base.fits.get_column("nobs").to_list() == [504, 630, 756]
    assert base.filtered.get_column("regime").null_count() == 503
    cut = returns.get_column("date")[600]
    changed = markov_regimes(perturbed(returns, "return", cut, 3))
    before = pl.col("date") <= cut
    assert base.filtered.filter(before).equals(changed.filtered.filter(before))
    full = markov_regimes(returns, fit="full-sample")
    full_changed = markov_regimes(perturbed(returns, "return", cut, 3), fit="full-sample")
    probs = [
        f.filtered.filter(before).get_column("prob_1").to_numpy() for f in (full, full_changed)
    ]
    assert np.max(np.abs(probs[0] - probs[1])) > 1e-3


def test_frozen_markov_filter_has_no_look_ahead(sp500_returns, sp500_fit) -> None:
    cut = date(2008, 10, 15)
    base = markov_filter(sp500_returns, sp500_fit.model)
    changed = markov_filter(perturbed(sp500_returns, "return", cut, 2), sp500_fit.model)
    before = pl.col("date") <= cut
    assert base.filter(before).equals(changed.filter(before))
    assert not base.filter(~before).equals(changed.filter(~before))


def test_volatility_regimes_no_look_ahead_and_past_quantiles(sp500_returns) -> None:
    base = volatility_regimes(sp500_returns, window=21, quantiles=(0.5, 0.9), min_history=250)
    vol = base.get_column("vol").to_numpy()
    for i in (400, 3000, 8000):
        past = vol[:i][~np.isnan(vol[:i])]
        expected = np.quantile(past, [0.5, 0.9])
        got = [base.get_column("threshold_0")[i], base.get_column("threshold_1")[i]]
        assert np.allclose(got, expected, rtol=0, atol=1e-14)
        assert base.get_column("regime")[i] == int((vol[i] >= expected).sum())
    assert set(base.get_column("regime").drop_nulls().unique().to_list()) == {0, 1, 2}
    assert base.get_column("regime").null_count() == 20 + 250
    for cut in (date(2008, 9, 15), date(2019, 12, 31)):
        changed = volatility_regimes(
            perturbed(sp500_returns, "return", cut, 3),
            window=21,
            quantiles=(0.5, 0.9),
            min_history=250,
        )
        before = pl.col("date") <= cut
        assert base.filter(before).equals(changed.filter(before))
        assert not base.filter(~before).equals(changed.filter(~before))
    rolling = volatility_regimes(sp500_returns, window=21, lookback=500, min_history=250)
    i = 5000
    past = vol[:i][~np.isnan(vol[:i])][-500:]
    assert rolling.get_column("threshold_0")[i] == pytest.approx(np.quantile(past, 0.75), abs=1e-14)


def test_frozen_volatility_labels_match_pure_python(sp500_returns) -> None:
    fit_window = sp500_returns.filter(pl.col("date") <= date(2005, 12, 31))
    model = fit_volatility_model(fit_window, window=21, quantiles=(0.8,))
    assert model.thresholds[0] == pytest.approx(
        np.nanquantile(
            fit_window.get_column("return").rolling_std(21).to_numpy() * math.sqrt(252), 0.8
        )
    )
    labels = volatility_labels(sp500_returns, model)
    values = sp500_returns.get_column("return").to_list()
    vol = labels.get_column("vol").to_list()
    for i in range(0, len(values), 97):
        pure = realized_volatility_at(values, i, 21)
        if math.isnan(pure):
            assert vol[i] is None
        else:
            assert abs(pure - vol[i]) < 1e-12
    crisis = labels.filter(pl.col("date").is_between(date(2008, 10, 1), date(2008, 12, 31)))
    assert (crisis.get_column("regime") == 1).all()


def test_degenerate_and_bad_inputs() -> None:
    dates = pl.date_range(date(2020, 1, 1), date(2020, 12, 31), eager=True)
    flat = pl.DataFrame({"date": dates, "return": [0.0] * dates.len()})
    with pytest.raises(ConvergenceError, match="constant"):
        markov_regimes(flat, fit="full-sample")
    with pytest.raises(DataValidationError, match="min_train"):
        markov_regimes(flat)
    with pytest.raises(ParameterError, match="full-sample"):
        markov_regimes(flat, walk_forward=None)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="fit must be"):
        markov_regimes(flat, fit="in-sample")  # type: ignore[arg-type]
    with pytest.raises(DataValidationError, match="constant"):
        volatility_regimes(flat, min_history=100)
    holes = flat.with_columns(
        pl.when(pl.int_range(pl.len()) == 100).then(None).otherwise(0.01).alias("return")
    )
    with pytest.raises(DataValidationError, match=str(dates[100])):
        markov_regimes(holes)
    with pytest.raises(DataValidationError, match="at least"):
        markov_regimes(flat.head(40))
    with pytest.raises(ParameterError, match="k_regimes"):
        markov_regimes(flat, k_regimes=4)
    with pytest.raises(ParameterError, match="quantiles"):
        volatility_regimes(flat, quantiles=(1.5,))


def test_poor_fits_warn_rather_than_return_nan() -> None:
    rng = np.random.default_rng(5)
    dates = pl.date_range(date(2020, 1, 1), date(2021, 6, 30), eager=True)
    one_regime = pl.DataFrame({"date": dates, "return": rng.normal(0, 0.01, dates.len())})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = markov_regimes(one_regime, fit="full-sample")
        except ConvergenceError:
            return  # a clear error is acceptable too
    probs = fit.filtered.select("prob_0", "prob_1").to_numpy()
    assert np.isfinite(probs).all()
    assert any("regime" in str(w.message).lower() for w in caught)
