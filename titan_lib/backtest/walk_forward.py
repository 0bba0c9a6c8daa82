"""Walk-forward tests: select and tune in each training window, trade the next test window.

Windows are counted in bars (dates of the universe). ``rolling``: every training window has
``train`` bars; ``expanding``: it starts at the first bar. Test windows of ``test`` bars
follow each other without overlap. Inside a window:

1. the selector sees the training prices only and returns candidate pairs; those with
   ``qvalue <= max_qvalue`` and a half-life inside ``half_life`` are kept, best q-value
   first, at most ``max_pairs``;
2. each kept pair is swept over ``grid`` on the training window (positions closed at its
   end) and gets the combination that maximises ``objective``;
3. the chosen pairs trade together in the test window (z-scores warmed up on earlier
   prices, state machines starting flat, every position closed on the window's last bar),
   starting from the equity the previous window ended with.

The out-of-sample equity is the test windows stitched end to end. Degradation compares the
objective of the chosen book on its training window (in-sample) with the same book in the
test window (out-of-sample).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.backtest.book import PairSpec, run_portfolio
from titan_lib.backtest.costs import TRADING_DAYS, Costs
from titan_lib.backtest.legs import FillPrice
from titan_lib.backtest.pair import HedgeFit, PairBacktest, formation_hedge, legs_hedge, run_pair
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.selection import Selector, engine_selector
from titan_lib.backtest.settings import DEFAULT_INIT_CASH, BacktestSettings, settings_dict
from titan_lib.backtest.sizing import HedgeUnits
from titan_lib.backtest.stats import stats_dict, stats_nb
from titan_lib.backtest.sweep import Objective, SweepSettings, best_params, run_sweep
from titan_lib.core.zscore import ZScoreSpec
from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.pairs.hedge_ratios import HedgeMethod
from titan_lib.signals.fit import GateSettings, fit_gate
from titan_lib.signals.frame import pair_prices, spread_expr
from titan_lib.signals.rules import gate_codes, gate_regimes

WindowMode = Literal["rolling", "expanding"]
GATE_MIN_TRAIN = 60
"""Fewest training bars a gate comparison fits its regime model on."""


@dataclass(frozen=True)
class WalkForwardResult:
    """Outcome of :func:`walk_forward`.

    Attributes
    ----------
    windows
        One row per window: ``window``, ``train_start``, ``train_end``, ``test_start``,
        ``test_end``, ``n_pairs``, ``is_<objective>``, ``oos_<objective>``,
        ``is_total_return``, ``oos_total_return``, ``start_equity``, ``end_equity``.
    selections
        One row per window and chosen pair: ``window``, ``y``, ``x``, ``beta``, ``alpha``,
        ``qvalue``, ``half_life``, the chosen ``entry``, ``exit``, ``stop``, ``max_hold``,
        ``z_window`` or ``z_halflife``, and their in-sample objective ``is_<objective>``.
    equity
        Stitched out-of-sample equity: ``date``, ``window``, ``equity``.
    trades
        Out-of-sample trades of every window, with a ``window`` column.
    stats
        Statistics of the stitched equity (as :mod:`titan_lib.backtest.stats`).
    degradation
        ``objective``, mean in-sample and out-of-sample values over windows with pairs,
        their difference ``is_minus_oos`` and ratio ``oos_over_is``.
    settings
        Record of the run's settings: ``windows``, ``selection``, ``sweep``, ``backtest``.
    """

    windows: pl.DataFrame
    selections: pl.DataFrame
    equity: pl.DataFrame
    trades: pl.DataFrame
    stats: dict[str, float]
    degradation: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowSettings:
    """Walk-forward windows in bars: ``train`` bars to choose on, then ``test`` bars to
    trade; ``mode`` ``"rolling"`` (every training window has ``train`` bars) or
    ``"expanding"`` (it starts at the first bar).

    Raises
    ------
    ParameterError
        An unknown mode, ``train < 20`` or ``test < 3``.
    """

    train: int = 504
    test: int = 126
    mode: WindowMode = "rolling"

    def __post_init__(self) -> None:
        if self.mode not in ("rolling", "expanding"):
            raise ParameterError(f"mode must be 'rolling' or 'expanding', got {self.mode!r}")
        for name, low in (("train", 20), ("test", 3)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ParameterError(f"{name} must be a whole number >= {low}, got {value!r}")

    def bounds(self, n_bars: int) -> list[tuple[int, int, int, int]]:
        """:func:`window_bounds` of ``n_bars`` bars."""
        return window_bounds(n_bars, self.train, self.test, self.mode)


@dataclass(frozen=True)
class SelectionSettings:
    """Which candidates of a training window are traded: at most ``max_pairs`` with
    ``qvalue <= max_qvalue`` and ``half_life[0] <= half-life <= half_life[1]`` (bars).

    Raises
    ------
    ParameterError
        ``max_pairs < 1``, ``max_qvalue`` outside ``(0, 1]`` or an empty half-life range.
    """

    max_pairs: int = 5
    max_qvalue: float = 0.05
    half_life: tuple[float, float] = (1.0, 126.0)

    def __post_init__(self) -> None:
        value = self.max_pairs
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"max_pairs must be a whole number >= 1, got {value!r}")
        if not (isinstance(self.max_qvalue, int | float) and 0 < self.max_qvalue <= 1):
            raise ParameterError(f"max_qvalue must be in (0, 1], got {self.max_qvalue!r}")
        lo_hl, hi_hl = self.half_life
        if not (0 <= lo_hl < hi_hl):
            raise ParameterError(
                f"half_life must be a range (low, high) with low < high, got {self.half_life!r}"
            )
        object.__setattr__(self, "half_life", (lo_hl, hi_hl))


def window_bounds(
    n_bars: int, train: int, test: int, mode: WindowMode
) -> list[tuple[int, int, int, int]]:
    """``(train_lo, train_hi, test_lo, test_hi)`` bar ranges (half-open) of each window."""
    out = []
    k = 0
    while True:
        test_lo = train + k * test
        if test_lo + 3 > n_bars:
            break
        test_hi = min(test_lo + test, n_bars)
        train_lo = 0 if mode == "expanding" else test_lo - train
        out.append((train_lo, test_lo, test_lo, test_hi))
        k += 1
    return out


def walk_forward(
    prices: pl.DataFrame,
    *,
    grid: Mapping[str, Sequence[float] | float],
    train: int = 504,
    test: int = 126,
    mode: WindowMode = "rolling",
    objective: Objective = "sharpe",
    symbols: Sequence[str] | None = None,
    max_pairs: int = 5,
    max_qvalue: float = 0.05,
    half_life: tuple[float, float] = (1.0, 126.0),
    selector: Selector | None = None,
    base: PairRule | None = None,
    hedge: HedgeUnits = "log",
    hedge_method: HedgeMethod = "ols",
    costs: Costs | None = None,
    gross_cap: float = 1.0,
    init_cash: float = DEFAULT_INIT_CASH,
    fill: FillPrice = "auto",
    risk_free: float = 0.0,
    invalid: Literal["raise", "drop"] = "raise",
) -> WalkForwardResult:
    """Walk-forward test of pair selection and parameter choice over a universe.

    Parameters
    ----------
    prices
        Long prices of the universe (``date``, ``symbol``, ``close``, optional ``open``).
    grid, base, invalid
        Parameter grid of the per-pair sweep, see :func:`~titan_lib.backtest.sweep.sweep`.
    train, test
        Window lengths in bars.
    mode
        ``"rolling"`` or ``"expanding"`` training windows.
    objective
        Statistic maximised in the sweep and compared in and out of sample.
    symbols
        Restrict the universe.
    max_pairs, max_qvalue, half_life
        Selection filters: at most ``max_pairs`` pairs with ``qvalue <= max_qvalue`` and
        ``half_life[0] <= half-life <= half_life[1]`` (bars).
    selector
        Candidate pairs from training prices (default
        :func:`~titan_lib.backtest.selection.engine_selector`, the pair engine).
    hedge, costs, gross_cap, init_cash, fill, risk_free
        As in :func:`~titan_lib.backtest.book.backtest_portfolio`; each chosen pair gets an
        equal share ``1 / n_pairs`` of equity per trade.
    hedge_method
        Estimator of each pair's hedge on its training window (``"ols"`` or ``"tls"``,
        see :class:`~titan_lib.backtest.sizing.SizingSettings`).

    Raises
    ------
    ParameterError
        Any bad parameter (window lengths, filters, grid, objective, costs), before
        anything runs.
    """
    backtest = BacktestSettings.build(
        hedge=hedge, hedge_method=hedge_method, costs=costs, init_cash=init_cash,
        gross_cap=gross_cap, fill=fill, flatten_at_end=True, risk_free=risk_free,
        engine="numba",
    )  # fmt: skip
    return run_walk_forward(
        prices,
        windows=WindowSettings(train=train, test=test, mode=mode),
        selection=SelectionSettings(
            max_pairs=max_pairs, max_qvalue=max_qvalue, half_life=half_life
        ),
        sweep=SweepSettings(
            grid=grid,
            base=PairRule() if base is None else base,
            invalid=invalid,
            objective=objective,
        ),
        backtest=backtest,
        symbols=symbols,
        selector=selector,
    )


def run_walk_forward(
    prices: pl.DataFrame,
    *,
    windows: WindowSettings,
    selection: SelectionSettings,
    sweep: SweepSettings,
    backtest: BacktestSettings,
    symbols: Sequence[str] | None = None,
    selector: Selector | None = None,
) -> WalkForwardResult:
    """Walk-forward test under validated settings (see :func:`walk_forward`).

    ``sweep`` (its ``objective`` is required) chooses each pair's rule on the training
    window; ``backtest`` sizes, costs and fills the chosen book (its window is each test
    window, every position closed at its end). The result records every setting.

    Raises
    ------
    ParameterError
        ``sweep`` without an objective.
    DataValidationError
        Too few dates for one training and one test window.
    """
    objective = sweep.objective
    if objective is None:
        raise ParameterError("a walk-forward needs the sweep's objective")
    select = engine_selector if selector is None else selector
    if symbols is not None:
        prices = prices.filter(pl.col("symbol").is_in(list(symbols)))
    dates = prices.get_column("date").unique().sort().to_list()
    bounds = windows.bounds(len(dates))
    if not bounds:
        raise DataValidationError(
            f"{len(dates)} dates cannot hold a training window of {windows.train} bars and a "
            "test window of at least 3 bars"
        )
    book = replace(backtest, start=None, end=None, flatten_at_end=True)
    equity_now = book.init_cash
    rows: list[dict[str, Any]] = []
    selections: list[dict[str, Any]] = []
    curves: list[pl.DataFrame] = []
    trades: list[pl.DataFrame] = []
    totals = np.zeros(5)
    for k, (a, b, c, d) in enumerate(bounds):
        train_start, train_end = dates[a], dates[b - 1]
        test_start, test_end = dates[c], dates[d - 1]
        train_prices = prices.filter(pl.col("date").is_between(train_start, train_end))
        chosen = choose_pairs(train_prices, select, selection, sweep, book)
        row: dict[str, Any] = {
            "window": k,
            "train_start": train_start,
            "train_end": train_end,
            "test_start": test_start,
            "test_end": test_end,
            "n_pairs": len(chosen),
            "start_equity": equity_now,
        }
        specs = [spec for spec, _ in chosen]
        for _, info in chosen:
            selections.append({"window": k, **info})
        if specs:
            insample = run_portfolio(train_prices, specs, book)
            outsample = run_portfolio(
                prices.filter(pl.col("date") <= test_end),
                specs,
                replace(book, init_cash=equity_now, start=test_start, end=test_end),
            )
            curve = outsample.equity.select("date", "equity")
            totals += window_totals(outsample.stats, outsample.equity)
            trades.append(outsample.trades.with_columns(window=pl.lit(k)))
            row.update(
                {
                    f"is_{objective}": insample.stats[objective],
                    f"oos_{objective}": outsample.stats[objective],
                    "is_total_return": insample.stats["total_return"],
                    "oos_total_return": outsample.stats["total_return"],
                }
            )
        else:
            curve = pl.DataFrame(
                {"date": pl.Series(dates[c:d], dtype=pl.Date), "equity": [equity_now] * (d - c)}
            )
            row.update(
                {
                    f"is_{objective}": math.nan,
                    f"oos_{objective}": math.nan,
                    "is_total_return": math.nan,
                    "oos_total_return": 0.0,
                }
            )
        curves.append(curve.with_columns(window=pl.lit(k)))
        equity_now = float(curve.get_column("equity")[-1])
        row["end_equity"] = equity_now
        rows.append(row)
    equity = pl.concat(curves).select("date", "window", "equity")
    all_trades = pl.concat(trades) if trades else pl.DataFrame()
    return WalkForwardResult(
        windows=pl.DataFrame(rows),
        selections=pl.DataFrame(selections) if selections else pl.DataFrame(),
        equity=equity,
        trades=all_trades,
        stats=stitched_stats(equity, all_trades, totals, book.risk_free),
        degradation=degradation(pl.DataFrame(rows), objective),
        settings={
            "windows": settings_dict(windows),
            "selection": settings_dict(selection),
            "sweep": settings_dict(sweep),
            "backtest": settings_dict(book),
        },
    )


def choose_pairs(
    train_prices: pl.DataFrame,
    select: Selector,
    selection: SelectionSettings,
    sweep: SweepSettings,
    backtest: BacktestSettings,
) -> list[tuple[PairSpec, dict[str, Any]]]:
    """Pairs and parameters chosen from the training prices alone.

    Each kept candidate is swept over ``sweep.grid`` with ``backtest``'s sizing, costs,
    fills and risk-free rate on the default account size, every position closed at the
    window's end; its best row by ``sweep.objective`` is its rule.
    """
    objective = sweep.objective
    if objective is None:
        raise ParameterError("choosing pairs needs the sweep's objective")
    base = sweep.base
    half_life = selection.half_life
    candidates = select(train_prices)
    needed = {"y", "x", "hedge_ratio", "intercept", "qvalue", "half_life"}
    if not needed <= set(candidates.columns):
        raise DataValidationError(f"the selector must return columns {', '.join(sorted(needed))}")
    kept = (
        candidates.filter(
            (pl.col("qvalue") <= selection.max_qvalue)
            & pl.col("half_life").is_between(half_life[0], half_life[1])
        )
        .sort("qvalue", "y", "x")
        .head(selection.max_pairs)
    )
    every_row = replace(sweep, objective=None, top=None)
    training = replace(
        backtest, init_cash=DEFAULT_INIT_CASH, start=None, end=None, flatten_at_end=True
    )
    chosen = []
    method = backtest.sizing.hedge_method
    for cand in kept.iter_rows(named=True):
        if method != "ols":
            legs = pair_prices(train_prices, [cand["y"], cand["x"]])
            refit = legs_hedge(legs, cand["y"], cand["x"], hedge="log", method=method)
            cand = {**cand, "hedge_ratio": refit.hedge_ratio, "intercept": refit.intercept}
        table = run_sweep(
            train_prices, cand["y"], cand["x"], beta=cand["hedge_ratio"],
            alpha=cand["intercept"], settings=every_row, backtest=training,
        )  # fmt: skip
        try:
            best = best_params(table, objective)
        except ParameterError:
            continue
        z_name = "window" if "window" in best else ("halflife" if "halflife" in best else None)
        if z_name == "window":
            zspec = ZScoreSpec.rolling(int(best["window"]))
        elif z_name == "halflife":
            zspec = ZScoreSpec.ewma(halflife=float(best["halflife"]))
        else:
            zspec = base.zscore
        rule = PairRule(
            entry=best["entry"], exit=best["exit"], stop=best["stop"],
            max_hold=best["max_hold"], zscore=zspec,
        )  # fmt: skip
        spec = PairSpec(y=cand["y"], x=cand["x"], beta=cand["hedge_ratio"],
                        alpha=cand["intercept"], rule=rule)  # fmt: skip
        info = {
            "y": cand["y"],
            "x": cand["x"],
            "beta": cand["hedge_ratio"],
            "alpha": cand["intercept"],
            "qvalue": cand["qvalue"],
            "half_life": cand["half_life"],
            "entry": best["entry"],
            "exit": best["exit"],
            "stop": best["stop"],
            "max_hold": best["max_hold"],
            "z_window": best.get("window"),
            "z_halflife": best.get("halflife"),
            f"is_{objective}": best[objective],
        }
        chosen.append((spec, info))
    return chosen


def window_totals(stats: dict[str, float], equity: pl.DataFrame) -> np.ndarray:
    """Costs, traded value and bars in position of one window, as the kernel's totals."""
    curve = equity.get_column("equity").to_numpy()
    periods = curve.shape[0] - 1
    traded = stats["turnover"] * float(curve.mean()) * periods / TRADING_DAYS if periods else 0.0
    return np.array(
        [
            stats["commission_paid"],
            stats["slippage_paid"],
            stats["borrow_paid"],
            0.0 if math.isnan(traded) else traded,
            stats["exposure"] * curve.shape[0],
        ]
    )


def stitched_stats(
    equity: pl.DataFrame, trades: pl.DataFrame, totals: np.ndarray, risk_free: float
) -> dict[str, float]:
    """Statistics of the stitched out-of-sample equity (trades and costs of all windows)."""
    curve = equity.get_column("equity").to_numpy().astype(np.float64)
    if trades.is_empty():
        entry = exit_ = np.zeros(0, dtype=np.int64)
        pnl = np.zeros(0)
    else:
        closed = trades.get_column("status").to_numpy() == "closed"
        entry = np.zeros(trades.height, dtype=np.int64)
        exit_ = np.where(closed, trades.get_column("holding_days").to_numpy(), -1).astype(np.int64)
        pnl = trades.get_column("pnl").to_numpy().astype(np.float64)
    return stats_dict(stats_nb(curve, entry, exit_, pnl, totals, risk_free))


def degradation(windows: pl.DataFrame, objective: str) -> dict[str, Any]:
    """Mean in-sample and out-of-sample objective over windows that traded, and the gap."""
    traded = windows.filter(pl.col("n_pairs") > 0)
    is_col, oos_col = f"is_{objective}", f"oos_{objective}"
    if traded.is_empty():
        return {"objective": objective, "in_sample": math.nan, "out_of_sample": math.nan,
                "is_minus_oos": math.nan, "oos_over_is": math.nan, "windows": 0}  # fmt: skip
    ins = float(np.nanmean(traded.get_column(is_col).to_numpy().astype(np.float64)))
    oos = float(np.nanmean(traded.get_column(oos_col).to_numpy().astype(np.float64)))
    return {
        "objective": objective,
        "in_sample": ins,
        "out_of_sample": oos,
        "is_minus_oos": ins - oos,
        "oos_over_is": oos / ins if ins != 0 else math.nan,
        "windows": traded.height,
    }


@dataclass(frozen=True)
class GateComparison:
    """Walk-forward evidence for a regime gate: the same rule with and without it.

    Attributes
    ----------
    windows
        One row per window: ``window``, ``train_start``, ``train_end``, ``test_start``,
        ``test_end``, ``beta``, ``alpha`` (hedge fitted on the training window),
        ``blocked_share`` (share of test bars the gate kept closed to entries),
        ``sharpe_with``, ``sharpe_without``, ``return_with``, ``return_without``.
    with_gate, without_gate
        Statistics of the stitched out-of-sample equity of each variant.
    """

    windows: pl.DataFrame
    with_gate: dict[str, float]
    without_gate: dict[str, float]

    @property
    def sharpe_gain(self) -> float:
        """Out-of-sample Sharpe with the gate minus without it (annualised)."""
        return float(self.with_gate["sharpe"] - self.without_gate["sharpe"])

    def supports_gate(self, min_gain: float = 0.0) -> bool:
        """Whether the gate improved the out-of-sample Sharpe by more than ``min_gain``."""
        return math.isfinite(self.sharpe_gain) and self.sharpe_gain > min_gain

    def to_dict(self) -> dict[str, Any]:
        """The evidence as stored in run results and model documents."""
        keys = ("sharpe", "total_return", "max_drawdown", "n_trades")
        return {
            "sample": "out-of-sample",
            "windows": self.windows.height,
            "with_gate": {k: self.with_gate[k] for k in keys},
            "without_gate": {k: self.without_gate[k] for k in keys},
            "sharpe_gain": self.sharpe_gain,
            "supports_gate": self.supports_gate(),
        }


def gate_comparison(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    rule: PairRule,
    gate: GateSettings,
    train: int = 504,
    test: int = 126,
    mode: WindowMode = "rolling",
    hedge: HedgeUnits = "log",
    costs: Costs | None = None,
    fill: FillPrice = "auto",
    init_cash: float = DEFAULT_INIT_CASH,
    risk_free: float = 0.0,
) -> GateComparison:
    """Walk-forward test of one pair's rule with and without a regime gate.

    In each window the hedge (OLS on the training bars) and the gate's model (on the
    training bars) are fitted from the training window alone; the test window is then
    traded twice with the same rule, once gated (gate labels from data up to each bar),
    once not, each starting flat from its own previous equity and closing on the window's
    last bar. Everything in a test window depends only on data up to that bar.

    Parameters
    ----------
    prices
        Long prices with ``y``, ``x`` and, for a market gate, ``gate.market_symbol``.
    rule
        Thresholds and z-score of the rule (the same in both variants).
    gate
        The gate to test (:class:`~titan_lib.signals.fit.GateSettings`).
    train, test, mode
        Window lengths in bars and the training-window mode, as in :func:`walk_forward`.
    hedge, costs, fill, init_cash, risk_free
        As in :func:`~titan_lib.backtest.pair.backtest_pair`.

    Raises
    ------
    DataValidationError
        Too few common dates for one training and test window.
    """
    windows = WindowSettings(train=train, test=test, mode=mode)
    backtest = BacktestSettings.build(
        hedge=hedge, costs=costs, init_cash=init_cash, fill=fill, flatten_at_end=True,
        risk_free=risk_free, engine="numba",
    )  # fmt: skip
    return run_gate_comparison(
        prices, y, x, rule=rule, gate=gate, windows=windows, backtest=backtest
    )


def run_gate_comparison(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    rule: PairRule,
    gate: GateSettings,
    windows: WindowSettings,
    backtest: BacktestSettings,
) -> GateComparison:
    """:func:`gate_comparison` under validated settings (``backtest``'s window is each
    test window, every position closed at its end; its ``init_cash`` starts both
    variants).

    Raises
    ------
    ParameterError
        Training windows under 60 bars (too short to fit a gate).
    """
    if windows.train < GATE_MIN_TRAIN:
        raise ParameterError(
            f"train must be a whole number >= {GATE_MIN_TRAIN}, got {windows.train!r}"
        )
    hedge = backtest.sizing.hedge
    symbols = [y, x]
    if gate.source == "market":
        if not gate.market_symbol:
            raise ParameterError("a market gate needs market_symbol")
        symbols.append(gate.market_symbol)
    wide = pair_prices(prices, symbols)
    dates = wide.get_column("date").to_list()
    bounds = windows.bounds(len(dates))
    if not bounds:
        raise DataValidationError(
            f"{y}/{x}: {len(dates)} common dates cannot hold a training window of "
            f"{windows.train} bars and a test window of at least 3 bars"
        )
    legs = prices.filter(pl.col("symbol").is_in([y, x]))
    equity_now = {"with": backtest.init_cash, "without": backtest.init_cash}
    curves: dict[str, list[pl.DataFrame]] = {"with": [], "without": []}
    trades: dict[str, list[pl.DataFrame]] = {"with": [], "without": []}
    totals = {"with": np.zeros(5), "without": np.zeros(5)}
    rows: list[dict[str, Any]] = []
    for k, (a, b, c, d) in enumerate(bounds):
        train_end, test_start, test_end = dates[b - 1], dates[c], dates[d - 1]
        upto = legs.filter(pl.col("date") <= test_end)
        fitted = formation_hedge(
            upto, y, x, formation=b - a, start=test_start, hedge=hedge,
            method=backtest.sizing.hedge_method,
        )  # fmt: skip
        beta, alpha = fitted["beta"], fitted["alpha"]
        frame = wide.slice(a, d - a).with_columns(spread_expr(y, x, beta, alpha, hedge))
        frozen = fit_gate(frame.slice(0, b - a), gate)
        codes = gate_codes(gate_regimes(frame, frozen), frozen.blocked, frozen.flatten)
        gate_frame = pl.DataFrame({"date": frame.get_column("date"), "gate": codes})
        row: dict[str, Any] = {
            "window": k, "train_start": dates[a], "train_end": train_end,
            "test_start": test_start, "test_end": test_end, "beta": beta, "alpha": alpha,
            "blocked_share": float(np.mean(codes[b - a :] != 0)),
        }  # fmt: skip
        for variant, gating in (("with", gate_frame), ("without", None)):
            run = PairBacktest(
                rule=rule,
                hedge_fit=HedgeFit(beta=beta, alpha=alpha, fitted_through=train_end),
                backtest=replace(
                    backtest, init_cash=equity_now[variant], start=test_start, end=test_end
                ),
            )
            result = run_pair(upto, y, x, run, gate=gating)
            curve = result.equity.select("date", "equity").with_columns(window=pl.lit(k))
            curves[variant].append(curve)
            trades[variant].append(result.trades)
            totals[variant] += window_totals(result.stats, result.equity)
            equity_now[variant] = result.final_equity
            row[f"sharpe_{variant}"] = result.stats["sharpe"]
            row[f"return_{variant}"] = result.stats["total_return"]
        rows.append(row)
    stats = {}
    for variant in ("with", "without"):
        equity = pl.concat(curves[variant]).select("date", "window", "equity")
        done = [t for t in trades[variant] if t.height]
        stats[variant] = stitched_stats(
            equity,
            pl.concat(done) if done else pl.DataFrame(),
            totals[variant],
            backtest.risk_free,
        )
    return GateComparison(
        windows=pl.DataFrame(rows), with_gate=stats["with"], without_gate=stats["without"]
    )
