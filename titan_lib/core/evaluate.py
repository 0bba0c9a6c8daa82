"""Evaluate a published SignalModel on recent prices, in pure Python.

:func:`evaluate` aligns the legs (and the gate's market series) on their common dates,
computes the spread, its z-score and the regime, and runs the state machine of
:mod:`titan_lib.core.state_machine` bar by bar. It gives exactly what
:func:`titan_lib.signals.model_positions` gives on the same prices: the same positions and
reasons, z-scores equal to rounding.

Three ways to say where the position stands before the last bar (``position=``):

``None`` (stateless)
    Replay the model over every bar given, starting flat. With an EWMA z-score the
    recursion continues from the model's stored state, so the prices must include the last
    fitted date (``model.fit.end``); bars up to that date get no z-score.
a :class:`SignalState`
    Continue from the state a previous evaluation returned (``Signal.state``): only bars
    after ``state.as_of`` are processed, and that date must be among the prices. Stepping
    day by day this way equals one replay over the whole history.
an ``int`` (-1, 0, +1)
    The position actually held (e.g. from the order ledger). The model is replayed up to the
    bar before the last; the last bar starts from this position (bars held carried over
    when the replay holds the same side, else 0; entries armed).

:func:`signal_path` replays a model from flat and records every bar (the live dashboard's
z-score chart).

Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from titan_lib.core.prices import PriceTail
from titan_lib.core.regime_gate import (
    MarkovRegimeModel,
    VolatilityRegimeModel,
    markov_filter_step,
    markov_label,
    realized_volatility_at,
    volatility_label,
)
from titan_lib.core.signal_model import LegQuantities, SignalModel
from titan_lib.core.state_machine import ACTIONS, GATE_NAMES, GATE_OPEN, REASONS, step
from titan_lib.core.zscore import (
    EwmaState,
    ewma_update,
    rolling_zscore_at,
    zscore_from_moments,
)
from titan_lib.exceptions import DataValidationError, ParameterError

PriceSeries = PriceTail | Sequence[tuple[str, float]]
"""Closes of one symbol: a stored :class:`PriceTail` or ``(iso_date, close)`` pairs."""


@dataclass(frozen=True)
class SignalState:
    """What evaluation carries from one bar to the next, after the bar of ``as_of``.

    ``position`` -1/0/+1, ``held`` bars since entry, ``armed`` whether entries are allowed
    (False after a stop until ``|z| < entry``), ``ewma`` the z-score recursion (EWMA models),
    ``regime_probabilities`` the Hamilton-filtered probabilities (Markov gates).
    """

    as_of: str
    position: int = 0
    held: int = 0
    armed: bool = True
    ewma: EwmaState | None = None
    regime_probabilities: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Signal:
    """The model's answer at the last bar.

    Attributes
    ----------
    model_id, as_of
        The model and the ISO date of the bar evaluated.
    zscore, spread
        Z-score and spread at ``as_of`` (``zscore`` is ``None`` when undefined).
    position, previous_position
        Target position after the bar and the position before it (-1, 0, +1).
    action
        ``enter_long``, ``enter_short``, ``exit``, ``stop`` or ``hold``.
    reason, explanation
        Reason code name (:data:`titan_lib.core.state_machine.REASONS`) and a sentence.
    regime, gate
        Regime label at ``as_of`` (``None`` without a gate or while unknown) and the gate
        (``open``, ``no_entry``, ``flatten``; ``None`` without a gate).
    prices
        The closes of the model's symbols at ``as_of``.
    state
        Pass it back as ``position=`` to evaluate the next bar.
    """

    model_id: str
    as_of: str
    zscore: float | None
    spread: float
    position: int
    previous_position: int
    action: str
    reason: str
    explanation: str
    regime: int | None
    gate: str | None
    prices: dict[str, float]
    state: SignalState

    def leg_quantities(self, model: SignalModel, notional: float) -> LegQuantities:
        """Leg sizes of the target position for a gross ``notional`` at ``as_of`` prices."""
        return model.leg_quantities(
            notional, self.prices[model.y], self.prices[model.x], side=self.position
        )


@dataclass(frozen=True)
class SignalPath:
    """A model replayed bar by bar from flat (what :func:`evaluate` does without a
    ``position``), recorded at every bar.

    Attributes
    ----------
    dates
        ISO dates of the bars, oldest first (the dates common to the model's symbols).
    zscores
        Z-score at each bar; ``None`` while undefined (warm-up, flat spread, and with an
        EWMA z-score the bars up to the model's last fitted date).
    positions
        Target position after each bar (-1, 0, +1).
    """

    dates: tuple[str, ...]
    zscores: tuple[float | None, ...]
    positions: tuple[int, ...]


def signal_path(model: SignalModel, recent_prices: Mapping[str, PriceSeries]) -> SignalPath:
    """Replay ``model`` over every bar of ``recent_prices`` from flat and record each bar.

    The last bar's entries are those of ``evaluate(model, recent_prices)``; the whole path
    equals :func:`titan_lib.signals.model_positions` on the same prices (z-scores to
    rounding). Raises as :func:`evaluate` does.
    """
    path: list[tuple[str, float | None, int]] = []
    _evaluate(model, recent_prices, None, path)
    dates, zscores, positions = zip(*path, strict=True) if path else ((), (), ())
    return SignalPath(dates=tuple(dates), zscores=tuple(zscores), positions=tuple(positions))


def evaluate(
    model: SignalModel,
    recent_prices: Mapping[str, PriceSeries],
    position: int | SignalState | None = None,
) -> Signal:
    """Evaluate ``model`` at the last common date of ``recent_prices``.

    Parameters
    ----------
    model
        A published model.
    recent_prices
        Closes per symbol, oldest first, for every symbol in ``model.symbols`` (the legs and,
        with a market gate, the market series). Only dates present for all of them are used.
    position
        Where the position stands before the last bar: see the module docstring.

    Raises
    ------
    DataValidationError
        A symbol is missing, prices are not positive and finite, dates are not ascending,
        or the history does not reach the date a state continues from.
    """
    return _evaluate(model, recent_prices, position, None)


def _evaluate(
    model: SignalModel,
    recent_prices: Mapping[str, PriceSeries],
    position: int | SignalState | None,
    path: list[tuple[str, float | None, int]] | None,
) -> Signal:
    """:func:`evaluate`, appending ``(date, z-score, position)`` of every bar processed to
    ``path`` when given."""
    dates, closes = _align(model, recent_prices)
    n = len(dates)
    spreads = [model.spread(y, x) for y, x in zip(closes[0], closes[1], strict=True)]
    gate_returns = _gate_returns(model, closes, spreads)
    z_spec = model.zscore
    rules = model.rules
    max_hold = model.max_hold
    gate = model.gate
    markov = gate.model if gate is not None and isinstance(gate.model, MarkovRegimeModel) else None

    override: int | None = None
    if isinstance(position, SignalState):
        start = _index_of(dates, position.as_of, "the state to continue from") + 1
        if start >= n:
            raise DataValidationError(
                f"no prices after the state's date {position.as_of}: nothing to evaluate",
                {"as_of": position.as_of},
            )
        state = position
    else:
        if position is not None and position not in (-1, 0, 1):
            raise ParameterError(f"position must be -1, 0 or +1, got {position!r}")
        override = position
        start = 0
        state = SignalState(as_of="", ewma=z_spec.state if z_spec.method == "ewma" else None)
    ewma = state.ewma
    if ewma is not None and dates[-1] > ewma.as_of:
        _index_of(dates, ewma.as_of, "the EWMA state to continue from")

    pos, held, armed = state.position, state.held, 1 if state.armed else 0
    probs = state.regime_probabilities
    alpha = z_spec.alpha if z_spec.method == "ewma" else 0.0
    min_periods = z_spec.min_periods or 1
    z = math.nan
    regime: int | None = None
    gate_code = GATE_OPEN
    reason = 0
    prev_pos = pos
    held_on_bar = 0
    for i in range(start, n):
        if z_spec.method == "rolling":
            z = rolling_zscore_at(spreads, i, z_spec.window or 0)
        elif z_spec.method == "fixed":
            z = zscore_from_moments(spreads[i], z_spec.mean or 0.0, z_spec.std or 0.0)
        elif ewma is not None and dates[i] <= ewma.as_of:
            z = math.nan  # bars the stored EWMA state already covers
        else:
            m0, v0, c0 = (ewma.mean, ewma.var, ewma.count) if ewma is not None else (0.0, 0.0, 0)
            m, v, c = ewma_update(m0, v0, c0, spreads[i], alpha)
            ewma = EwmaState(mean=m, var=v, count=c, as_of=dates[i])
            z = zscore_from_moments(spreads[i], m, math.sqrt(v)) if c >= min_periods else math.nan
        if gate is not None:
            if markov is not None:
                if i >= 1:
                    probs = markov_filter_step(markov, probs, gate_returns[i])
                regime = None if probs is None else markov_label(probs)
            else:
                vol_model = gate.model
                assert isinstance(vol_model, VolatilityRegimeModel)
                vol = realized_volatility_at(gate_returns, i, vol_model.window)
                regime = volatility_label(vol, vol_model.thresholds)
            gate_code = gate.code(regime)
        if i == n - 1 and override is not None:
            if override != pos:
                held = 0
            pos, armed = override, 1
        prev_pos = pos
        held_on_bar = held + 1 if pos != 0 else 0
        pos, held, armed, reason = step(
            pos, held, armed, z, rules.entry, rules.exit, rules.stop, max_hold, gate_code
        )
        if path is not None:
            path.append((dates[i], None if math.isnan(z) else z, pos))
    last = n - 1
    new_state = SignalState(
        as_of=dates[last],
        position=pos,
        held=held,
        armed=bool(armed),
        ewma=ewma if z_spec.method == "ewma" else None,
        regime_probabilities=probs if markov is not None else None,
    )
    return Signal(
        model_id=model.model_id,
        as_of=dates[last],
        zscore=None if math.isnan(z) else z,
        spread=spreads[last],
        position=pos,
        previous_position=prev_pos,
        action=ACTIONS[reason],
        reason=REASONS[reason],
        explanation=_explain(reason, z, model, held_on_bar, regime),
        regime=regime,
        gate=None if gate is None else GATE_NAMES[gate_code],
        prices={s: closes[k][last] for k, s in enumerate(model.symbols)},
        state=new_state,
    )


def _align(
    model: SignalModel, recent_prices: Mapping[str, PriceSeries]
) -> tuple[list[str], list[list[float]]]:
    """Dates common to all of the model's symbols and the closes there, oldest first."""
    series: list[dict[str, float]] = []
    for symbol in model.symbols:
        if symbol not in recent_prices:
            raise DataValidationError(
                f"prices for {symbol!r} are missing (model {model.model_id[:12]} needs "
                f"{', '.join(model.symbols)})",
                {"symbol": symbol},
            )
        raw = recent_prices[symbol]
        pairs = list(zip(raw.dates, raw.close, strict=True)) if isinstance(raw, PriceTail) else raw
        by_date: dict[str, float] = {}
        previous = ""
        for d, close in pairs:
            if not isinstance(d, str) or d <= previous:
                raise DataValidationError(
                    f"dates of {symbol!r} must be ascending ISO strings without repeats; "
                    f"{d!r} follows {previous!r}",
                    {"symbol": symbol, "date": str(d)},
                )
            value = float(close)
            if not (math.isfinite(value) and value > 0.0):
                raise DataValidationError(
                    f"close of {symbol!r} on {d} must be a positive finite number, got {close!r}",
                    {"symbol": symbol, "date": d},
                )
            by_date[d] = value
            previous = d
        series.append(by_date)
    common = set(series[0]).intersection(*series[1:])
    if not common:
        raise DataValidationError(
            f"prices of {', '.join(model.symbols)} share no date", {"symbols": list(model.symbols)}
        )
    dates = sorted(common)
    try:
        date.fromisoformat(dates[-1])
    except ValueError:
        raise DataValidationError(f"{dates[-1]!r} is not an ISO date (YYYY-MM-DD)") from None
    return dates, [[s[d] for d in dates] for s in series]


def _gate_returns(
    model: SignalModel, closes: list[list[float]], spreads: list[float]
) -> list[float]:
    """Per-bar gate input: market log returns or spread changes (NaN on the first bar)."""
    if model.gate is None:
        return []
    if model.gate.source == "market":
        market = closes[2]
        return [math.nan] + [math.log(market[i] / market[i - 1]) for i in range(1, len(market))]
    return [math.nan] + [spreads[i] - spreads[i - 1] for i in range(1, len(spreads))]


def _index_of(dates: list[str], wanted: str, what: str) -> int:
    lo, hi = 0, len(dates)
    while lo < hi:
        mid = (lo + hi) // 2
        if dates[mid] < wanted:
            lo = mid + 1
        else:
            hi = mid
    if lo == len(dates) or dates[lo] != wanted:
        raise DataValidationError(
            f"prices must include {wanted}, the date of {what}; they cover {dates[0]}..{dates[-1]}",
            {"date": wanted},
        )
    return lo


def _explain(reason: int, z: float, model: SignalModel, held: int, regime: int | None) -> str:
    rules = model.rules
    name = REASONS[reason]
    zs = "undefined" if math.isnan(z) else f"{z:.3f}"
    texts = {
        "hold": f"z {zs}: no rule fires",
        "enter_long": f"z {zs} <= -{rules.entry:g}: long the spread",
        "enter_short": f"z {zs} >= {rules.entry:g}: short the spread",
        "exit": f"z {zs} back within the exit band {rules.exit:g}: close",
        "stop": f"z {zs} beyond the stop {rules.stop:g}: stop out",
        "time_stop": f"held {held} bars >= time stop {model.max_hold:g} bars: close",
        "regime_exit": f"regime {regime} is gated with flatten: close",
        "gate_blocked": f"z {zs} would enter but regime {regime} is gated",
        "no_signal": "z-score undefined (warm-up or flat spread): no change",
        "disarmed": f"z {zs} beyond entry, but entries wait for |z| < {rules.entry:g} after a stop",
    }
    return texts[name]
