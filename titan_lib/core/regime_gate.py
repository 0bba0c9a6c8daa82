"""The regime gate of a served model, evaluated causally with the standard library.

A gate holds a regime model frozen at fit time and the regimes in which the model may not
open positions. Regimes are numbered by volatility: label 0 is the calmest.

Gate input is a return series, one per bar: the log returns ``ln(P_t / P_{t-1})`` of a
market series (``source="market"``, e.g. the ``SP500`` index of the bundled sample) or the
spread changes ``s_t - s_{t-1}`` (``source="spread"``). The first bar has no return, so its
regime is unknown. An unknown regime blocks new entries but never flattens a position.

Regime models:

:class:`VolatilityRegimeModel`
    Realised volatility at bar ``t`` is the sample standard deviation (``ddof=1``) of the
    last ``window`` returns, annualised by ``sqrt(252)``. Its label is the number of frozen
    thresholds it reaches (``vol >= threshold``), so ``len(thresholds) + 1`` regimes.
:class:`MarkovRegimeModel`
    A Gaussian Markov-switching model (mean and variance switch). The regime is the argmax
    of the Hamilton-filtered probabilities (ties go to the calmer regime). The filter starts
    from ``initial`` at the first return it is given and runs forward only.
"""

from __future__ import annotations

import math
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass
from typing import Literal

from titan_lib.core.state_machine import GATE_FLATTEN, GATE_NO_ENTRY, GATE_OPEN
from titan_lib.exceptions import ParameterError

ANNUALIZATION_DAYS = 252
GateSource = Literal["market", "spread"]
GATE_SOURCES: tuple[str, ...] = ("market", "spread")
_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class VolatilityRegimeModel:
    """Realised-volatility regimes with thresholds frozen at fit time.

    Attributes
    ----------
    window
        Returns in the realised-volatility window.
    thresholds
        Ascending annualised-volatility thresholds separating the regimes.
    quantiles
        The quantiles of the fitted window's realised volatility the thresholds were taken
        at (documentation of how they were chosen; not used to evaluate).
    """

    window: int
    thresholds: tuple[float, ...]
    quantiles: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "quantiles", tuple(float(q) for q in self.quantiles))
        if self.window < 2:
            raise ParameterError(f"volatility window must be >= 2 returns, got {self.window}")
        if not self.thresholds:
            raise ParameterError("volatility regimes need at least one threshold")
        if any(not math.isfinite(t) for t in self.thresholds) or list(self.thresholds) != sorted(
            self.thresholds
        ):
            raise ParameterError(
                f"volatility thresholds must be finite and ascending, got {self.thresholds}"
            )

    @property
    def k_regimes(self) -> int:
        """Number of regimes."""
        return len(self.thresholds) + 1


@dataclass(frozen=True)
class MarkovRegimeModel:
    """A fitted Gaussian Markov-switching model of returns, regimes ordered by variance.

    Attributes
    ----------
    means, variances
        Per-regime mean and variance of the return, in the units of the returns it was
        fitted on (log returns, not percent).
    transition
        Row-stochastic transition matrix: ``transition[i][j] = P(s_t = j | s_{t-1} = i)``.
    initial
        Regime probabilities before the first return (the ergodic ones at fit time).
    """

    means: tuple[float, ...]
    variances: tuple[float, ...]
    transition: tuple[tuple[float, ...], ...]
    initial: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "means", tuple(float(v) for v in self.means))
        object.__setattr__(self, "variances", tuple(float(v) for v in self.variances))
        object.__setattr__(self, "initial", tuple(float(v) for v in self.initial))
        object.__setattr__(
            self, "transition", tuple(tuple(float(v) for v in row) for row in self.transition)
        )
        k = len(self.means)
        if k < 2 or len(self.variances) != k or len(self.initial) != k:
            raise ParameterError("Markov regimes need k >= 2 means, variances and initial probs")
        if len(self.transition) != k or any(len(row) != k for row in self.transition):
            raise ParameterError(f"Markov transition matrix must be {k} x {k}")
        if any(not (math.isfinite(v) and v > 0.0) for v in self.variances):
            raise ParameterError(f"Markov variances must be finite and > 0, got {self.variances}")
        for row in (*self.transition, self.initial):
            if any(not (math.isfinite(p) and p >= 0.0) for p in row) or abs(sum(row) - 1.0) > 1e-8:
                raise ParameterError(f"Markov probabilities must sum to 1, got {row}")
        if list(self.variances) != sorted(self.variances):
            raise ParameterError("Markov regimes must be ordered by variance (label 0 calmest)")

    @property
    def k_regimes(self) -> int:
        """Number of regimes."""
        return len(self.means)


RegimeModel = VolatilityRegimeModel | MarkovRegimeModel


@dataclass(frozen=True)
class RegimeGate:
    """No new entries while the regime is in ``blocked``; optionally flatten there too.

    Attributes
    ----------
    model
        The frozen regime model.
    blocked
        Regime labels in which no new position is opened.
    flatten
        Close open positions when the regime switches into a blocked one.
    source
        ``"market"`` (returns of ``market_symbol``) or ``"spread"`` (spread changes).
    market_symbol
        The market series' symbol when ``source == "market"``.
    """

    model: RegimeModel
    blocked: tuple[int, ...]
    flatten: bool = False
    source: GateSource = "market"
    market_symbol: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocked", tuple(sorted({int(b) for b in self.blocked})))
        if self.source not in GATE_SOURCES:
            raise ParameterError(f"gate source must be 'market' or 'spread', got {self.source!r}")
        if self.source == "market" and not self.market_symbol:
            raise ParameterError("a market regime gate needs market_symbol (e.g. 'SP500')")
        if self.source == "spread" and self.market_symbol is not None:
            raise ParameterError("a spread regime gate takes no market_symbol")
        k = self.model.k_regimes
        if not self.blocked or any(not 0 <= b < k for b in self.blocked):
            raise ParameterError(
                f"blocked regimes must be a non-empty subset of 0..{k - 1}, got {self.blocked}"
            )

    @property
    def kind(self) -> Literal["volatility", "markov"]:
        """``"volatility"`` or ``"markov"``."""
        return "volatility" if isinstance(self.model, VolatilityRegimeModel) else "markov"

    def code(self, regime: int | None) -> int:
        """Gate code of a bar in ``regime`` (see :mod:`titan_lib.core.state_machine`)."""
        if regime is None:
            return GATE_NO_ENTRY
        if regime in self.blocked:
            return GATE_FLATTEN if self.flatten else GATE_NO_ENTRY
        return GATE_OPEN


def realized_volatility_at(returns: Sequence[float], index: int, window: int) -> float:
    """Annualised realised volatility of the ``window`` returns ending at ``index``.

    Sample standard deviation (``ddof=1``) times ``sqrt(252)``; NaN when fewer returns exist
    or any of them is NaN.
    """
    if index + 1 < window or index < 0:
        return math.nan
    values = returns[index + 1 - window : index + 1]
    if any(math.isnan(v) for v in values):
        return math.nan
    mean = math.fsum(values) / window
    var = math.fsum((v - mean) * (v - mean) for v in values) / (window - 1)
    return math.sqrt(var * ANNUALIZATION_DAYS)


def volatility_label(vol: float, thresholds: Sequence[float]) -> int | None:
    """Number of thresholds ``vol`` reaches; ``None`` when ``vol`` is NaN."""
    if math.isnan(vol):
        return None
    return sum(1 for t in thresholds if vol >= t)


def hamilton_step(
    previous: Sequence[float],
    predict: bool,
    value: float,
    means: Sequence[float],
    variances: Sequence[float],
    transition: Sequence[Sequence[float]],
    out: MutableSequence[float],
) -> None:
    """One Hamilton filter step of a Gaussian Markov-switching model, written into ``out``.

    Written in plain Python on indexable sequences so that the Lambda runs it on tuples and
    lists as is and :mod:`titan_lib.regimes.kernels` compiles the very same function with
    numba for whole histories: the two filters cannot drift apart.

    Parameters
    ----------
    previous
        With ``predict``: the filtered probabilities of the bar before, pushed through
        ``transition``. Without: the prior of this bar itself (e.g. the model's initial
        probabilities at the first return).
    predict
        Whether ``previous`` still needs the transition step.
    value
        The return observed at this bar.
    means, variances
        Per-regime mean and variance of the return.
    transition
        ``transition[i][j] = P(s_t = j | s_{t-1} = i)``.
    out
        Receives ``P(s_t = j | returns up to t)``, ``len(means)`` values; must not be
        ``previous``. Works in log space, so no density underflows.
    """
    k = len(means)
    top = -math.inf
    for j in range(k):
        if predict:
            prior = 0.0
            for i in range(k):
                prior += previous[i] * transition[i][j]
        else:
            prior = previous[j]
        dev = value - means[j]
        var = variances[j]
        log_prior = math.log(prior) if prior > 0.0 else -math.inf
        log_joint = log_prior - 0.5 * (_LOG_2PI + math.log(var) + dev * dev / var)
        out[j] = log_joint
        if log_joint > top:
            top = log_joint
    total = 0.0
    for j in range(k):
        out[j] = math.exp(out[j] - top)
        total += out[j]
    for j in range(k):
        out[j] = out[j] / total


def markov_filter_step(
    model: MarkovRegimeModel, previous: Sequence[float] | None, value: float
) -> tuple[float, ...]:
    """One Hamilton filter step (:func:`hamilton_step`): regime probabilities after
    observing ``value``.

    ``previous`` are the filtered probabilities of the bar before (``None`` at the first
    return: the prior is ``model.initial``).
    """
    out = [0.0] * model.k_regimes
    if previous is None:
        hamilton_step(
            model.initial, False, value, model.means, model.variances, model.transition, out
        )
    else:
        hamilton_step(previous, True, value, model.means, model.variances, model.transition, out)
    return tuple(out)


def markov_label(probabilities: Sequence[float]) -> int:
    """The most probable regime; ties go to the lower (calmer) label."""
    best = 0
    for j in range(1, len(probabilities)):
        if probabilities[j] > probabilities[best]:
            best = j
    return best
