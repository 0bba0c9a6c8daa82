"""Evidence on a candidate pair for the publish gate, computed from prices.

- :func:`pair_walk_forward`: the candidate alone, walk-forward: hedge and rule chosen on
  each training window, traded in the next test window (out-of-sample Sharpe and the
  in-sample / out-of-sample degradation).
- :func:`rule_trial_returns`: daily returns of every rule of a grid on every pair
  considered, the trials behind the deflated Sharpe ratio and the probability of backtest
  overfitting (:mod:`titan_lib.backtest.overfitting`).
- :func:`candidate_evidence`: everything the gate needs
  (:class:`~titan_lib.backtest.publish_gate.CandidateEvidence`), with the details stored as
  evidence in run results.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from titan_lib.backtest.book import DateLike
from titan_lib.backtest.costs import Costs
from titan_lib.backtest.grid import GRID_KEYS
from titan_lib.backtest.overfitting import deflated_sharpe, probability_of_backtest_overfitting
from titan_lib.backtest.pair import formation_hedge
from titan_lib.backtest.publish_gate import CandidateEvidence
from titan_lib.backtest.rules import PairRule
from titan_lib.backtest.selection import fixed_pair_selector
from titan_lib.backtest.settings import BacktestSettings
from titan_lib.backtest.sweep import SweepSettings, run_sweep_trials
from titan_lib.backtest.walk_forward import (
    SelectionSettings,
    WalkForwardResult,
    WindowMode,
    WindowSettings,
    run_gate_comparison,
    run_walk_forward,
)
from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.signals.fit import GateSettings

PBO_SPLITS = 16
"""CSCV blocks of the probability of backtest overfitting (Bailey et al. use 16)."""


def pair_walk_forward(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    grid: Mapping[str, Sequence[float] | float],
    base: PairRule | None = None,
    train: int = 504,
    test: int = 126,
    mode: WindowMode = "rolling",
    costs: Costs | None = None,
) -> WalkForwardResult:
    """Walk-forward test of one fixed pair (:func:`~titan_lib.backtest.walk_forward.walk_forward`
    with :func:`~titan_lib.backtest.selection.fixed_pair_selector`): in each window the
    hedge and the rule of ``grid`` are chosen on the training bars; a window whose training
    spread does not mean-revert is not traded."""
    return run_pair_walk_forward(
        prices,
        y,
        x,
        windows=WindowSettings(train=train, test=test, mode=mode),
        sweep=SweepSettings(grid=grid, base=PairRule() if base is None else base, invalid="drop"),
        costs=Costs() if costs is None else costs,
    )


def run_pair_walk_forward(
    prices: pl.DataFrame,
    y: str,
    x: str,
    *,
    windows: WindowSettings,
    sweep: SweepSettings,
    costs: Costs,
) -> WalkForwardResult:
    """:func:`pair_walk_forward` under validated settings: ``sweep`` chooses the rule by
    its objective (the Sharpe ratio when it has none), the default account trades it."""
    objective = sweep.objective or "sharpe"
    return run_walk_forward(
        prices.filter(pl.col("symbol").is_in([y, x])),
        windows=windows,
        selection=SelectionSettings(max_pairs=1, max_qvalue=1.0, half_life=(0.0, math.inf)),
        sweep=replace(sweep, objective=objective),
        backtest=BacktestSettings(costs=costs, gross_cap=1.0, flatten_at_end=True, engine="numba"),
        selector=fixed_pair_selector(y, x),
    )


@dataclass(frozen=True)
class TrialReturns:
    """Daily returns of every trial: ``returns[t, j]`` on ``dates[t]`` of ``trials[j]``.

    ``trials`` has one row per column: ``pair``, ``y``, ``x``, the grid's parameters
    (``entry``, ``exit``, ``stop``, ``max_hold``, ``window`` or ``halflife``) and the hedge
    ratio ``beta`` used.
    """

    dates: list[Any]
    returns: np.ndarray
    trials: pl.DataFrame

    def column(self, pair: str, rule: Mapping[str, float]) -> int:
        """Index of the trial of ``pair`` with the given rule values.

        Raises
        ------
        ParameterError
            No such trial.
        """
        mask = (self.trials.get_column("pair") == pair).to_numpy()
        for key, value in rule.items():
            if key in self.trials.columns:
                values = self.trials.get_column(key).to_numpy()
                mask &= (values == float(value)) | np.isclose(values, float(value), rtol=0.0)
        hits = np.flatnonzero(mask)
        if hits.size == 0:
            raise ParameterError(f"no trial of {pair} with {dict(rule)}")
        return int(hits[0])


def rule_trial_returns(
    prices: pl.DataFrame,
    pairs: Sequence[Mapping[str, Any]],
    grid: Mapping[str, Sequence[float] | float],
    *,
    base: PairRule | None = None,
    costs: Costs | None = None,
    start: DateLike = None,
    end: DateLike = None,
    formation: int | None = None,
) -> TrialReturns:
    """Every rule of ``grid`` on every pair (:func:`~titan_lib.backtest.sweep.sweep_trials`
    per pair, invalid combinations dropped); daily returns side by side.

    ``pairs`` are mappings with ``y``, ``x`` and, unless ``formation`` is given,
    ``hedge_ratio`` and ``intercept`` (as scan rows). With ``formation`` each pair's hedge
    is estimated on the ``formation`` bars before ``start``
    (:func:`~titan_lib.backtest.pair.formation_hedge`), so the trials are out of sample in
    the hedge. Bars where a pair has no return count as a zero return.
    """
    if not pairs:
        raise ParameterError("rule_trial_returns needs at least one pair")
    settings = SweepSettings(grid=grid, base=PairRule() if base is None else base, invalid="drop")
    backtest = BacktestSettings(
        costs=Costs() if costs is None else costs, start=start, end=end, engine="numba"
    )
    columns: list[pl.DataFrame] = []
    tables: list[pl.DataFrame] = []
    for pair in pairs:
        y, x = str(pair["y"]), str(pair["x"])
        if formation is not None:
            fitted = formation_hedge(prices, y, x, formation=formation, start=start)
            beta, alpha, first_day = fitted["beta"], fitted["alpha"], fitted["trading_start"]
        else:
            beta, alpha, first_day = float(pair["hedge_ratio"]), float(pair["intercept"]), start
        trials = run_sweep_trials(
            prices, y, x, beta=beta, alpha=alpha, settings=settings,
            backtest=replace(backtest, start=first_day),
        )  # fmt: skip
        first = sum(t.height for t in tables)
        names = [f"r{first + j}" for j in range(trials.returns.shape[1])]
        frame = pl.DataFrame(trials.returns, schema=names, orient="row")
        columns.append(frame.insert_column(0, pl.Series("date", trials.dates).cast(pl.Date)))
        params = [c for c in GRID_KEYS if c in trials.table.columns]
        tables.append(
            trials.table.select(params).with_columns(
                pair=pl.lit(f"{y}/{x}"), y=pl.lit(y), x=pl.lit(x), beta=pl.lit(beta)
            )
        )
    wide = columns[0]
    for frame in columns[1:]:
        wide = wide.join(frame, on="date", how="full", coalesce=True)
    wide = wide.sort("date").fill_null(0.0)
    matrix = wide.drop("date").to_numpy().astype(np.float64)
    table = pl.concat(tables, how="diagonal_relaxed")
    return TrialReturns(
        wide.get_column("date").to_list(),
        matrix,
        table.select("pair", "y", "x", pl.exclude("pair", "y", "x")),
    )


def overfitting_evidence(
    trials: TrialReturns, best: int, n_trials: int | None = None
) -> dict[str, Any]:
    """Deflated Sharpe ratio of trial ``best`` (over ``n_trials`` trials, at least the
    columns) and the probability of backtest overfitting of the choice among the columns.

    PBO uses :data:`PBO_SPLITS` blocks, fewer (an even number) when the history is short.
    """
    deflated = deflated_sharpe(trials.returns, best, n_trials=n_trials)
    rows = trials.returns.shape[0]
    splits = min(PBO_SPLITS, 2 * (rows // 40))
    pbo = math.nan
    if trials.returns.shape[1] >= 2 and splits >= 2:
        pbo = probability_of_backtest_overfitting(trials.returns, n_splits=splits)
    return {
        "deflated_sharpe": deflated.dsr,
        "n_trials": deflated.n_trials,
        "periods": rows,
        "pbo": pbo,
        "pbo_splits": splits,
    }


def candidate_evidence(
    prices: pl.DataFrame,
    candidate: Mapping[str, Any],
    *,
    rule: PairRule,
    grid: Mapping[str, Sequence[float] | float],
    trials: TrialReturns,
    n_trials: int | None = None,
    gate: GateSettings | None = None,
    train: int = 504,
    test: int = 126,
    mode: WindowMode = "rolling",
    costs: Costs | None = None,
) -> tuple[CandidateEvidence, dict[str, Any]]:
    """The gate's evidence on one candidate, and its details for the run results.

    Parameters
    ----------
    prices
        Long prices of the legs (and the gate's market series), the evidence history.
    candidate
        A scan row: ``y``, ``x``, ``hedge_ratio``, ``intercept``, ``qvalue``,
        ``half_life`` and, when the scan measured it, ``stability``.
    rule
        The rule that would be published (its values must be a trial of ``trials``).
    grid, train, test, mode, costs
        The walk-forward of :func:`pair_walk_forward`.
    trials, n_trials
        Trial returns of every rule and pair considered, and the number of trials for the
        deflated Sharpe ratio (e.g. grid size times pairs tested).
    gate
        The regime gate that would be published: tested with
        :func:`~titan_lib.backtest.walk_forward.gate_comparison`.
    """
    y, x = str(candidate["y"]), str(candidate["x"])
    pair = f"{y}/{x}"
    windows = WindowSettings(train=train, test=test, mode=mode)
    costs = Costs() if costs is None else costs
    wf = run_pair_walk_forward(
        prices, y, x, windows=windows,
        sweep=SweepSettings(grid=grid, base=rule, invalid="drop"), costs=costs,
    )  # fmt: skip
    z = rule.zscore
    chosen = {"entry": rule.entry, "exit": rule.exit, "stop": rule.stop}
    chosen["window" if z.method == "rolling" else "halflife"] = float(
        (z.window if z.method == "rolling" else z.halflife) or math.nan
    )
    best = trials.column(pair, chosen)
    overfitting = overfitting_evidence(trials, best, n_trials)
    details: dict[str, Any] = {
        "pair": pair,
        "walk_forward": {
            "sample": "out-of-sample",
            "windows": wf.windows.height,
            "traded_windows": int(wf.degradation.get("windows", 0)),
            "sharpe": wf.stats.get("sharpe"),
            "total_return": wf.stats.get("total_return"),
            "degradation": wf.degradation,
        },
        "overfitting": overfitting,
    }
    gate_with = gate_without = None
    if gate is not None:
        try:
            comparison = run_gate_comparison(
                prices, y, x, rule=rule, gate=gate, windows=windows,
                backtest=BacktestSettings(costs=costs, flatten_at_end=True, engine="numba"),
            )  # fmt: skip
        except DataValidationError as exc:
            details["regime_gate"] = {"error": exc.message}
        else:
            details["regime_gate"] = comparison.to_dict()
            gate_with = comparison.with_gate["sharpe"]
            gate_without = comparison.without_gate["sharpe"]
    stability = candidate.get("stability")
    if stability is None:
        measured = scan_window_stability(prices, candidate)
        details["stability"] = measured
        stability = measured["fraction_significant"]
    traded = int(wf.degradation.get("windows", 0)) > 0
    evidence = CandidateEvidence(
        qvalue=candidate.get("qvalue"),
        hedge_ratio=candidate.get("hedge_ratio"),
        half_life=candidate.get("half_life"),
        stability=stability,
        oos_sharpe=wf.stats.get("sharpe") if traded else None,
        is_sharpe=wf.degradation.get("in_sample"),
        oos_mean_sharpe=wf.degradation.get("out_of_sample"),
        deflated_sharpe=overfitting["deflated_sharpe"],
        pbo=overfitting["pbo"],
        has_gate=gate is not None,
        gate_sharpe_with=gate_with,
        gate_sharpe_without=gate_without,
    )
    return evidence, details


def scan_window_stability(prices: pl.DataFrame, candidate: Mapping[str, Any]) -> dict[str, Any]:
    """Sub-period Engle-Granger stability of a scan row's pair on the scan's window
    (``start``..``end`` of the row when given), on log prices as the scan tests them.

    Returns :meth:`~titan_lib.pairs.stability.PairStability.to_dict` (``fraction_significant``,
    ``max_hedge_drift``, the periods ...) without the per-period table.
    """
    from titan_lib.pairs.stability import pair_stability
    from titan_lib.signals.frame import pair_prices

    y, x = str(candidate["y"]), str(candidate["x"])
    legs = pair_prices(prices, [y, x])
    if candidate.get("start") is not None and candidate.get("end") is not None:
        first, last = (date.fromisoformat(str(candidate[k])[:10]) for k in ("start", "end"))
        legs = legs.filter(pl.col("date").is_between(pl.lit(first), pl.lit(last)))
    result = pair_stability(
        np.log(legs.get_column(y).to_numpy()),
        np.log(legs.get_column(x).to_numpy()),
        dates=legs.get_column("date"),
    )
    summary = {k: v for k, v in result.to_dict().items() if k != "periods"}
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in summary.items()
    }
