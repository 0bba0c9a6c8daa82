"""Seeded synthetic price universes with known cointegration ground truth.

Model (all in log prices, daily steps)::

    m_t      = m_{t-1} + mu_m + sigma_m * e_t                       market factor
    p_i,t    = p_i,0 + b_i * m_t + w_i,t,  w_i a random walk          free symbols
    y_t      = alpha + beta * x_t + s_t,   s_t = phi * s_{t-1} + u_t  planted pairs

``x`` of a planted pair is a free symbol; ``y`` is built from it, so ``(y, x)`` is
cointegrated with hedge ratio ``beta`` (log-price units) and spread AR(1) coefficient
``phi``: half-life ``-ln 2 / ln phi`` days. Every other pair is a pair of independent
random walks (plus the common factor), hence not cointegrated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from titan_lib.exceptions import ParameterError


@dataclass(frozen=True)
class PlantedPair:
    """Ground truth of one cointegrated pair: ``log y = alpha + beta log x + s``."""

    y: str
    x: str
    beta: float
    alpha: float
    phi: float
    spread_sigma: float

    @property
    def half_life(self) -> float:
        """Half-life of the spread in days, ``-ln 2 / ln phi``."""
        return -math.log(2.0) / math.log(self.phi)


@dataclass(frozen=True)
class SyntheticUniverse:
    """Prices (long polars frame: date, symbol, close) and the planted pairs."""

    prices: pl.DataFrame
    pairs: tuple[PlantedPair, ...]
    symbols: tuple[str, ...]

    def wide(self) -> pl.DataFrame:
        """The closes in wide form: a ``date`` column and one column per symbol."""
        return self.prices.pivot(on="symbol", index="date", values="close").sort("date")


def business_days(start: date, n: int) -> list[date]:
    """``n`` consecutive weekdays starting on or after ``start``."""
    out: list[date] = []
    d = start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def make_universe(
    n_symbols: int = 20,
    n_days: int = 2520,
    n_pairs: int = 3,
    *,
    seed: int = 0,
    phi: float | tuple[float, float] = (0.90, 0.98),
    beta: float | tuple[float, float] = (0.5, 1.5),
    spread_sigma: float = 0.01,
    market_sigma: float = 0.01,
    idio_sigma: float = 0.015,
    start: date = date(2010, 1, 4),
    prefix: str = "S",
) -> SyntheticUniverse:
    """Make a seeded universe of log-normal prices with planted cointegrated pairs.

    Parameters
    ----------
    n_symbols
        Number of symbols, including both legs of every planted pair.
    n_days
        Number of business days.
    n_pairs
        Number of planted cointegrated pairs (each uses two distinct symbols).
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same universe.
    phi, beta
        AR(1) coefficient of the spread and hedge ratio: a value, or a ``(low, high)``
        range drawn uniformly per pair.
    spread_sigma, market_sigma, idio_sigma
        Daily standard deviations (log units) of the spread innovation, the market factor
        and the idiosyncratic random walks.
    start
        First date; dates are consecutive weekdays.
    prefix
        Symbol names are ``f"{prefix}{i:04d}"``.

    Returns
    -------
    SyntheticUniverse
        Long prices ``(date, symbol, close)`` sorted by symbol then date, and the truth.
    """
    if n_symbols < 2 or n_days < 10:
        raise ParameterError("make_universe needs n_symbols >= 2 and n_days >= 10")
    if 2 * n_pairs > n_symbols:
        raise ParameterError(
            f"n_pairs={n_pairs} planted pairs need {2 * n_pairs} symbols; n_symbols={n_symbols}"
        )
    rng = np.random.default_rng(seed)
    symbols = tuple(f"{prefix}{i:04d}" for i in range(n_symbols))

    market = np.cumsum(rng.normal(0.0002, market_sigma, n_days))
    loadings = rng.uniform(0.5, 1.5, n_symbols)
    levels = rng.uniform(math.log(10.0), math.log(200.0), n_symbols)
    walks = np.cumsum(rng.normal(0.0, idio_sigma, (n_days, n_symbols)), axis=0)
    logp = levels + market[:, None] * loadings + walks

    def draw(value: float | tuple[float, float]) -> float:
        return float(rng.uniform(*value)) if isinstance(value, tuple) else float(value)

    planted: list[PlantedPair] = []
    for k in range(n_pairs):
        yi, xi = 2 * k, 2 * k + 1
        b, f = draw(beta), draw(phi)
        alpha = float(rng.uniform(-0.5, 0.5))
        u = rng.normal(0.0, spread_sigma, n_days)
        s = np.empty(n_days)
        s[0] = u[0] / math.sqrt(1.0 - f * f)
        for t in range(1, n_days):
            s[t] = f * s[t - 1] + u[t]
        logp[:, yi] = alpha + b * logp[:, xi] + s
        planted.append(PlantedPair(symbols[yi], symbols[xi], b, alpha, f, spread_sigma))

    dates = business_days(start, n_days)
    close = np.exp(logp)
    prices = pl.DataFrame(
        {
            "date": np.tile(np.array(dates, dtype="datetime64[D]"), n_symbols),
            "symbol": np.repeat(np.array(symbols), n_days),
            "close": close.T.reshape(-1),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    return SyntheticUniverse(prices=prices, pairs=tuple(planted), symbols=symbols)
