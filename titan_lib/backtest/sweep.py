"""Parameter sweeps of one pair: the whole grid in compiled, parallel chunks.

The sweep runs outside vectorbt for speed, with the same accounting as
:func:`~titan_lib.backtest.backtest_pair` (its total returns equal vectorbt's; a test
checks every combination). Chunks of the grid run one after another, or spread over a
Dask cluster when ``scheduler`` is given; ``top`` keeps only the best rows of each chunk
so a grid larger than memory still sweeps.

The best combination of a sweep is an in-sample choice. :func:`sweep_trials` keeps every
combination's daily returns and :func:`sweep_overfitting` reports, for the best one, the
deflated Sharpe ratio (counting every combination on every pair considered) and the
probability of backtest overfitting (:mod:`titan_lib.backtest.overfitting`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.backtest.book import gate_codes
from titan_lib.backtest.costs import TRADING_DAYS, Costs
from titan_lib.backtest.grid import InvalidCombos, ParameterGrid, make_grid
from titan_lib.backtest.legs import FillPrice, align_legs
from titan_lib.backtest.overfitting import (
    BacktestOverfitting,
    DeflatedSharpe,
    backtest_overfitting,
    deflated_sharpe,
)
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.settings import (
    DEFAULT_INIT_CASH,
    BacktestSettings,
    DateLike,
    settings_dict,
)
from titan_lib.backtest.sizing import HedgeUnits
from titan_lib.backtest.states import decided_states, spread_of, zscore_series
from titan_lib.backtest.stats import STAT_NAMES
from titan_lib.compile_once import compiling_once
from titan_lib.exceptions import DataValidationError, ParameterError

Objective = Literal[
    "sharpe", "sortino", "calmar", "total_return", "cagr", "hit_rate", "final_equity"
]
OBJECTIVES: tuple[str, ...] = (
    "sharpe",
    "sortino",
    "calmar",
    "total_return",
    "cagr",
    "hit_rate",
    "final_equity",
)
"""Statistics a sweep can rank by (higher is better)."""

CHUNK_CELLS = 20_000_000
"""Default chunk: about this many (bar, combination) states, 40 MB of int8 per chunk."""


@dataclass(frozen=True)
class SweepInputs:
    """Everything a chunk needs: arrays of one pair and the validated grid (picklable)."""

    grid: ParameterGrid
    zs: np.ndarray
    gate: np.ndarray
    first: int
    flatten_at_end: bool
    close: np.ndarray
    fill: np.ndarray
    beta: np.ndarray
    size: np.ndarray
    size_mode: int
    hedge_mode: int
    init_cash: float
    costs: Costs
    risk_free: float
    dates: np.ndarray | None = None
    """Dates of the trading bars (``datetime64[D]``), aligned with ``close``."""


def check_objective(objective: str) -> None:
    """Raise :class:`ParameterError` unless ``objective`` is one of :data:`OBJECTIVES`."""
    if objective not in OBJECTIVES:
        raise ParameterError(
            f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}",
            {"parameter": "objective"},
        )


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep tries and which rows it keeps.

    Parameters
    ----------
    grid
        Values to try per parameter: ``entry``, ``exit``, ``stop``, ``max_hold`` and
        ``window`` (rolling z-score) or ``halflife`` (EWMA). Others keep ``base``'s value.
    base
        The rule supplying parameters not in the grid (default :class:`PairRule`).
    invalid
        ``"raise"`` rejects a grid with any combination violating ``exit < entry < stop``;
        ``"drop"`` skips those combinations.
    objective, top
        With both, keep only the ``top`` best combinations by ``objective`` (NaN ranks
        last), chunk by chunk: memory stays bounded for any grid size.
    chunk_size
        Combinations per compiled call; by default about ``CHUNK_CELLS`` bar-states.

    Raises
    ------
    ParameterError
        Any bad setting (empty grid, exit >= entry, unknown objective, ...).
    """

    grid: Mapping[str, Sequence[float] | float]
    base: PairRule = field(default_factory=PairRule)
    invalid: InvalidCombos = "raise"
    objective: Objective | None = None
    top: int | None = None
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        if self.objective is not None:
            check_objective(self.objective)
        top = self.top
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
            raise ParameterError(f"top must be a whole number >= 1, got {top!r}")
        if top is not None and self.objective is None:
            raise ParameterError("top needs an objective to rank by")
        check_chunk_size(self.chunk_size)
        if not isinstance(self.base, PairRule):
            raise ParameterError(f"base must be a PairRule, got {type(self.base).__name__}")
        self.parameter_grid  # noqa: B018 (validates the grid once, and keeps it)

    @cached_property
    def parameter_grid(self) -> ParameterGrid:
        """The validated grid over ``base``."""
        return make_grid(self.grid, self.base, self.invalid)


def sweep(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    beta: float,
    grid: Mapping[str, Sequence[float] | float],
    alpha: float = 0.0,
    base: PairRule | None = None,
    notional: float | None = None,
    target_weight: float | None = None,
    hedge: HedgeUnits = "log",
    costs: Costs | None = None,
    init_cash: float = DEFAULT_INIT_CASH,
    fill: FillPrice = "auto",
    start: DateLike = None,
    end: DateLike = None,
    flatten_at_end: bool = False,
    gate: pl.DataFrame | None = None,
    risk_free: float = 0.0,
    invalid: InvalidCombos = "raise",
    objective: Objective | None = None,
    top: int | None = None,
    chunk_size: int | None = None,
    scheduler: Any = None,
) -> pl.DataFrame:
    """Backtest every combination of a parameter grid on one pair.

    Builds the :class:`SweepSettings` and
    :class:`~titan_lib.backtest.settings.BacktestSettings` of the keywords and calls
    :func:`run_sweep`.

    Parameters
    ----------
    prices, y, x, beta, alpha, hedge, notional, target_weight, costs, init_cash, fill,
    start, end, flatten_at_end, gate, risk_free
        As in :func:`~titan_lib.backtest.backtest_pair` (same convention and costs).
    grid, base, invalid, objective, top, chunk_size
        What is tried and kept, see :class:`SweepSettings` (``base`` defaults to
        :class:`PairRule`).
    scheduler
        ``None`` (run here), a ``distributed.Client``, or a scheduler address: chunks are
        mapped over the cluster's workers.

    Returns
    -------
    polars.DataFrame
        One row per combination: ``entry``, ``exit``, ``stop``, ``max_hold``, the z-score
        parameter (``window`` or ``halflife``) and every statistic of
        :data:`~titan_lib.backtest.stats.STAT_NAMES`.

    Raises
    ------
    ParameterError
        Any bad parameter (empty grid, exit >= entry, negative cost, unknown objective,
        ...), before anything runs.
    """
    settings = SweepSettings(
        grid=grid,
        base=PairRule() if base is None else base,
        invalid=invalid,
        objective=objective,
        top=top,
        chunk_size=chunk_size,
    )
    backtest = BacktestSettings.build(
        notional=notional, target_weight=target_weight, hedge=hedge, costs=costs,
        init_cash=init_cash, fill=fill, start=start, end=end, flatten_at_end=flatten_at_end,
        risk_free=risk_free, engine="numba",
    )  # fmt: skip
    return run_sweep(
        prices, y, x, beta=beta, alpha=alpha, settings=settings, backtest=backtest, gate=gate,
        scheduler=scheduler,
    )  # fmt: skip


def run_sweep(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    beta: float,
    alpha: float = 0.0,
    settings: SweepSettings,
    backtest: BacktestSettings,
    gate: pl.DataFrame | None = None,
    scheduler: Any = None,
) -> pl.DataFrame:
    """Backtest every combination of ``settings.grid`` on one pair under validated
    settings (see :func:`sweep`; ``backtest.engine`` and ``gross_cap`` are not used: the
    sweep runs the compiled accounting of one pair)."""
    inputs = sweep_inputs(
        prices, y, x, beta=beta, alpha=alpha, grid=settings.parameter_grid, settings=backtest,
        gate=gate,
    )  # fmt: skip
    objective, top = settings.objective, settings.top
    bounds = chunk_bounds(inputs, settings.chunk_size)
    if scheduler is None:
        parts = [sweep_chunk(inputs, lo, hi, objective, top) for lo, hi in bounds]
    else:
        parts = _on_cluster(scheduler, inputs, bounds, objective, top)
    table = (
        pl.concat(parts) if parts else sweep_frame(settings.parameter_grid, {}, np.empty((0, 0)))
    )
    if top is not None and objective is not None:
        table = rank(table, objective).head(top)
    return table


def check_chunk_size(chunk_size: int | None) -> None:
    """Raise :class:`ParameterError` unless ``chunk_size`` is ``None`` or a whole number >= 1."""
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ParameterError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")


def chunk_bounds(inputs: SweepInputs, chunk_size: int | None) -> list[tuple[int, int]]:
    """``[lo, hi)`` combination bounds of the chunks (default about ``CHUNK_CELLS`` cells)."""
    step = chunk_size or max(1, CHUNK_CELLS // inputs.close.shape[0])
    size = inputs.grid.size
    return [(lo, min(lo + step, size)) for lo in range(0, size, step)]


def sweep_inputs(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    beta: float,
    alpha: float,
    grid: ParameterGrid,
    settings: BacktestSettings,
    gate: pl.DataFrame | None,
) -> SweepInputs:
    """Check the pair's hedge and prepare the arrays of a sweep."""
    if y == x:
        raise ParameterError(f"a pair needs two different legs, got {y!r} twice")
    for name, value in (("beta", beta), ("alpha", alpha)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ParameterError(f"{name} must be a finite number, got {value!r}")
    sizing = settings.sizing.per_pair(1)[0]
    hedge = settings.sizing.hedge
    first_day, last_day = settings.first_day, settings.last_day
    if last_day is not None:
        prices = prices.filter(pl.col("date") <= last_day)
    legs = align_legs(prices, [y, x], settings.fill)
    first = 0
    if first_day is not None:
        first = int(np.searchsorted(legs.date_array(), np.datetime64(first_day)))
    if legs.n - first < 3:
        raise DataValidationError(
            f"the trading window has {legs.n - first} bars with prices; need at least 3"
        )
    spread = spread_of(legs.close[:, 0], legs.close[:, 1], float(beta), float(alpha), hedge)
    zs = np.vstack([zscore_series(spread, spec) for spec in grid.zscores])
    return SweepInputs(
        grid=grid,
        zs=np.ascontiguousarray(zs),
        gate=gate_codes(gate, legs.dates),
        first=first,
        flatten_at_end=settings.flatten_at_end,
        close=np.ascontiguousarray(legs.close[first:]),
        fill=np.ascontiguousarray(legs.fill[first:]),
        beta=np.array([float(beta)]),
        size=np.array([sizing.value]),
        size_mode=sizing.mode_code,
        hedge_mode=sizing.hedge_code,
        init_cash=settings.init_cash,
        costs=settings.costs,
        risk_free=settings.risk_free,
        dates=legs.date_array()[first:],
    )


def sweep_chunk(
    inputs: SweepInputs, lo: int, hi: int, objective: str | None = None, top: int | None = None
) -> pl.DataFrame:
    """Statistics of combinations ``lo .. hi - 1`` of the grid (the unit of work)."""
    table, _ = chunk_accounts(inputs, lo, hi, keep_returns=False)
    if top is not None and objective is not None:
        table = rank(table, objective).head(top)
    return table


def chunk_accounts(
    inputs: SweepInputs, lo: int, hi: int, *, keep_returns: bool
) -> tuple[pl.DataFrame, np.ndarray]:
    """Statistics of combinations ``lo .. hi - 1`` and, when asked, their daily returns.

    The returns are ``(n - 1, hi - lo)``: ``E_t / E_{t-1} - 1`` of each combination's
    equity on the trading bars (``(0, hi - lo)`` when not kept).
    """
    from titan_lib.backtest.sweep_kernel import sweep_accounts_nb

    combos = inputs.grid.combos(lo, hi)
    costs = inputs.costs
    n = inputs.close.shape[0]
    returns = np.zeros((n - 1 if keep_returns else 0, hi - lo))
    with compiling_once("sweep"):
        states, _ = decided_states(
            inputs.zs,
            combos["z_index"],
            combos["entry"],
            combos["exit"],
            combos["stop"],
            combos["max_hold"],
            inputs.gate,
            inputs.first,
        )
        stats = sweep_accounts_nb(
            states,
            inputs.flatten_at_end,
            inputs.close,
            inputs.fill,
            inputs.beta,
            inputs.size,
            inputs.size_mode,
            inputs.hedge_mode,
            inputs.init_cash,
            costs.commission_rate,
            costs.commission_fixed,
            costs.slippage_rate,
            costs.borrow_daily_rate,
            inputs.risk_free,
            returns,
        )
    return sweep_frame(inputs.grid, combos, stats), returns


def sweep_frame(
    grid: ParameterGrid, combos: Mapping[str, np.ndarray], stats: np.ndarray
) -> pl.DataFrame:
    """The tidy table: parameter columns, then one column per statistic."""
    columns: dict[str, Any] = {
        name: combos.get(name, np.empty(0)) for name in ("entry", "exit", "stop", "max_hold")
    }
    if grid.z_name is not None:
        columns[grid.z_name] = combos.get("z_value", np.empty(0))
    frame = pl.DataFrame({k: pl.Series(k, v, dtype=pl.Float64) for k, v in columns.items()})
    if grid.z_name == "window":
        frame = frame.with_columns(pl.col("window").cast(pl.Int64))
    stat_columns = {
        name: pl.Series(name, stats[:, i] if stats.size else np.empty(0), dtype=pl.Float64)
        for i, name in enumerate(STAT_NAMES)
    }
    return frame.with_columns(**stat_columns).with_columns(pl.col("n_trades").cast(pl.Int64))


def rank(table: pl.DataFrame, objective: str) -> pl.DataFrame:
    """Rows best first by ``objective`` (NaN last; ties keep grid order)."""
    check_objective(objective)
    return table.sort(
        pl.col(objective).fill_nan(None), descending=True, nulls_last=True, maintain_order=True
    )


def best_params(table: pl.DataFrame, objective: str) -> dict[str, Any]:
    """The best row of a sweep table by ``objective``, as a dict.

    Raises
    ------
    ParameterError
        Unknown objective, or no row with a finite objective.
    """
    ranked = rank(table, objective)
    if (
        ranked.is_empty()
        or ranked.get_column(objective).fill_nan(None).null_count() == ranked.height
    ):
        raise ParameterError(f"no combination has a finite {objective}")
    return ranked.row(0, named=True)


@dataclass(frozen=True)
class SweepTrials:
    """Every combination of a sweep as a trial: its statistics and its daily returns.

    Attributes
    ----------
    table
        The sweep table, one row per combination in grid order (as :func:`sweep`).
    dates
        Dates (``datetime64[D]``) of the returns' rows: the trading bars after the first.
    returns
        ``(bars - 1, combinations)`` daily returns ``E_t / E_{t-1} - 1`` of each
        combination's equity; column ``j`` is row ``j`` of ``table``.
    risk_free
        Annual simple risk-free rate of the sweep (charged per day as ``rf / 252``).
    settings
        Record of the :class:`SweepSettings` (``"sweep"``) and the
        :class:`~titan_lib.backtest.settings.BacktestSettings` (``"backtest"``) of the run.
    """

    table: pl.DataFrame
    dates: np.ndarray
    returns: np.ndarray
    risk_free: float
    settings: dict[str, Any] = field(default_factory=dict)

    def excess_returns(self) -> np.ndarray:
        """Daily returns in excess of the risk-free rate, ``r - rf / 252``."""
        return self.returns - self.risk_free / TRADING_DAYS


def sweep_trials(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    beta: float,
    grid: Mapping[str, Sequence[float] | float],
    alpha: float = 0.0,
    base: PairRule | None = None,
    notional: float | None = None,
    target_weight: float | None = None,
    hedge: HedgeUnits = "log",
    costs: Costs | None = None,
    init_cash: float = DEFAULT_INIT_CASH,
    fill: FillPrice = "auto",
    start: DateLike = None,
    end: DateLike = None,
    flatten_at_end: bool = False,
    gate: pl.DataFrame | None = None,
    risk_free: float = 0.0,
    invalid: InvalidCombos = "raise",
    chunk_size: int | None = None,
) -> SweepTrials:
    """:func:`sweep` keeping every combination's daily returns (in this process).

    Parameters are those of :func:`sweep` (no ``top``: every trial is kept). Memory is
    ``8 * bars * combinations`` bytes for the returns.
    """
    settings = SweepSettings(
        grid=grid,
        base=PairRule() if base is None else base,
        invalid=invalid,
        chunk_size=chunk_size,
    )
    backtest = BacktestSettings.build(
        notional=notional, target_weight=target_weight, hedge=hedge, costs=costs,
        init_cash=init_cash, fill=fill, start=start, end=end, flatten_at_end=flatten_at_end,
        risk_free=risk_free, engine="numba",
    )  # fmt: skip
    return run_sweep_trials(
        prices, y, x, beta=beta, alpha=alpha, settings=settings, backtest=backtest, gate=gate
    )


def run_sweep_trials(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    beta: float,
    alpha: float = 0.0,
    settings: SweepSettings,
    backtest: BacktestSettings,
    gate: pl.DataFrame | None = None,
) -> SweepTrials:
    """:func:`run_sweep` keeping every combination's daily returns (``settings.objective``
    and ``top`` are not used: every trial is kept). The trials record both settings."""
    inputs = sweep_inputs(
        prices, y, x, beta=beta, alpha=alpha, grid=settings.parameter_grid, settings=backtest,
        gate=gate,
    )  # fmt: skip
    parts = [
        chunk_accounts(inputs, lo, hi, keep_returns=True)
        for lo, hi in chunk_bounds(inputs, settings.chunk_size)
    ]
    dates = inputs.dates if inputs.dates is not None else np.empty(0, dtype="datetime64[D]")
    return SweepTrials(
        table=pl.concat([table for table, _ in parts]),
        dates=dates[1:],
        returns=np.hstack([returns for _, returns in parts]),
        risk_free=inputs.risk_free,
        settings={"sweep": settings_dict(settings), "backtest": settings_dict(backtest)},
    )


PBO_MIN_BLOCK = 20
"""Fewest bars per CSCV block a sweep's PBO uses; shorter histories get fewer blocks."""


@dataclass(frozen=True)
class SweepOverfitting:
    """How much of a sweep's best combination may be luck.

    The best combination by ``objective`` is an in-sample choice among ``n_combinations``
    trials on this pair, and the pair itself was one of ``n_pairs`` considered (e.g. every
    pair the scan tested): the deflated Sharpe ratio deflates against the best of
    ``n_trials = n_combinations * n_pairs`` skill-less trials. The probability of backtest
    overfitting is computed over this pair's combinations.

    Attributes
    ----------
    objective
        Statistic the best combination maximises.
    best_index
        Row of the best combination in the sweep table (grid order).
    best
        That row, as a dict.
    deflated
        Deflated Sharpe ratio of the best combination (per-period Sharpe ratios).
    overfitting
        CSCV result, or ``None`` when the history is too short for two blocks of
        :data:`PBO_MIN_BLOCK` bars.
    n_combinations, n_pairs, n_trials
        Trials on this pair, pairs considered, and their product.
    """

    objective: str
    best_index: int
    best: dict[str, Any]
    deflated: DeflatedSharpe
    overfitting: BacktestOverfitting | None
    n_combinations: int
    n_pairs: int
    n_trials: int

    @property
    def dsr(self) -> float:
        """The deflated Sharpe ratio of the best combination."""
        return self.deflated.dsr

    @property
    def pbo(self) -> float:
        """The probability of backtest overfitting (NaN without CSCV)."""
        return math.nan if self.overfitting is None else self.overfitting.pbo

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for run results and reports."""
        return {
            "sample": "in-sample",
            "objective": self.objective,
            "best": self.best,
            "deflated_sharpe": self.dsr,
            "sharpe_per_period": self.deflated.sharpe,
            "sr0_per_period": self.deflated.sr0,
            "n_periods": self.deflated.n_periods,
            "n_combinations": self.n_combinations,
            "n_pairs": self.n_pairs,
            "n_trials": self.n_trials,
            "pbo": None if self.overfitting is None else self.overfitting.pbo,
            "pbo_splits": None if self.overfitting is None else self.overfitting.n_splits,
        }


def sweep_overfitting(
    trials: SweepTrials,
    objective: Objective = "sharpe",
    *,
    n_pairs: int = 1,
    n_splits: int = 16,
) -> SweepOverfitting:
    """Deflated Sharpe ratio and PBO of the best combination of a sweep.

    Parameters
    ----------
    trials
        From :func:`sweep_trials`.
    objective
        Statistic the best combination maximises (as :func:`best_params`).
    n_pairs
        Pairs the choice was made among (e.g. the scan's pairs tested): the deflated
        Sharpe ratio counts ``combinations * n_pairs`` trials.
    n_splits
        CSCV blocks; fewer (the largest even number leaving :data:`PBO_MIN_BLOCK` bars a
        block) when the history is short.

    Raises
    ------
    ParameterError
        Unknown objective, ``n_pairs`` below 1, no finite objective, or a best combination
        that never trades (no Sharpe ratio).
    """
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ParameterError(f"n_pairs must be a whole number >= 1, got {n_pairs!r}")
    best = best_params(trials.table, objective)
    values = trials.table.get_column(objective).fill_nan(None).to_numpy()
    index = int(np.flatnonzero(values == best[objective])[0])
    returns = trials.excess_returns()
    n_combinations = returns.shape[1]
    deflated = deflated_sharpe(returns, index, n_trials=n_combinations * n_pairs)
    splits = min(n_splits, 2 * (returns.shape[0] // (2 * PBO_MIN_BLOCK)))
    overfitting = (
        backtest_overfitting(returns, splits) if n_combinations >= 2 and splits >= 2 else None
    )
    return SweepOverfitting(
        objective=objective,
        best_index=index,
        best=best,
        deflated=deflated,
        overfitting=overfitting,
        n_combinations=n_combinations,
        n_pairs=n_pairs,
        n_trials=n_combinations * n_pairs,
    )


def _on_cluster(
    scheduler: Any,
    inputs: SweepInputs,
    bounds: list[tuple[int, int]],
    objective: str | None,
    top: int | None,
) -> list[pl.DataFrame]:
    from distributed import Client

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        shared = client.scatter(inputs, broadcast=True)
        futures = [
            client.submit(sweep_chunk, shared, lo, hi, objective, top, pure=False)
            for lo, hi in bounds
        ]
        return list(client.gather(futures))
    finally:
        if own:
            client.close()
