"""Parameter sweeps of one pair: the whole grid in compiled, parallel chunks.

The sweep runs outside vectorbt for speed, with the same accounting as
:func:`~titan_lib.backtest.backtest_pair` (its total returns equal vectorbt's; a test
checks every combination). Chunks of the grid run one after another, or spread over a
Dask cluster when ``scheduler`` is given; ``top`` keeps only the best rows of each chunk
so a grid larger than memory still sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from titan_lib.backtest.book import DateLike, book_settings, gate_codes
from titan_lib.backtest.costs import Costs
from titan_lib.backtest.grid import InvalidCombos, ParameterGrid, make_grid
from titan_lib.backtest.legs import FillPrice, align_legs
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.sizing import HedgeUnits
from titan_lib.backtest.states import decided_states, spread_of, zscore_series
from titan_lib.backtest.stats import STAT_NAMES
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


def check_objective(objective: str) -> None:
    """Raise :class:`ParameterError` unless ``objective`` is one of :data:`OBJECTIVES`."""
    if objective not in OBJECTIVES:
        raise ParameterError(
            f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}",
            {"parameter": "objective"},
        )


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
    init_cash: float = 1_000_000.0,
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

    Parameters
    ----------
    prices, y, x, beta, alpha, hedge, notional, target_weight, costs, init_cash, fill,
    start, end, flatten_at_end, gate, risk_free
        As in :func:`~titan_lib.backtest.backtest_pair` (same convention and costs).
    grid
        Values to try per parameter: ``entry``, ``exit``, ``stop``, ``max_hold`` and
        ``window`` (rolling z-score) or ``halflife`` (EWMA). Others keep ``base``'s value.
    base
        The rule supplying parameters not in the grid (default :class:`PairRule`).
    invalid
        ``"raise"`` (default) rejects a grid with any combination violating
        ``exit < entry < stop``; ``"drop"`` skips those combinations.
    objective, top
        With both, keep only the ``top`` best combinations by ``objective`` (NaN ranks
        last), chunk by chunk: memory stays bounded for any grid size.
    chunk_size
        Combinations per compiled call; by default about ``CHUNK_CELLS`` bar-states.
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
    if objective is not None:
        check_objective(objective)
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise ParameterError(f"top must be a whole number >= 1, got {top!r}")
    if top is not None and objective is None:
        raise ParameterError("top needs an objective to rank by")
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ParameterError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    base = PairRule() if base is None else base
    if not isinstance(base, PairRule):
        raise ParameterError(f"base must be a PairRule, got {type(base).__name__}")
    parameter_grid = make_grid(grid, base, invalid)
    inputs = sweep_inputs(
        prices,
        y,
        x,
        beta=beta,
        alpha=alpha,
        grid=parameter_grid,
        notional=notional,
        target_weight=target_weight,
        hedge=hedge,
        costs=costs,
        init_cash=init_cash,
        fill=fill,
        start=start,
        end=end,
        flatten_at_end=flatten_at_end,
        gate=gate,
        risk_free=risk_free,
    )
    step = chunk_size or max(1, CHUNK_CELLS // inputs.close.shape[0])
    bounds = [
        (lo, min(lo + step, parameter_grid.size)) for lo in range(0, parameter_grid.size, step)
    ]
    if scheduler is None:
        parts = [sweep_chunk(inputs, lo, hi, objective, top) for lo, hi in bounds]
    else:
        parts = _on_cluster(scheduler, inputs, bounds, objective, top)
    table = pl.concat(parts) if parts else sweep_frame(parameter_grid, {}, np.empty((0, 0)))
    if top is not None and objective is not None:
        table = rank(table, objective).head(top)
    return table


def sweep_inputs(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    beta: float,
    alpha: float,
    grid: ParameterGrid,
    notional: float | None,
    target_weight: float | None,
    hedge: HedgeUnits,
    costs: Costs | None,
    init_cash: float,
    fill: FillPrice,
    start: DateLike,
    end: DateLike,
    flatten_at_end: bool,
    gate: pl.DataFrame | None,
    risk_free: float,
) -> SweepInputs:
    """Validate the run settings and prepare the arrays of a sweep."""
    if y == x:
        raise ParameterError(f"a pair needs two different legs, got {y!r} twice")
    for name, value in (("beta", beta), ("alpha", alpha)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ParameterError(f"{name} must be a finite number, got {value!r}")
    settings = book_settings(
        1,
        allocation=target_weight,
        notional=notional,
        hedge=hedge,
        costs=costs,
        init_cash=init_cash,
        gross_cap=math.inf,
        fill=fill,
        start=start,
        end=end,
        flatten_at_end=flatten_at_end,
        risk_free=risk_free,
        engine="numba",
    )
    if settings.end is not None:
        prices = prices.filter(pl.col("date") <= settings.end)
    legs = align_legs(prices, [y, x], settings.fill)
    first = 0
    if settings.start is not None:
        first = int(np.searchsorted(legs.date_array(), np.datetime64(settings.start)))
    if legs.n - first < 3:
        raise DataValidationError(
            f"the trading window has {legs.n - first} bars with prices; need at least 3"
        )
    spread = spread_of(legs.close[:, 0], legs.close[:, 1], float(beta), float(alpha), hedge)
    zs = np.vstack([zscore_series(spread, spec) for spec in grid.zscores])
    sizing = settings.sizing[0]
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
    )


def sweep_chunk(
    inputs: SweepInputs, lo: int, hi: int, objective: str | None = None, top: int | None = None
) -> pl.DataFrame:
    """Statistics of combinations ``lo .. hi - 1`` of the grid (the unit of work)."""
    from titan_lib.backtest.sweep_kernel import sweep_accounts_nb

    combos = inputs.grid.combos(lo, hi)
    costs = inputs.costs
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
    )
    table = sweep_frame(inputs.grid, combos, stats)
    if top is not None and objective is not None:
        table = rank(table, objective).head(top)
    return table


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
