"""The signal rules over a price history: spread -> z-score -> regime gate -> positions.

The state machine is :mod:`titan_lib.core.state_machine` (documented there), run by the
compiled kernel :func:`titan_lib.signals.kernel.run_state_machine`. The regime of a bar uses
returns up to that bar only; see :mod:`titan_lib.core.regime_gate` for the gate input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from titan_lib.core.regime_gate import MarkovRegimeModel, RegimeGate
from titan_lib.core.signal_model import PriceTransform, SignalModel, SignalRules
from titan_lib.core.state_machine import (
    GATE_FLATTEN,
    GATE_NAMES,
    GATE_NO_ENTRY,
    GATE_OPEN,
    REASONS,
)
from titan_lib.core.zscore import ZScoreSpec
from titan_lib.exceptions import ParameterError
from titan_lib.regimes.markov import markov_filter
from titan_lib.regimes.volatility import volatility_labels
from titan_lib.signals.frame import pair_prices, spread_expr
from titan_lib.signals.kernel import run_state_machine
from titan_lib.signals.zscore import as_numpy, zscores


def gate_codes(regime: pl.Series, blocked: Sequence[int], flatten: bool) -> np.ndarray:
    """Gate code per bar: unknown regime blocks entries; a blocked one also flattens
    when ``flatten``."""
    blocked_list = [int(b) for b in blocked]
    codes = np.where(
        regime.is_null().to_numpy(),
        GATE_NO_ENTRY,
        np.where(
            regime.is_in(blocked_list).fill_null(False).to_numpy(),
            GATE_FLATTEN if flatten else GATE_NO_ENTRY,
            GATE_OPEN,
        ),
    )
    return codes.astype(np.int8)


def gate_regimes(frame: pl.DataFrame, gate: RegimeGate) -> pl.Series:
    """Regime label per bar of an aligned pair frame (with ``spread``) under a frozen gate."""
    if gate.source == "market":
        market = pl.col(gate.market_symbol or "")
        ret = (market / market.shift(1)).log()
    else:
        ret = pl.col("spread") - pl.col("spread").shift(1)
    returns = frame.select("date", ret.fill_null(float("nan")).alias("return"))
    if isinstance(gate.model, MarkovRegimeModel):
        labels = markov_filter(returns, gate.model)
    else:
        labels = volatility_labels(returns, gate.model)
    return labels.get_column("regime")


def positions(
    prices: pl.DataFrame,
    *,
    y: str,
    x: str,
    beta: float,
    zscore: ZScoreSpec,
    rules: SignalRules,
    alpha: float = 0.0,
    transform: PriceTransform = "log",
    half_life: float | None = None,
    gate: RegimeGate | None = None,
    regimes: pl.DataFrame | None = None,
    blocked: Sequence[int] = (),
    flatten: bool = False,
) -> pl.DataFrame:
    """Positions of the pair rules over a price history, one row per common date.

    Parameters
    ----------
    prices
        Long or wide prices holding ``y``, ``x`` (and the gate's market symbol).
    y, x, beta, alpha, transform
        The spread ``f(y) - beta f(x) - alpha``.
    zscore
        Z-score method (:class:`~titan_lib.core.zscore.ZScoreSpec`).
    rules
        Thresholds and time stop; the time stop needs ``half_life`` (bars).
    gate
        A frozen regime gate (as a served model has), evaluated on these prices.
    regimes, blocked, flatten
        Alternatively, precomputed regime labels (``date``, ``regime``; e.g. from a
        walk-forward :func:`~titan_lib.regimes.markov_regimes`) with the labels that block
        entries and whether to flatten in them. Dates without a label block entries.

    Returns
    -------
    pl.DataFrame
        ``date``, the closes, ``spread``, ``z``, ``regime`` and ``gate`` (when gated),
        ``position`` (Int8: -1, 0, +1 after the bar) and ``reason`` (why it is what it is;
        :data:`titan_lib.core.state_machine.REASONS`).
    """
    if gate is not None and regimes is not None:
        raise ParameterError("give either a frozen gate or precomputed regimes, not both")
    symbols = [y, x]
    if gate is not None and gate.market_symbol is not None:
        symbols.append(gate.market_symbol)
    frame = pair_prices(prices, symbols).with_columns(spread_expr(y, x, beta, alpha, transform))
    z = zscores(frame.get_column("spread"), zscore, frame.get_column("date"))
    frame = frame.with_columns(z.alias("z"))
    codes: np.ndarray | None = None
    if gate is not None:
        regime = gate_regimes(frame, gate)
        codes = gate_codes(regime, gate.blocked, gate.flatten)
    elif regimes is not None:
        if not blocked:
            raise ParameterError("precomputed regimes need the blocked labels")
        labels = frame.select("date").join(
            regimes.select("date", pl.col("regime").cast(pl.Int64)), on="date", how="left"
        )
        regime = labels.get_column("regime")
        codes = gate_codes(regime, blocked, flatten)
    max_hold = rules.max_hold(half_life)
    n = frame.height
    pos, reasons = run_state_machine(
        as_numpy(z).reshape(n, 1),
        np.zeros(1, dtype=np.int64),
        np.array([rules.entry]),
        np.array([rules.exit]),
        np.array([rules.stop]),
        np.array([max_hold]),
        (codes if codes is not None else np.zeros(n, dtype=np.int8)).reshape(n, 1),
        np.zeros(1, dtype=np.int64),
    )
    extra = []
    if codes is not None:
        extra = [
            regime.alias("regime"),
            pl.Series("gate", np.asarray(GATE_NAMES)[codes], dtype=pl.String),
        ]
    return frame.with_columns(
        *extra,
        pl.Series("position", pos[:, 0], dtype=pl.Int8),
        pl.Series("reason", np.asarray(REASONS)[reasons[:, 0]], dtype=pl.String),
    )


def model_positions(model: SignalModel, prices: pl.DataFrame) -> pl.DataFrame:
    """:func:`positions` with every setting taken from a published model.

    Agrees with :func:`titan_lib.core.evaluate` replayed over the same prices.
    """
    return positions(
        prices,
        y=model.y,
        x=model.x,
        beta=model.beta,
        alpha=model.alpha,
        transform=model.transform,
        zscore=model.zscore,
        rules=model.rules,
        half_life=model.fit.half_life,
        gate=model.gate,
    )
