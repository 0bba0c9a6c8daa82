"""Regime detection: Markov switching (statsmodels) and realised-volatility regimes.

Labels are ordered by volatility (0 = calmest). Trading uses filtered (causal) quantities
only; see :mod:`titan_lib.regimes.markov` and :mod:`titan_lib.regimes.volatility`.
"""

from titan_lib.regimes.markov import (
    MarkovRegimes,
    RegimeFitWarning,
    fit_markov_model,
    markov_filter,
    markov_regimes,
)
from titan_lib.regimes.returns import log_returns
from titan_lib.regimes.volatility import (
    fit_volatility_model,
    realized_volatility,
    volatility_labels,
    volatility_regimes,
)

__all__ = [
    "MarkovRegimes",
    "RegimeFitWarning",
    "fit_markov_model",
    "fit_volatility_model",
    "log_returns",
    "markov_filter",
    "markov_regimes",
    "realized_volatility",
    "volatility_labels",
    "volatility_regimes",
]
