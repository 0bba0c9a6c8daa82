"""Evaluating every served model on the serving price tails.

The Lambda's signal snapshot, the live-signals dashboard and the publishing notebook all
ask the same question: what does each served model say today? :func:`evaluate_served`
answers it once for all of them; each caller says where prices come from, which position
each model holds, and which errors are reported per model rather than raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from titan_lib.core.evaluate import Signal, evaluate
from titan_lib.core.prices import PriceTail
from titan_lib.core.signal_model import SignalModel
from titan_lib.exceptions import TitanError


@dataclass(frozen=True)
class ServedSignal:
    """One model's evaluation: its signal, or the error that prevented it.

    Attributes
    ----------
    model
        The model evaluated.
    signal
        Its signal at the last common date of its price tails (``None`` on error).
    error
        Why there is no signal: the first failed price read, or the evaluation's error.
    missing
        Symbols whose price tail could not be read (then the model was not evaluated).
    """

    model: SignalModel
    signal: Signal | None = None
    error: Exception | None = None
    missing: tuple[str, ...] = ()

    @property
    def error_message(self) -> str | None:
        """The error's message (its class name when it has none), ``None`` without one."""
        if self.error is None:
            return None
        return str(getattr(self.error, "message", type(self.error).__name__))


def evaluate_served(
    models: Iterable[SignalModel],
    tail_of: Callable[[str], PriceTail],
    position_of: Callable[[SignalModel], int | None] | None = None,
    contain: type[Exception] | tuple[type[Exception], ...] = TitanError,
) -> list[ServedSignal]:
    """Evaluate each model on its symbols' price tails, in the order given.

    Parameters
    ----------
    models
        The served models.
    tail_of
        The serving price tail of a symbol; raises when there is none.
    position_of
        The spread position each model holds (``-1``, ``0``, ``1``), evaluated from it;
        ``None`` (the default, or as a return value) replays the model statelessly over
        the tail.
    contain
        Errors recorded in the model's :class:`ServedSignal` instead of raised, so one
        broken model does not stop the others; ``()`` raises every error.

    Returns
    -------
    list of ServedSignal
        One per model. A model whose tails cannot all be read is not evaluated: its
        ``missing`` symbols and the first read error are recorded.
    """
    results = []
    for model in models:
        tails: dict[str, PriceTail] = {}
        missing: list[str] = []
        first_error: Exception | None = None
        for symbol in model.symbols:
            try:
                tails[symbol] = tail_of(symbol)
            except contain as exc:
                missing.append(symbol)
                first_error = first_error or exc
        if missing:
            results.append(ServedSignal(model, error=first_error, missing=tuple(missing)))
            continue
        try:
            position = None if position_of is None else position_of(model)
            signal = evaluate(model, tails, position=position)
        except contain as exc:
            results.append(ServedSignal(model, error=exc))
            continue
        results.append(ServedSignal(model, signal=signal))
    return results
