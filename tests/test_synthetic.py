"""The synthetic universe: seeded, and its planted pairs have the stated ground truth."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from titan_lib.data.synthetic import make_universe
from titan_lib.exceptions import ParameterError


def test_same_seed_same_universe() -> None:
    a = make_universe(6, 300, 2, seed=11)
    b = make_universe(6, 300, 2, seed=11)
    c = make_universe(6, 300, 2, seed=12)
    assert a.prices.equals(b.prices) and a.pairs == b.pairs
    assert not a.prices.equals(c.prices)


def test_shape_and_order() -> None:
    u = make_universe(5, 250, 1, seed=3)
    assert u.prices.height == 5 * 250
    assert u.prices.columns == ["date", "symbol", "close"]
    assert u.prices.get_column("symbol").is_sorted()
    assert u.wide().shape == (250, 6)
    assert (u.prices.get_column("close") > 0).all()


def test_planted_pair_recovers_beta_and_phi() -> None:
    u = make_universe(4, 20_000, 1, seed=5, phi=0.9, beta=1.3, spread_sigma=0.01)
    pair = u.pairs[0]
    wide = u.wide()
    y = np.log(wide.get_column(pair.y).to_numpy())
    x = np.log(wide.get_column(pair.x).to_numpy())
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    assert fit.params[1] == pytest.approx(pair.beta, abs=0.01)
    spread = y - pair.alpha - pair.beta * x
    phi_hat = sm.OLS(spread[1:], spread[:-1]).fit().params[0]
    assert phi_hat == pytest.approx(0.9, abs=0.01)
    assert pair.half_life == pytest.approx(-np.log(2) / np.log(0.9))


def test_rejects_impossible_requests() -> None:
    with pytest.raises(ParameterError, match="need 6 symbols"):
        make_universe(4, 100, 3)
    with pytest.raises(ParameterError):
        make_universe(1, 100, 0)


def test_dates_are_weekdays() -> None:
    u = make_universe(2, 30, 0, seed=1)
    weekdays = u.prices.select(pl.col("date").dt.weekday()).to_series()
    assert weekdays.max() <= 5
