"""Z-score of a spread: the method settings and the pure-Python arithmetic.

Three methods, all causal (the z-score of bar ``t`` uses spreads up to and including ``t``):

``rolling``
    Mean and standard deviation of the last ``window`` spreads, the current one included.
    The standard deviation is the sample one (``ddof=1``). Undefined for the first
    ``window - 1`` bars.
``ewma``
    Exponentially weighted mean and variance with the ``adjust=False`` recursion::

        first bar:  m = s,  v = 0
        then:       d = s - m_prev
                    m = m_prev + alpha * d
                    v = (1 - alpha) * (v_prev + alpha * d**2)

    ``v`` is the biased (``bias=True``) exponentially weighted variance; the z-score is
    ``(s - m) / sqrt(v)`` with ``m, v`` after the bar. ``alpha = 1 - exp(-ln 2 / halflife)``
    or ``alpha = 2 / (span + 1)``. Undefined until ``min_periods`` bars have been seen. A
    fitted model stores the recursion state (:class:`EwmaState`) at the end of its fitted
    window; evaluation continues from it.
``fixed``
    The mean and sample standard deviation (``ddof=1``) of the spread over the fitted window,
    stored in the model.

A standard deviation at or below ``1e-12 * max(1, |mean|)`` makes the z-score undefined
(NaN): a flat spread gives no signal rather than an infinite one.

Standard library only; :func:`ewma_update` and :func:`zscore_from_moments` are also compiled
by numba in :mod:`titan_lib.signals`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from titan_lib.exceptions import ParameterError

ZScoreMethod = Literal["rolling", "ewma", "fixed"]
ZSCORE_METHODS: tuple[str, ...] = ("rolling", "ewma", "fixed")
MIN_STD_RELATIVE = 1e-12


@dataclass(frozen=True)
class EwmaState:
    """The EWMA recursion after the bar of ``as_of``: mean, variance and bars seen."""

    mean: float
    var: float
    count: int
    as_of: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", float(self.mean))
        object.__setattr__(self, "var", float(self.var))
        if not (math.isfinite(self.mean) and math.isfinite(self.var) and self.var >= 0.0):
            raise ParameterError(
                f"EWMA state needs a finite mean and a finite variance >= 0, got "
                f"mean={self.mean!r}, var={self.var!r}"
            )
        if self.count < 1:
            raise ParameterError(f"EWMA state count must be >= 1, got {self.count}")


@dataclass(frozen=True)
class ZScoreSpec:
    """How the z-score of the spread is computed (see the module docstring).

    Build one with :meth:`rolling`, :meth:`ewma` or :meth:`fixed`.
    """

    method: ZScoreMethod
    window: int | None = None
    halflife: float | None = None
    span: float | None = None
    min_periods: int | None = None
    mean: float | None = None
    std: float | None = None
    state: EwmaState | None = None

    def __post_init__(self) -> None:
        for name in ("halflife", "span", "mean", "std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(value))
        if self.method not in ZSCORE_METHODS:
            raise ParameterError(
                f"unknown z-score method {self.method!r}; use one of {', '.join(ZSCORE_METHODS)}"
            )
        if self.method == "rolling":
            if self.window is None or self.window < 2:
                raise ParameterError(f"rolling z-score needs window >= 2, got {self.window!r}")
        elif self.method == "ewma":
            if (self.halflife is None) == (self.span is None):
                raise ParameterError("EWMA z-score needs exactly one of halflife or span")
            if self.halflife is not None and not self.halflife > 0.0:
                raise ParameterError(f"EWMA halflife must be > 0, got {self.halflife!r}")
            if self.span is not None and not self.span >= 1.0:
                raise ParameterError(f"EWMA span must be >= 1, got {self.span!r}")
            if self.min_periods is None or self.min_periods < 1:
                raise ParameterError(f"EWMA min_periods must be >= 1, got {self.min_periods!r}")
        else:
            if self.mean is None or self.std is None or not math.isfinite(self.mean):
                raise ParameterError("fixed z-score needs a finite mean and std")
            if not (math.isfinite(self.std) and self.std > 0.0):
                raise ParameterError(f"fixed z-score needs std > 0, got {self.std!r}")

    @classmethod
    def rolling(cls, window: int) -> ZScoreSpec:
        """Rolling mean/std over the last ``window`` bars (``ddof=1``)."""
        return cls(method="rolling", window=int(window))

    @classmethod
    def ewma(
        cls,
        *,
        halflife: float | None = None,
        span: float | None = None,
        min_periods: int | None = None,
        state: EwmaState | None = None,
    ) -> ZScoreSpec:
        """EWMA mean/variance (``adjust=False``); ``min_periods`` defaults to the
        rounded-up half-life, or the span."""
        if min_periods is None:
            basis = halflife if halflife is not None else span
            min_periods = max(2, math.ceil(basis)) if basis is not None else None
        return cls(
            method="ewma",
            halflife=None if halflife is None else float(halflife),
            span=None if span is None else float(span),
            min_periods=min_periods,
            state=state,
        )

    @classmethod
    def fixed(cls, mean: float, std: float) -> ZScoreSpec:
        """A fixed mean and standard deviation."""
        return cls(method="fixed", mean=float(mean), std=float(std))

    @property
    def alpha(self) -> float:
        """EWMA smoothing factor (only for ``method == "ewma"``)."""
        return ewma_alpha(self.halflife, self.span)


def ewma_alpha(halflife: float | None, span: float | None) -> float:
    """Smoothing factor: ``1 - exp(-ln 2 / halflife)`` or ``2 / (span + 1)``."""
    if halflife is not None:
        return 1.0 - math.exp(-math.log(2.0) / halflife)
    if span is not None:
        return 2.0 / (span + 1.0)
    raise ParameterError("EWMA needs halflife or span")


def ewma_update(
    mean: float, var: float, count: int, value: float, alpha: float
) -> tuple[float, float, int]:
    """One step of the ``adjust=False`` EWMA mean/variance recursion.

    Returns ``(mean, var, count)`` after ``value``; ``count == 0`` starts the recursion.
    """
    if count == 0:
        return value, 0.0, 1
    delta = value - mean
    return mean + alpha * delta, (1.0 - alpha) * (var + alpha * delta * delta), count + 1


def zscore_from_moments(value: float, mean: float, std: float) -> float:
    """``(value - mean) / std``, NaN when ``std`` is degenerate (see module docstring)."""
    if not std > MIN_STD_RELATIVE * max(1.0, abs(mean)):
        return math.nan
    return (value - mean) / std


def rolling_zscore_at(spreads: Sequence[float], index: int, window: int) -> float:
    """Rolling z-score of ``spreads[index]`` over the ``window`` bars ending there.

    Two-pass mean and sample standard deviation (``ddof=1``); NaN when fewer than
    ``window`` bars are available.
    """
    if index + 1 < window:
        return math.nan
    values = spreads[index + 1 - window : index + 1]
    mean = math.fsum(values) / window
    var = math.fsum((v - mean) * (v - mean) for v in values) / (window - 1)
    return zscore_from_moments(spreads[index], mean, math.sqrt(var))
