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
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.backtest.book import PairSpec, backtest_portfolio, book_settings
from titan_lib.backtest.costs import TRADING_DAYS, Costs
from titan_lib.backtest.grid import make_grid
from titan_lib.backtest.legs import FillPrice
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.selection import Selector, engine_selector
from titan_lib.backtest.sizing import HedgeUnits
from titan_lib.backtest.stats import stats_dict, stats_nb
from titan_lib.backtest.sweep import Objective, best_params, check_objective, sweep
from titan_lib.core.zscore import ZScoreSpec
from titan_lib.exceptions import DataValidationError, ParameterError

WindowMode = Literal["rolling", "expanding"]


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
    """

    windows: pl.DataFrame
    selections: pl.DataFrame
    equity: pl.DataFrame
    trades: pl.DataFrame
    stats: dict[str, float]
    degradation: dict[str, Any]


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
    costs: Costs | None = None,
    gross_cap: float = 1.0,
    init_cash: float = 1_000_000.0,
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

    Raises
    ------
    ParameterError
        Any bad parameter (window lengths, filters, grid, objective, costs), before
        anything runs.
    """
    check_objective(objective)
    if mode not in ("rolling", "expanding"):
        raise ParameterError(f"mode must be 'rolling' or 'expanding', got {mode!r}")
    for name, value, low in (("train", train, 20), ("test", test, 3), ("max_pairs", max_pairs, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ParameterError(f"{name} must be a whole number >= {low}, got {value!r}")
    if not (isinstance(max_qvalue, int | float) and 0 < max_qvalue <= 1):
        raise ParameterError(f"max_qvalue must be in (0, 1], got {max_qvalue!r}")
    lo_hl, hi_hl = half_life
    if not (0 <= lo_hl < hi_hl):
        raise ParameterError(
            f"half_life must be a range (low, high) with low < high, got {half_life!r}"
        )
    base = PairRule() if base is None else base
    make_grid(grid, base, invalid)
    book_settings(
        1, allocation=None, notional=None, hedge=hedge, costs=costs, init_cash=init_cash,
        gross_cap=gross_cap, fill=fill, start=None, end=None, flatten_at_end=True,
        risk_free=risk_free, engine="numba",
    )  # fmt: skip
    select = engine_selector if selector is None else selector
    if symbols is not None:
        prices = prices.filter(pl.col("symbol").is_in(list(symbols)))
    dates = prices.get_column("date").unique().sort().to_list()
    bounds = window_bounds(len(dates), train, test, mode)
    if not bounds:
        raise DataValidationError(
            f"{len(dates)} dates cannot hold a training window of {train} bars and a test "
            "window of at least 3 bars"
        )
    equity_now = float(init_cash)
    windows: list[dict[str, Any]] = []
    selections: list[dict[str, Any]] = []
    curves: list[pl.DataFrame] = []
    trades: list[pl.DataFrame] = []
    totals = np.zeros(5)
    for k, (a, b, c, d) in enumerate(bounds):
        train_start, train_end = dates[a], dates[b - 1]
        test_start, test_end = dates[c], dates[d - 1]
        train_prices = prices.filter(pl.col("date").is_between(train_start, train_end))
        chosen = choose_pairs(
            train_prices, select, grid, base, objective, max_pairs, max_qvalue, half_life,
            hedge, costs, fill, risk_free, invalid,
        )  # fmt: skip
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
        common = dict(
            hedge=hedge, costs=costs, gross_cap=gross_cap, fill=fill, flatten_at_end=True,
            risk_free=risk_free, engine="numba",
        )  # fmt: skip
        if specs:
            insample = backtest_portfolio(train_prices, specs, init_cash=init_cash, **common)  # type: ignore[arg-type]
            outsample = backtest_portfolio(
                prices.filter(pl.col("date") <= test_end), specs, init_cash=equity_now,
                start=test_start, end=test_end, **common,  # type: ignore[arg-type]
            )  # fmt: skip
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
        windows.append(row)
    equity = pl.concat(curves).select("date", "window", "equity")
    all_trades = pl.concat(trades) if trades else pl.DataFrame()
    return WalkForwardResult(
        windows=pl.DataFrame(windows),
        selections=pl.DataFrame(selections) if selections else pl.DataFrame(),
        equity=equity,
        trades=all_trades,
        stats=stitched_stats(equity, all_trades, totals, risk_free),
        degradation=degradation(pl.DataFrame(windows), objective),
    )


def choose_pairs(
    train_prices: pl.DataFrame,
    select: Selector,
    grid: Mapping[str, Sequence[float] | float],
    base: PairRule,
    objective: str,
    max_pairs: int,
    max_qvalue: float,
    half_life: tuple[float, float],
    hedge: HedgeUnits,
    costs: Costs | None,
    fill: FillPrice,
    risk_free: float,
    invalid: Literal["raise", "drop"],
) -> list[tuple[PairSpec, dict[str, Any]]]:
    """Pairs and parameters chosen from the training prices alone."""
    candidates = select(train_prices)
    needed = {"y", "x", "hedge_ratio", "intercept", "qvalue", "half_life"}
    if not needed <= set(candidates.columns):
        raise DataValidationError(f"the selector must return columns {', '.join(sorted(needed))}")
    kept = (
        candidates.filter(
            (pl.col("qvalue") <= max_qvalue)
            & pl.col("half_life").is_between(half_life[0], half_life[1])
        )
        .sort("qvalue", "y", "x")
        .head(max_pairs)
    )
    chosen = []
    for cand in kept.iter_rows(named=True):
        table = sweep(
            train_prices, cand["y"], cand["x"], beta=cand["hedge_ratio"],
            alpha=cand["intercept"], grid=grid, base=base, hedge=hedge, costs=costs,
            fill=fill, flatten_at_end=True, risk_free=risk_free, invalid=invalid,
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
