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
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

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
from titan_lib.backtest.simulate import simulate_nb
from titan_lib.backtest.sizing import HedgeUnits, Sizing, make_sizing
from titan_lib.backtest.states import decided_states, spread_of, zscore_series
from titan_lib.backtest.stats import stats_dict, stats_nb
from titan_lib.core.state_machine import GATE_NO_ENTRY, GATE_OPEN
from titan_lib.data.price_store import coerce_date
from titan_lib.exceptions import DataValidationError, ParameterError

Engine = Literal["vectorbt", "numba"]
ENGINES: tuple[str, ...] = ("vectorbt", "numba")
DateLike = date | datetime | str | None


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


@dataclass(frozen=True)
class BookSettings:
    """Validated settings shared by every pair of a run."""

    sizing: tuple[Sizing, ...]
    costs: Costs
    init_cash: float
    gross_cap: float
    fill: FillPrice
    start: date | None
    end: date | None
    flatten_at_end: bool
    risk_free: float
    engine: Engine


def book_settings(
    n_pairs: int,
    *,
    allocation: Sequence[float] | float | None,
    notional: Sequence[float] | float | None,
    hedge: HedgeUnits,
    costs: Costs | None,
    init_cash: float,
    gross_cap: float,
    fill: FillPrice,
    start: DateLike,
    end: DateLike,
    flatten_at_end: bool,
    risk_free: float,
    engine: str,
) -> BookSettings:
    """Validate the shared settings of a run (nothing is computed before this passes)."""
    if engine not in ENGINES:
        raise ParameterError(
            f"engine must be one of {', '.join(ENGINES)}, got {engine!r}", {"parameter": "engine"}
        )
    if fill not in ("auto", "close", "open"):
        raise ParameterError(f"fill must be 'auto', 'close' or 'open', got {fill!r}")
    costs = Costs() if costs is None else costs
    if not isinstance(costs, Costs):
        raise ParameterError(f"costs must be a Costs, got {type(costs).__name__}")
    _check_positive("init_cash", init_cash)
    if isinstance(gross_cap, bool) or not isinstance(gross_cap, int | float) or not gross_cap > 0:
        raise ParameterError(f"gross_cap must be > 0 (inf for none), got {gross_cap!r}")
    if isinstance(risk_free, bool) or not isinstance(risk_free, int | float):
        raise ParameterError(f"risk_free must be a number, got {risk_free!r}")
    if not math.isfinite(risk_free):
        raise ParameterError(f"risk_free must be finite, got {risk_free!r}")
    lo, hi = coerce_date(start, "start"), coerce_date(end, "end")
    if lo is not None and hi is not None and hi < lo:
        raise ParameterError(f"end {hi} is before start {lo}")
    sizes = _per_pair("allocation", allocation, n_pairs) if allocation is not None else None
    amounts = _per_pair("notional", notional, n_pairs) if notional is not None else None
    if sizes is not None and amounts is not None:
        raise ParameterError("give either allocation or notional, not both")
    if amounts is not None:
        sizing = tuple(make_sizing(a, None, hedge) for a in amounts)
    else:
        weights = sizes if sizes is not None else [1.0 / n_pairs] * n_pairs
        sizing = tuple(make_sizing(None, w, hedge) for w in weights)
    return BookSettings(
        sizing=sizing,
        costs=costs,
        init_cash=float(init_cash),
        gross_cap=float(gross_cap),
        fill=fill,
        start=lo,
        end=hi,
        flatten_at_end=bool(flatten_at_end),
        risk_free=float(risk_free),
        engine=engine,  # type: ignore[arg-type]
    )


def backtest_portfolio(
    prices: pl.DataFrame,
    pairs: Sequence[PairSpec],
    *,
    allocation: Sequence[float] | float | None = None,
    notional: Sequence[float] | float | None = None,
    hedge: HedgeUnits = "log",
    gross_cap: float = math.inf,
    costs: Costs | None = None,
    init_cash: float = 1_000_000.0,
    fill: FillPrice = "auto",
    start: DateLike = None,
    end: DateLike = None,
    flatten_at_end: bool = False,
    gate: pl.DataFrame | None = None,
    risk_free: float = 0.0,
    engine: Engine = "vectorbt",
) -> BacktestResult:
    """Backtest several pairs in one cash account with per-pair capital and a gross cap.

    Parameters
    ----------
    prices
        Long prices (``date``, ``symbol``, ``close``, optional ``open``). Bars are the
        dates on which every leg has a close. Only dates up to ``end`` are read.
    pairs
        The pairs and their rules (:class:`PairSpec`).
    allocation
        Gross size of each pair's trade as a fraction of equity at the signal close (one
        value for all, or one per pair); default ``1 / len(pairs)`` each.
    notional
        Instead of ``allocation``: a fixed gross size in currency per trade.
    hedge
        Units of ``beta``: ``"log"`` (value ratio, spread of log prices) or ``"level"``
        (share ratio, spread of prices); see :mod:`titan_lib.backtest.sizing`.
    gross_cap
        New entries are scaled down so that the gross exposure stays at or below
        ``gross_cap`` times equity (``inf``: no cap).
    costs
        Commission, slippage and borrow (:class:`Costs`); none by default.
    init_cash
        Starting equity in currency.
    fill
        Fill price of the next bar: ``"close"``, ``"open"`` or ``"auto"`` (the open when
        every leg has one).
    start, end
        Trading window (inclusive). Bars before ``start`` only warm up the z-score; the
        state machine starts flat at ``start``.
    flatten_at_end
        Close every position on the last bar (decided at the close before it).
    gate
        Optional regime gate: a frame of ``date`` and ``gate`` codes
        (:data:`~titan_lib.core.state_machine.GATE_OPEN` 0, ``GATE_NO_ENTRY`` 1,
        ``GATE_FLATTEN`` 2); a bar without a code blocks new entries.
    risk_free
        Annual risk-free rate for Sharpe and Sortino (simple, per day ``rf / 252``).
    engine
        ``"vectorbt"`` (default) or ``"numba"``; see the module docstring.

    Returns
    -------
    BacktestResult
    """
    pairs = list(pairs)
    if not pairs:
        raise ParameterError("backtest_portfolio needs at least one pair")
    for spec in pairs:
        if not isinstance(spec, PairSpec):
            raise ParameterError(f"pairs must be PairSpec objects, got {type(spec).__name__}")
    settings = book_settings(
        len(pairs),
        allocation=allocation,
        notional=notional,
        hedge=hedge,
        costs=costs,
        init_cash=init_cash,
        gross_cap=gross_cap,
        fill=fill,
        start=start,
        end=end,
        flatten_at_end=flatten_at_end,
        risk_free=risk_free,
        engine=engine,
    )
    if settings.end is not None:
        prices = prices.filter(pl.col("date") <= settings.end)
    legs = align_legs(prices, [s for spec in pairs for s in (spec.y, spec.x)], settings.fill)
    first = 0
    if settings.start is not None:
        first = int(np.searchsorted(legs.date_array(), np.datetime64(settings.start)))
    if legs.n - first < 3:
        raise DataValidationError(
            f"the trading window has {legs.n - first} bars with prices; need at least 3",
            {"start": str(settings.start), "end": str(settings.end)},
        )
    gates = gate_codes(gate, legs.dates)
    state = np.zeros((legs.n, len(pairs)), dtype=np.int64)
    reason = np.zeros((legs.n, len(pairs)), dtype=np.int64)
    for i, spec in enumerate(pairs):
        pair_states(legs, i, spec, hedge, gates, first, state[:, i], reason[:, i])
    return run_book(
        legs.between(legs.dates[first], None), pairs, state[first:], reason[first:], settings
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
    settings: BookSettings,
) -> BacktestResult:
    """Simulate decided states over the bars of ``legs`` and build the result."""
    state = np.ascontiguousarray(state, dtype=np.int64).copy()
    reason = np.ascontiguousarray(reason, dtype=np.int64).copy()
    if settings.flatten_at_end and legs.n >= 2:
        closing = state[-2] != 0
        state[-2:, :] = 0
        reason[-2, closing] = WINDOW_END
    costs = settings.costs
    sizing = settings.sizing
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
        settings=run_settings(settings, legs, pairs),
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
    settings: BookSettings, legs: LegPrices, pairs: Sequence[PairSpec]
) -> dict[str, Any]:
    """The settings block of a result: convention, costs, sizing, engine."""
    return {
        "convention": f"signal at the close of t, fill at the {legs.fill_price} of t+1",
        "fill_price": legs.fill_price,
        "annualisation_days": TRADING_DAYS,
        "risk_free": settings.risk_free,
        "costs": {
            "commission_bps": settings.costs.commission_bps,
            "commission_fixed": settings.costs.commission_fixed,
            "slippage_bps": settings.costs.slippage_bps,
            "borrow_bps": settings.costs.borrow_bps,
        },
        "sizing": [
            {"pair": spec.label, "mode": s.mode, "value": s.value, "hedge": s.hedge}
            for spec, s in zip(pairs, settings.sizing, strict=True)
        ],
        "gross_cap": settings.gross_cap,
        "init_cash": settings.init_cash,
        "engine": settings.engine,
        "start": str(legs.dates[0]),
        "end": str(legs.dates[-1]),
    }


def _per_pair(name: str, value: Sequence[float] | float, n: int) -> list[float]:
    values = [value] * n if isinstance(value, int | float) else list(value)
    if len(values) != n:
        raise ParameterError(f"{name} has {len(values)} values for {n} pairs")
    return values  # type: ignore[return-value]


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise ParameterError(f"{name} must be > 0, got {value!r}")
