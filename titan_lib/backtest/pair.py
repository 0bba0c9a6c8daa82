"""Backtest of one pair: two legs, hedge-ratio weighted, in one cash-sharing group.

Out of sample by construction: unless the caller gives a hedge ratio, :func:`backtest_pair`
estimates it (OLS of ``f(y)`` on ``f(x)`` with an intercept, ``f = ln`` for log hedges) on
the ``formation`` bars strictly before the trading window, and trades only after them. A
caller-given hedge is labelled ``"in-sample"`` unless ``fitted_through`` (the last date its
estimate saw) precedes the first traded bar.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.backtest.book import PairSpec, run_portfolio
from titan_lib.backtest.costs import Costs
from titan_lib.backtest.legs import FillPrice
from titan_lib.backtest.result import BacktestResult
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.settings import (
    DEFAULT_INIT_CASH,
    BacktestSettings,
    DateLike,
    Engine,
    settings_dict,
)
from titan_lib.backtest.sizing import HedgeUnits
from titan_lib.core.zscore import ZScoreSpec
from titan_lib.data.price_store import coerce_date
from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.pairs.hedge_ratios import (
    HedgeMethod,
    HedgeRatio,
    fit_hedge_ratio,
)

Sample = Literal["out-of-sample", "in-sample"]
SAMPLES: tuple[str, ...] = ("out-of-sample", "in-sample")
DEFAULT_FORMATION = 252
"""Bars of the formation window that estimates the hedge before trading (one year)."""


def formation_hedge(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    formation: int = DEFAULT_FORMATION,
    start: DateLike = None,
    hedge: HedgeUnits = "log",
    method: HedgeMethod = "ols",
) -> dict[str, Any]:
    """Hedge ratio and intercept estimated on the bars strictly before the trading window.

    Parameters
    ----------
    prices
        Long prices (``date``, ``symbol``, ``close``).
    y, x
        Leg symbols.
    formation
        Bars in the formation window (>= 20).
    start
        First trading date. ``None``: the bar right after the first ``formation`` bars.
    hedge
        ``"log"`` fits ``ln y`` on ``ln x``, ``"level"`` the prices.
    method
        The estimator, a name of :data:`~titan_lib.pairs.hedge_ratios.HEDGE_METHODS`.

    Returns
    -------
    dict
        ``beta``, ``alpha``, ``formation_start``, ``formation_end`` (ISO dates, the window
        the estimate saw), ``nobs``, ``trading_start`` (ISO, the first bar after it) and
        ``method`` (``"<method>-formation"``, e.g. ``"ols-formation"``).

    Raises
    ------
    ParameterError
        ``formation`` is not a whole number >= 20, or an unknown ``method``.
    DataValidationError
        Fewer than ``formation`` bars before ``start`` or no bar after the window.
    """
    from titan_lib.signals.frame import pair_prices

    check_formation(formation)
    legs = pair_prices(prices, [y, x])
    dates: list[date] = legs.get_column("date").to_list()
    first = coerce_date(start, "start")
    cut = formation if first is None else bisect.bisect_left(dates, first)
    if cut < formation or cut >= len(dates):
        where = "the data's start" if first is None else f"{first}"
        raise DataValidationError(
            f"{y}/{x}: the formation window needs {formation} bars before {where} and at "
            f"least one bar after it; the data have {cut if cut < len(dates) else len(dates)} "
            f"bars before and {max(0, len(dates) - cut)} from it",
            {"formation": formation, "start": str(first)},
        )
    fit = legs_hedge(legs.slice(cut - formation, formation), y, x, hedge=hedge, method=method)
    return {
        "beta": float(fit.hedge_ratio),
        "alpha": float(fit.intercept),
        "formation_start": dates[cut - formation].isoformat(),
        "formation_end": dates[cut - 1].isoformat(),
        "nobs": formation,
        "trading_start": dates[cut].isoformat(),
        "method": f"{method}-formation",
    }


def legs_hedge(
    legs: pl.DataFrame, y: str, x: str, *, hedge: HedgeUnits = "log", method: HedgeMethod = "ols"
) -> HedgeRatio:
    """The static hedge of ``y`` on ``x`` fitted by ``method`` on every row of ``legs``.

    ``legs`` is wide (a column of closes per symbol, rows on common dates); ``hedge="log"``
    fits log prices, ``"level"`` the prices.
    """
    ys, xs = legs.get_column(y).to_numpy(), legs.get_column(x).to_numpy()
    if hedge == "log":
        ys, xs = np.log(ys), np.log(xs)
    return fit_hedge_ratio(ys, xs, method)


@dataclass(frozen=True)
class HedgeFit:
    """Where the hedge of a single-pair backtest comes from.

    Parameters
    ----------
    beta, alpha
        Hedge ratio and intercept of the spread. ``None`` (default): both estimated on
        the ``formation`` bars before the trading window (:func:`formation_hedge`).
    formation
        Bars of the formation window (when ``beta`` is ``None``), a whole number >= 20.
    fitted_through
        Last date the data behind a given ``beta`` reached; the run is out-of-sample only
        when it is before the first traded bar.

    Raises
    ------
    ParameterError
        ``alpha`` without ``beta``, a bad ``formation`` or date, or a non-finite hedge.
    """

    beta: float | None = None
    alpha: float | None = None
    formation: int = DEFAULT_FORMATION
    fitted_through: DateLike = None

    def __post_init__(self) -> None:
        if self.beta is None:
            if self.alpha is not None:
                raise ParameterError("alpha is estimated with beta: give both or neither")
            check_formation(self.formation)
        object.__setattr__(
            self, "fitted_through", coerce_date(self.fitted_through, "fitted_through")
        )

    @property
    def estimated(self) -> bool:
        """Whether the hedge is estimated on the formation window."""
        return self.beta is None


@dataclass(frozen=True)
class PairBacktest:
    """Everything a single-pair backtest runs with: the rule, where the hedge comes from,
    and the run's :class:`~titan_lib.backtest.settings.BacktestSettings`."""

    rule: PairRule = field(default_factory=PairRule)
    hedge_fit: HedgeFit = field(default_factory=HedgeFit)
    backtest: BacktestSettings = field(default_factory=BacktestSettings)

    def __post_init__(self) -> None:
        for name, kind in (("rule", PairRule), ("hedge_fit", HedgeFit)):
            if not isinstance(getattr(self, name), kind):
                raise ParameterError(f"{name} must be a {kind.__name__}")
        if not isinstance(self.backtest, BacktestSettings):
            raise ParameterError("backtest must be a BacktestSettings")


def check_formation(formation: object) -> None:
    """Raise :class:`ParameterError` unless ``formation`` is a whole number of bars >= 20."""
    if isinstance(formation, bool) or not isinstance(formation, int) or formation < 20:
        raise ParameterError(f"formation must be a whole number of bars >= 20, got {formation!r}")


def backtest_pair(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    beta: float | None = None,
    alpha: float | None = None,
    formation: int = DEFAULT_FORMATION,
    fitted_through: DateLike = None,
    entry: float = 2.0,
    exit: float = 0.5,
    stop: float = math.inf,
    max_hold: float = math.inf,
    window: int | None = 60,
    zscore: ZScoreSpec | None = None,
    positions: pl.DataFrame | None = None,
    notional: float | None = None,
    target_weight: float | None = None,
    hedge: HedgeUnits = "log",
    hedge_method: HedgeMethod = "ols",
    costs: Costs | None = None,
    init_cash: float = DEFAULT_INIT_CASH,
    fill: FillPrice = "auto",
    start: DateLike = None,
    end: DateLike = None,
    flatten_at_end: bool = False,
    gate: pl.DataFrame | None = None,
    risk_free: float = 0.0,
    engine: Engine = "vectorbt",
) -> BacktestResult:
    """Backtest the z-score rule on the spread ``y - beta x - alpha`` of one pair.

    Builds the :class:`PairBacktest` of the keywords (every parameter is checked before
    anything runs) and calls :func:`run_pair`.

    Convention: the state decided from data up to the close of bar ``t`` is filled at bar
    ``t + 1``: at its close, or at its open when every leg has opens (``fill="auto"``).
    Leg sizes follow ``beta`` and a ``notional`` (currency) or ``target_weight`` (fraction
    of equity at the signal close; 1.0 when neither is given), see
    :mod:`titan_lib.backtest.sizing`. Costs: commission (bps and fixed per order),
    slippage (bps) and the annual borrow fee of the short leg accrued daily
    (:class:`~titan_lib.backtest.costs.Costs`). Statistics use 252 days a year and the
    annual ``risk_free`` rate (:mod:`titan_lib.backtest.stats`).

    The result's ``settings["sample"]`` is ``"out-of-sample"`` when the hedge was
    estimated strictly before the first traded bar (the default), else ``"in-sample"``;
    ``settings["hedge_fit"]`` holds the hedge used and the window it was estimated on.

    Parameters
    ----------
    prices
        Long prices (``date``, ``symbol``, ``close``, optional ``open``).
    y, x
        Leg symbols: long spread is long ``y`` and short ``x``.
    beta, alpha, formation, fitted_through
        Where the hedge comes from (:class:`HedgeFit`).
    hedge_method
        Estimator of a hedge fitted on the formation window (``"ols"`` or ``"tls"``, see
        :class:`~titan_lib.backtest.sizing.SizingSettings`).
    entry, exit, stop, max_hold
        Rule thresholds in z units, ``0 <= exit < entry < stop``, and time stop in bars
        (``inf`` for none); see :mod:`titan_lib.core.state_machine`.
    window, zscore
        Rolling z-score window, or a full :class:`~titan_lib.core.zscore.ZScoreSpec`
        (which wins when given).
    positions
        A frame of ``date`` and ``position`` (-1/0/+1 decided states) used instead of the
        rule.
    notional, target_weight, hedge, costs, init_cash, fill, start, end, flatten_at_end,
    gate, risk_free, engine
        As in :func:`~titan_lib.backtest.book.backtest_portfolio`.

    Returns
    -------
    BacktestResult
        Equity curve, per-leg positions, trades (with exit reasons) and statistics.

    Raises
    ------
    ParameterError
        Any invalid parameter, before anything runs.
    DataValidationError
        Too few bars for the formation window.
    """
    spec = zscore if zscore is not None else ZScoreSpec.rolling(60 if window is None else window)
    backtest = BacktestSettings.build(
        target_weight=target_weight, notional=notional, hedge=hedge, hedge_method=hedge_method,
        costs=costs, init_cash=init_cash, fill=fill, start=start, end=end,
        flatten_at_end=flatten_at_end, risk_free=risk_free, engine=engine,
    )  # fmt: skip
    settings = PairBacktest(
        rule=PairRule(entry=entry, exit=exit, stop=stop, max_hold=max_hold, zscore=spec),
        hedge_fit=HedgeFit(
            beta=beta, alpha=alpha, formation=formation, fitted_through=fitted_through
        ),
        backtest=backtest,
    )
    return run_pair(prices, y, x, settings, positions=positions, gate=gate)


def run_pair(
    prices: pl.DataFrame,
    y: str,
    x: str,
    settings: PairBacktest,
    *,
    positions: pl.DataFrame | None = None,
    gate: pl.DataFrame | None = None,
) -> BacktestResult:
    """Backtest one pair under validated ``settings`` (see :func:`backtest_pair`).

    ``positions`` (decided states replacing the rule) and ``gate`` (regime gate codes) are
    data, as in :func:`~titan_lib.backtest.book.run_portfolio`. The result's settings add
    ``sample``, ``hedge_fit`` (the hedge used) and ``rule`` (the record of the rule).

    Raises
    ------
    DataValidationError
        Too few bars for the formation window or the trading window.
    """
    fit, run = settings.hedge_fit, settings.backtest
    seen: date | None = None
    if fit.beta is None:
        last = run.last_day
        bounded = prices if last is None else prices.filter(pl.col("date") <= last)
        fitted = formation_hedge(
            bounded, y, x, formation=fit.formation, start=run.first_day,
            hedge=run.sizing.hedge, method=run.sizing.hedge_method,
        )  # fmt: skip
        beta, alpha = float(fitted["beta"]), float(fitted["alpha"])
        run = replace(run, start=fitted["trading_start"])
        sample: Sample = "out-of-sample"
        hedge_fit: dict[str, Any] = fitted
    else:
        beta = fit.beta
        alpha = 0.0 if fit.alpha is None else fit.alpha
        seen = coerce_date(fit.fitted_through, "fitted_through")
        sample = "in-sample"
        hedge_fit = {"beta": float(beta), "alpha": float(alpha), "method": "given",
                     "fitted_through": None if seen is None else seen.isoformat()}  # fmt: skip
    pair = PairSpec(y=y, x=x, beta=beta, alpha=alpha, rule=settings.rule, positions=positions)
    result = run_portfolio(prices, [pair], run, gate=gate)
    if seen is not None:
        sample = "out-of-sample" if seen < result.equity.get_column("date")[0] else "in-sample"
    return replace(
        result,
        settings={
            **result.settings,
            "sample": sample,
            "hedge_fit": hedge_fit,
            "rule": settings_dict(settings.rule),
        },
    )
