"""Freeze a SignalModel from a fitted window of a pair."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Literal

import polars as pl

from titan_lib.core.regime_gate import GateSource, RegimeGate, RegimeModel
from titan_lib.core.signal_model import (
    FitSummary,
    PriceTransform,
    Provenance,
    SignalModel,
    SignalRules,
)
from titan_lib.core.zscore import EwmaState, ZScoreSpec, ewma_update
from titan_lib.exceptions import DataValidationError, ParameterError
from titan_lib.regimes.markov import fit_markov_model
from titan_lib.regimes.volatility import fit_volatility_model
from titan_lib.signals.frame import pair_prices, spread_expr


@dataclass(frozen=True)
class GateSettings:
    """Which regime gate to fit, and how it gates.

    ``kind="volatility"`` freezes the ``quantiles`` of realised volatility (``window``
    returns) over the fitted window; ``kind="markov"`` fits a ``k_regimes`` Markov-switching
    model there. ``blocked`` regimes get no new entries; ``flatten`` also closes positions.
    """

    kind: Literal["volatility", "markov"]
    blocked: tuple[int, ...]
    flatten: bool = False
    source: GateSource = "market"
    market_symbol: str | None = "SP500"
    window: int = 21
    quantiles: tuple[float, ...] = (0.75,)
    k_regimes: int = 2


def fit_signal_model(
    prices: pl.DataFrame,
    *,
    y: str,
    x: str,
    beta: float,
    start: date | str,
    end: date | str,
    zscore: ZScoreSpec | Literal["fixed"],
    rules: SignalRules,
    alpha: float = 0.0,
    transform: PriceTransform = "log",
    pvalue: float | None = None,
    half_life: float | None = None,
    gate: GateSettings | None = None,
    run_id: str | None = None,
    code_version: str | None = None,
) -> SignalModel:
    """Build the model served for ``(y, x)`` from its fitted window ``start..end``.

    The hedge (``beta``, ``alpha``), ``pvalue`` and ``half_life`` come from the pair
    engine's fit on the same window. This computes the spread statistics there, the z-score
    state at ``end`` (EWMA recursion state; mean/std for ``zscore="fixed"``) and the regime
    gate's frozen parameters, all from data in the window only.

    Parameters
    ----------
    prices
        Long or wide prices with both legs (and the gate's market series).
    zscore
        A rolling or EWMA spec (any EWMA state in it is replaced), or ``"fixed"``.
    """
    first, last = _iso(start), _iso(end)
    symbols = [y, x]
    if gate is not None and gate.source == "market":
        if not gate.market_symbol:
            raise ParameterError("a market gate needs market_symbol")
        symbols.append(gate.market_symbol)
    frame = (
        pair_prices(prices, symbols)
        .filter(pl.col("date").is_between(date.fromisoformat(first), date.fromisoformat(last)))
        .with_columns(spread_expr(y, x, beta, alpha, transform))
    )
    if frame.height < 3:
        raise DataValidationError(
            f"fit window {first}..{last} holds {frame.height} common dates of {y}, {x}",
            {"start": first, "end": last},
        )
    spreads = frame.get_column("spread").to_list()
    dates = [d.isoformat() for d in frame.get_column("date").to_list()]
    mean = math.fsum(spreads) / len(spreads)
    std = math.sqrt(math.fsum((s - mean) ** 2 for s in spreads) / (len(spreads) - 1))
    if zscore == "fixed":
        spec = ZScoreSpec.fixed(mean, std)
    elif zscore.method == "ewma":
        m, v, c = 0.0, 0.0, 0
        for s in spreads:
            m, v, c = ewma_update(m, v, c, s, zscore.alpha)
        spec = ZScoreSpec(
            method="ewma",
            halflife=zscore.halflife,
            span=zscore.span,
            min_periods=zscore.min_periods,
            state=EwmaState(mean=m, var=v, count=c, as_of=dates[-1]),
        )
    else:
        spec = zscore
    regime_gate = None if gate is None else fit_gate(frame, gate)
    if code_version is None:
        code_version = _package_version()
    return SignalModel(
        y=y,
        x=x,
        beta=beta,
        alpha=alpha,
        transform=transform,
        zscore=spec,
        rules=rules,
        fit=FitSummary(
            start=dates[0],
            end=dates[-1],
            nobs=len(dates),
            pvalue=pvalue,
            half_life=half_life,
            spread_mean=mean,
            spread_std=std,
        ),
        gate=regime_gate,
        provenance=Provenance(code_version=code_version, run_id=run_id),
    )


def fit_gate(frame: pl.DataFrame, gate: GateSettings) -> RegimeGate:
    """Freeze a regime gate on ``frame`` (an aligned pair frame with ``spread`` and, for a
    market gate, the market's closes): every row is fitting data, so pass the fit window
    only."""
    if gate.source == "market":
        market = pl.col(gate.market_symbol or "")
        ret = (market / market.shift(1)).log()
    else:
        ret = pl.col("spread") - pl.col("spread").shift(1)
    returns = frame.select("date", ret.alias("return")).slice(1)
    model: RegimeModel
    if gate.kind == "volatility":
        model = fit_volatility_model(returns, window=gate.window, quantiles=gate.quantiles)
    elif gate.kind == "markov":
        model = fit_markov_model(returns, gate.k_regimes)
    else:
        raise ParameterError(f"gate kind must be 'volatility' or 'markov', got {gate.kind!r}")
    return RegimeGate(
        model=model,
        blocked=tuple(gate.blocked),
        flatten=gate.flatten,
        source=gate.source,
        market_symbol=gate.market_symbol if gate.source == "market" else None,
    )


def _package_version() -> str:
    """The installed titan-lib version, the default code version of a model."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"titan-lib {version('titan-lib')}"
    except PackageNotFoundError:
        return "titan-lib (not installed)"


def _iso(value: date | str) -> str:
    try:
        return (
            value.isoformat() if isinstance(value, date) else date.fromisoformat(value).isoformat()
        )
    except ValueError:
        raise ParameterError(f"not an ISO date: {value!r}") from None
