"""Vectorised signal rules over polars frames, and SignalModel fitting.

- :func:`positions` / :func:`model_positions`: spread, z-score, regime gate and the state
  machine over a price history.
- :func:`zscores`: the z-score alone (rolling, EWMA, fixed).
- :func:`run_state_machine`: the compiled kernel for many parameter combinations at once.
- :func:`fit_signal_model`: freeze a SignalModel from a fitted window.
"""

from titan_lib.signals.fit import fit_signal_model
from titan_lib.signals.frame import pair_prices, spread_expr
from titan_lib.signals.kernel import ewma_zscores, run_state_machine
from titan_lib.signals.rules import gate_codes, gate_regimes, model_positions, positions
from titan_lib.signals.zscore import zscores

__all__ = [
    "ewma_zscores",
    "fit_signal_model",
    "gate_codes",
    "gate_regimes",
    "model_positions",
    "pair_prices",
    "positions",
    "run_state_machine",
    "spread_expr",
    "zscores",
]
