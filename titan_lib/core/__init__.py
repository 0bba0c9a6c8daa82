"""Core model objects and pure-Python production logic.

Standard library only: the Lambda package imports this package, so numpy, pandas,
polars, statsmodels and vectorbt are never imported here, directly or indirectly.
``tests/test_core_imports.py`` enforces it.
"""

from titan_lib.core.evaluate import Signal, SignalPath, SignalState, evaluate, signal_path
from titan_lib.core.model_registry import (
    PublishedModel,
    PublishResult,
    Retirement,
    get_model,
    list_model_ids,
    list_models,
    publish,
    retire,
    retirement,
)
from titan_lib.core.prices import PriceTail, latest_prices, price_tail_key
from titan_lib.core.regime_gate import MarkovRegimeModel, RegimeGate, VolatilityRegimeModel
from titan_lib.core.signal_model import (
    SIGNAL_MODEL_SCHEMA_VERSION,
    FitSummary,
    LegQuantities,
    Provenance,
    SignalModel,
    SignalRules,
)
from titan_lib.core.state_machine import REASONS
from titan_lib.core.zscore import EwmaState, ZScoreSpec

__all__ = [
    "REASONS",
    "SIGNAL_MODEL_SCHEMA_VERSION",
    "EwmaState",
    "FitSummary",
    "LegQuantities",
    "MarkovRegimeModel",
    "PriceTail",
    "Provenance",
    "PublishResult",
    "PublishedModel",
    "RegimeGate",
    "Retirement",
    "Signal",
    "SignalModel",
    "SignalPath",
    "SignalRules",
    "SignalState",
    "VolatilityRegimeModel",
    "ZScoreSpec",
    "evaluate",
    "get_model",
    "latest_prices",
    "list_model_ids",
    "list_models",
    "price_tail_key",
    "publish",
    "retire",
    "retirement",
    "signal_path",
]
