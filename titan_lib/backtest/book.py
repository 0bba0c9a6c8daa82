"""Backtests of one or several pairs sharing one cash account (the engine of every run).

Each pair trades its own rule on its own spread; capital is allocated per pair (a weight
of equity or a fixed notional), new entries are held under a gross-exposure cap, and the
accounting follows the convention of :mod:`titan_lib.backtest.simulate`. With
``engine="vectorbt"`` the orders are simulated by vectorbt in one cash-sharing group (the
borrow fee, which vectorbt does not model, is deducted from its value); ``engine="numba"``
uses the compiled accounting alone. Both give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from titan_lib.backtest.costs import TRADING_DAYS, Costs
from titan_lib.backtest.legs import FillPrice, LegPrices, align_legs
from titan_lib.backtest.result import (
    GIVEN,
    WINDOW_END,
    BacktestResult,
    equity_frame,
    held_states,
    positions_frame,
    trades_frame,
)
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.settings import (
    DEFAULT_INIT_CASH,
    BacktestSettings,
    DateLike,
    Engine,
    settings_dict,
)
from titan_lib.backtest.simulate import simulate_nb
from titan_lib.backtest.sizing import HedgeUnits, Sizing
from titan_lib.backtest.states import decided_states, spread_of, zscore_series
from titan_lib.backtest.stats import stats_dict, stats_nb
from titan_lib.core.state_machine import GATE_NO_ENTRY, GATE_OPEN
from titan_lib.exceptions import DataValidationError, ParameterError


@dataclass(frozen=True)
class PairSpec:
    """One pair of a book: legs, hedge ratio, intercept and its trading rule.

    ``positions`` (a frame of ``date``, ``position`` in {-1, 0, 1}) replaces the rule by a
    given series of decided states, still filled on the next bar.
    """

    y: str
    x: str
    beta: float
    alpha: float = 0.0
    rule: PairRule = field(default_factory=PairRule)
    positions: pl.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.y == self.x:
            raise ParameterError(f"a pair needs two different legs, got {self.y!r} twice")
        for name in ("beta", "alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ParameterError(
                    f"{name} of {self.label} must be a number, got {value!r}",
                    {"parameter": name},
                )
            if not math.isfinite(value):
                raise ParameterError(
                    f"{name} of {self.label} must be finite, got {value!r}", {"parameter": name}
                )
        if not isinstance(self.rule, PairRule):
            raise ParameterError(f"rule of {self.label} must be a PairRule")

    @property
    def label(self) -> str:
        """``"Y/X"``."""
        return f"{self.y}/{self.x}"


def backtest_portfolio(
    prices: pl.DataFrame,
    pairs: Sequence[PairSpec],
    *,
    target_weight: Sequence[float] | float | None = None,
    notional: Sequence[float] | float | None = None,
    hedge: HedgeUnits = "log",
    gross_cap: float = math.inf,
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
    """Backtest several pairs in one cash account with per-pair capital and a gross cap.

    Builds the :class:`~titan_lib.backtest.settings.BacktestSettings` of the keywords and
    calls :func:`run_portfolio`.

    Parameters
    ----------
    prices
        Long prices (``date``, ``symbol``, ``close``, optional ``open``). Bars are the
        dates on which every leg has a close. Only dates up to ``end`` are read.
    pairs
        The pairs and their rules (:class:`PairSpec`).
    target_weight
        Gross size of each pair's trade as a fraction of equity at the signal close (one
        value for all, or one per pair); default ``1 / len(pairs)`` each.
    notional
        Instead of ``target_weight``: a fixed gross size in currency per trade.
    hedge
        Units of ``beta``: ``"log"`` (value ratio, spread of log prices) or ``"level"``
        (share ratio, spread of prices); see :mod:`titan_lib.backtest.sizing`.
    gross_cap, costs, init_cash, fill, start, end, flatten_at_end, risk_free, engine
        See :class:`~titan_lib.backtest.settings.BacktestSettings`. Bars before ``start``
        only warm up the z-score; the state machine starts flat at ``start``.
    gate
        Optional regime gate: a frame of ``date`` and ``gate`` codes
        (:data:`~titan_lib.core.state_machine.GATE_OPEN` 0, ``GATE_NO_ENTRY`` 1,
        ``GATE_FLATTEN`` 2); a bar without a code blocks new entries.

    Returns
    -------
    BacktestResult
    """
    settings = BacktestSettings.build(
        target_weight=target_weight, notional=notional, hedge=hedge, costs=costs,
        init_cash=init_cash, gross_cap=gross_cap, fill=fill, start=start, end=end,
        flatten_at_end=flatten_at_end, risk_free=risk_free, engine=engine,
    )  # fmt: skip
    return run_portfolio(prices, pairs, settings, gate=gate)


def run_portfolio(
    prices: pl.DataFrame,
    pairs: Sequence[PairSpec],
    settings: BacktestSettings,
    *,
    gate: pl.DataFrame | None = None,
) -> BacktestResult:
    """Backtest several pairs in one cash account under validated ``settings``.

    Parameters
    ----------
    prices
        Long prices (``date``, ``symbol``, ``close``, optional ``open``).
    pairs
        The pairs and their rules (:class:`PairSpec`).
    settings
        Sizing, costs, account, fills and window (:class:`BacktestSettings`); recorded in
        the result's ``settings["backtest"]``.
    gate
        Optional regime gate codes per date, as in :func:`backtest_portfolio`.

    Raises
    ------
    ParameterError
        No pairs, a pair that is not a :class:`PairSpec`, or sizes for another number of
        pairs.
    DataValidationError
        Fewer than 3 bars with prices in the trading window.
    """
    pairs = list(pairs)
    if not pairs:
        raise ParameterError("backtest_portfolio needs at least one pair")
    for spec in pairs:
        if not isinstance(spec, PairSpec):
            raise ParameterError(f"pairs must be PairSpec objects, got {type(spec).__name__}")
    if not isinstance(settings, BacktestSettings):
        raise ParameterError(f"settings must be a BacktestSettings, got {type(settings).__name__}")
    sizing = settings.sizing.per_pair(len(pairs))
    first_day, last_day = settings.first_day, settings.last_day
    if last_day is not None:
        prices = prices.filter(pl.col("date") <= last_day)
    legs = align_legs(prices, [s for spec in pairs for s in (spec.y, spec.x)], settings.fill)
    first = 0
    if first_day is not None:
        first = int(np.searchsorted(legs.date_array(), np.datetime64(first_day)))
    if legs.n - first < 3:
        raise DataValidationError(
            f"the trading window has {legs.n - first} bars with prices; need at least 3",
            {"start": str(first_day), "end": str(last_day)},
        )
    gates = gate_codes(gate, legs.dates)
    state = np.zeros((legs.n, len(pairs)), dtype=np.int64)
    reason = np.zeros((legs.n, len(pairs)), dtype=np.int64)
    for i, spec in enumerate(pairs):
        pair_states(legs, i, spec, settings.sizing.hedge, gates, first, state[:, i], reason[:, i])
    return run_book(
        legs.between(legs.dates[first], None),
        pairs,
        state[first:],
        reason[first:],
        settings,
        sizing,
    )


def gate_codes(gate: pl.DataFrame | None, dates: list[date]) -> np.ndarray:
    """Gate code per bar from a ``date, gate`` frame (open everywhere when ``None``)."""
    if gate is None:
        return np.full(len(dates), GATE_OPEN, dtype=np.int64)
    if not {"date", "gate"} <= set(gate.columns):
        raise DataValidationError("gate needs columns date and gate")
    joined = pl.DataFrame({"date": pl.Series(dates, dtype=pl.Date)}).join(
        gate.select(pl.col("date").cast(pl.Date), pl.col("gate").cast(pl.Int64)),
        on="date",
        how="left",
    )
    codes = joined.get_column("gate").fill_null(GATE_NO_ENTRY).to_numpy().astype(np.int64)
    if ((codes < 0) | (codes > 2)).any():
        raise DataValidationError("gate codes must be 0 (open), 1 (no entry) or 2 (flatten)")
    return codes


def pair_states(
    legs: LegPrices,
    i: int,
    spec: PairSpec,
    hedge: str,
    gates: np.ndarray,
    first: int,
    state: np.ndarray,
    reason: np.ndarray,
) -> None:
    """Fill the decided states and reasons of pair ``i`` from bar ``first`` on."""
    if spec.positions is not None:
        given = given_positions(spec, legs.dates)
        state[first:] = given[first:]
        changed = np.flatnonzero(np.diff(np.concatenate([[0], state[first:]])) != 0) + first
        reason[changed] = GIVEN
        return
    spread = spread_of(legs.close[:, 2 * i], legs.close[:, 2 * i + 1], spec.beta, spec.alpha, hedge)
    z = zscore_series(spread, spec.rule.zscore)
    rule = spec.rule
    one = np.zeros(1, dtype=np.int64)
    decided, why = decided_states(
        z.reshape(1, -1),
        one,
        np.array([rule.entry]),
        np.array([rule.exit]),
        np.array([rule.stop]),
        np.array([rule.max_hold]),
        gates,
        first,
    )
    state[first:] = decided[:, 0]
    reason[first:] = why[:, 0]


def given_positions(spec: PairSpec, dates: list[date]) -> np.ndarray:
    """A caller's position series aligned to the bars; every bar needs a value in {-1, 0, 1}."""
    frame = spec.positions
    assert frame is not None
    if not {"date", "position"} <= set(frame.columns):
        raise DataValidationError(f"positions of {spec.label} need columns date and position")
    joined = pl.DataFrame({"date": pl.Series(dates, dtype=pl.Date)}).join(
        frame.select(pl.col("date").cast(pl.Date), pl.col("position")), on="date", how="left"
    )
    values = joined.get_column("position")
    if values.null_count():
        missing = joined.filter(pl.col("position").is_null()).get_column("date")[0]
        raise DataValidationError(
            f"positions of {spec.label} have no value on {missing}", {"date": str(missing)}
        )
    out = values.cast(pl.Float64).to_numpy()
    if not np.isin(out, (-1.0, 0.0, 1.0)).all():
        raise DataValidationError(f"positions of {spec.label} must be -1, 0 or 1")
    return out.astype(np.int64)


def run_book(
    legs: LegPrices,
    pairs: Sequence[PairSpec],
    state: np.ndarray,
    reason: np.ndarray,
    settings: BacktestSettings,
    sizing: Sequence[Sizing],
) -> BacktestResult:
    """Simulate decided states over the bars of ``legs`` (each pair sized by ``sizing``)
    and build the result."""
    state = np.ascontiguousarray(state, dtype=np.int64).copy()
    reason = np.ascontiguousarray(reason, dtype=np.int64).copy()
    if settings.flatten_at_end and legs.n >= 2:
        closing = state[-2] != 0
        state[-2:, :] = 0
        reason[-2, closing] = WINDOW_END
    costs = settings.costs
    (shares, equity, borrow, orders, totals, tr_pair, tr_side, tr_entry, tr_exit, tr_pnl) = (
        simulate_nb(
            np.ascontiguousarray(legs.close),
            np.ascontiguousarray(legs.fill),
            state,
            np.array([spec.beta for spec in pairs], dtype=np.float64),
            np.array([s.value for s in sizing], dtype=np.float64),
            sizing[0].mode_code,
            sizing[0].hedge_code,
            settings.gross_cap,
            settings.init_cash,
            costs.commission_rate,
            costs.commission_fixed,
            costs.slippage_rate,
            costs.borrow_daily_rate,
        )
    )
    if settings.engine == "vectorbt":
        from titan_lib.backtest.portfolio import run_vectorbt

        run = run_vectorbt(legs, orders, costs, settings.init_cash)
        shares = run.shares
        equity = run.value - np.cumsum(borrow.sum(axis=1))
        tr_pnl = vectorbt_trade_pnl(run, tr_pair, tr_entry, tr_exit, borrow)
        totals = totals.copy()
        totals[0] = run.fees
        totals[4] = float(np.count_nonzero(np.any(shares != 0.0, axis=1)))
    stats = stats_dict(stats_nb(equity, tr_entry, tr_exit, tr_pnl, totals, settings.risk_free))
    labels = [(spec.y, spec.x) for spec in pairs]
    gross = np.abs(shares * legs.close).sum(axis=1)
    return BacktestResult(
        equity=equity_frame(legs.dates, equity, borrow.sum(axis=1), gross),
        positions=positions_frame(legs.dates, labels, held_states(shares), shares, legs.close),
        trades=trades_frame(
            legs.dates,
            labels,
            tr_pair,
            tr_side,
            tr_entry,
            tr_exit,
            tr_pnl,
            shares,
            legs.fill,
            costs.slippage_rate,
            reason,
        ),
        stats=stats,
        settings=run_settings(settings, sizing, legs, pairs),
    )


def vectorbt_trade_pnl(
    run: Any, tr_pair: np.ndarray, tr_entry: np.ndarray, tr_exit: np.ndarray, borrow: np.ndarray
) -> np.ndarray:
    """P&L of each pair trade: the sum of vectorbt's leg trades opened on its entry bar,
    less the borrow paid while it was open."""
    n = borrow.shape[0]
    pnl = np.zeros(tr_pair.shape[0])
    index = {(int(p), int(a)): r for r, (p, a) in enumerate(zip(tr_pair, tr_entry, strict=True))}
    for col, entry, value in zip(run.trade_col, run.trade_entry, run.trade_pnl, strict=True):
        r = index.get((int(col) // 2, int(entry)))
        if r is None:
            raise DataValidationError("a vectorbt leg trade matches no pair trade")
        pnl[r] += value
    for r in range(tr_pair.shape[0]):
        stop = n if tr_exit[r] < 0 else int(tr_exit[r])
        pnl[r] -= borrow[int(tr_entry[r]) : stop, int(tr_pair[r])].sum()
    return pnl


def run_settings(
    settings: BacktestSettings,
    sizing: Sequence[Sizing],
    legs: LegPrices,
    pairs: Sequence[PairSpec],
) -> dict[str, Any]:
    """The settings block of a result: convention, costs, sizing, engine, and the record
    of the run's :class:`BacktestSettings` under ``"backtest"``."""
    return {
        "convention": f"signal at the close of t, fill at the {legs.fill_price} of t+1",
        "fill_price": legs.fill_price,
        "annualisation_days": TRADING_DAYS,
        "risk_free": settings.risk_free,
        "costs": asdict(settings.costs),
        "sizing": [
            {"pair": spec.label, "mode": s.mode, "value": s.value, "hedge": s.hedge}
            for spec, s in zip(pairs, sizing, strict=True)
        ],
        "gross_cap": settings.gross_cap,
        "init_cash": settings.init_cash,
        "engine": settings.engine,
        "start": str(legs.dates[0]),
        "end": str(legs.dates[-1]),
        "backtest": settings_dict(settings),
    }
