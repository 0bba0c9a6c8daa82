"""The trading state machine of a pair: one bar, one transition, one reason.

States are the position in the spread: ``0`` flat, ``+1`` long spread (long ``y``, short
``beta`` of ``x``), ``-1`` short spread. At each bar the machine reads the z-score of the
spread and the regime gate and moves as follows (thresholds satisfy
``0 <= exit < entry < stop``; ``stop`` and ``max_hold`` may be infinite)::

    in a position (held = bars since the entry bar, counted before the rules below):
      gate == GATE_FLATTEN                -> flat  REGIME_EXIT
      long  and z <= -stop                -> flat  STOP        (disarms entries)
      short and z >= +stop                -> flat  STOP        (disarms entries)
      long  and z >= -exit                -> flat  EXIT        (reverted, or overshot zero)
      short and z <= +exit                -> flat  EXIT
      held >= max_hold                    -> flat  TIME_STOP   (disarms entries)
      z undefined (NaN)                   -> hold  NO_SIGNAL
      otherwise                           -> hold  HOLD
    flat:
      z undefined (NaN)                   -> flat  NO_SIGNAL
      |z| < entry                         -> flat  HOLD        (re-arms entries)
      disarmed                            -> flat  DISARMED
      |z| >= stop                         -> flat  HOLD        (too far out to enter)
      gate != GATE_OPEN                   -> flat  GATE_BLOCKED
      z >= +entry                         -> short ENTER_SHORT
      z <= -entry                         -> long  ENTER_LONG

A stop-loss or time stop disarms entries until ``|z|`` comes back inside the entry band, so a
stopped trade is not re-entered on the next bar. There is at most one transition per bar: a
position is never flipped directly; an exit on an overshoot re-enters on a later bar.

The regime gate code of a bar is :data:`GATE_OPEN` (entries allowed),
:data:`GATE_NO_ENTRY` (no new entries) or :data:`GATE_FLATTEN` (no new entries, and open
positions are closed: the "flatten on a switch into a gated regime" option).

:func:`step` is written in plain Python on scalars so that the Lambda runs it as is and
:mod:`titan_lib.signals.kernel` compiles the very same function with numba: the vectorised
rules and the pure-Python evaluator cannot drift apart. Standard library only.
"""

from __future__ import annotations

import math

from titan_lib.exceptions import ParameterError

HOLD = 0
ENTER_LONG = 1
ENTER_SHORT = 2
EXIT = 3
STOP = 4
TIME_STOP = 5
REGIME_EXIT = 6
GATE_BLOCKED = 7
NO_SIGNAL = 8
DISARMED = 9

REASONS: tuple[str, ...] = (
    "hold",
    "enter_long",
    "enter_short",
    "exit",
    "stop",
    "time_stop",
    "regime_exit",
    "gate_blocked",
    "no_signal",
    "disarmed",
)
"""Reason names, indexed by reason code."""

ACTIONS: tuple[str, ...] = (
    "hold",
    "enter_long",
    "enter_short",
    "exit",
    "stop",
    "stop",
    "exit",
    "hold",
    "hold",
    "hold",
)
"""The action a reason code asks for: enter_long, enter_short, exit, stop or hold."""

GATE_OPEN = 0
GATE_NO_ENTRY = 1
GATE_FLATTEN = 2

GATE_NAMES: tuple[str, ...] = ("open", "no_entry", "flatten")
"""Gate names, indexed by gate code."""


def check_thresholds(entry: float, exit_: float, stop: float, max_hold: float = math.inf) -> None:
    """Raise unless the thresholds fit the machine: ``0 <= exit_ < entry < stop`` and
    ``max_hold >= 1`` bar (``stop`` and ``max_hold`` may be ``inf``: none).

    The one validation of a rule's thresholds, shared by the served model's
    :class:`~titan_lib.core.signal_model.SignalRules` and the backtest's ``PairRule``.

    Raises
    ------
    ParameterError
        A threshold that is not a number, NaN, out of order or negative, or
        ``max_hold < 1``; the error names the parameter.
    """
    for name, value in (("entry", entry), ("exit", exit_), ("stop", stop), ("max_hold", max_hold)):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ParameterError(f"{name} must be a number, got {value!r}", {"parameter": name})
    if not math.isfinite(entry) or entry <= 0:
        raise ParameterError(
            f"entry must be a finite z-score > 0, got {entry!r}", {"parameter": "entry"}
        )
    if exit_ < 0:
        raise ParameterError(f"exit must be >= 0, got {exit_!r}", {"parameter": "exit"})
    if exit_ >= entry:
        raise ParameterError(
            f"exit ({exit_!r}) must be below entry ({entry!r}): thresholds need "
            "0 <= exit < entry < stop",
            {"parameter": "exit"},
        )
    if stop <= entry:
        raise ParameterError(
            f"stop ({stop!r}) must be above entry ({entry!r}); use inf for no stop",
            {"parameter": "stop"},
        )
    if max_hold < 1:
        raise ParameterError(
            f"max_hold must be >= 1 bar (inf for no time stop), got {max_hold!r}",
            {"parameter": "max_hold"},
        )


def step(
    position: int,
    held: int,
    armed: int,
    z: float,
    entry: float,
    exit_: float,
    stop: float,
    max_hold: float,
    gate: int,
) -> tuple[int, int, int, int]:
    """Advance the state machine by one bar.

    Parameters
    ----------
    position
        Position before the bar: -1, 0 or +1 (spread units).
    held
        Bars held before this bar (0 on the entry bar itself).
    armed
        1 when new entries are allowed, 0 after a stop until ``|z| < entry``.
    z
        Z-score of the spread at the bar (NaN when undefined).
    entry, exit_, stop
        Thresholds in z units, ``0 <= exit_ < entry < stop`` (``stop`` may be ``inf``).
    max_hold
        Time stop in bars (``inf`` for none): exit once ``held >= max_hold``.
    gate
        Regime gate code of the bar: :data:`GATE_OPEN`, :data:`GATE_NO_ENTRY` or
        :data:`GATE_FLATTEN`.

    Returns
    -------
    tuple
        ``(position, held, armed, reason)`` after the bar; ``reason`` indexes
        :data:`REASONS`.
    """
    if position != 0:
        held = held + 1
        if gate == GATE_FLATTEN:
            return 0, 0, armed, REGIME_EXIT
        if not math.isnan(z):
            if position > 0:
                if z <= -stop:
                    return 0, 0, 0, STOP
                if z >= -exit_:
                    return 0, 0, armed, EXIT
            else:
                if z >= stop:
                    return 0, 0, 0, STOP
                if z <= exit_:
                    return 0, 0, armed, EXIT
        if held >= max_hold:
            return 0, 0, 0, TIME_STOP
        if math.isnan(z):
            return position, held, armed, NO_SIGNAL
        return position, held, armed, HOLD
    if math.isnan(z):
        return 0, 0, armed, NO_SIGNAL
    size = abs(z)
    if size < entry:
        return 0, 0, 1, HOLD
    if armed == 0:
        return 0, 0, 0, DISARMED
    if size >= stop:
        return 0, 0, armed, HOLD
    if gate != GATE_OPEN:
        return 0, 0, armed, GATE_BLOCKED
    if z > 0:
        return -1, 0, armed, ENTER_SHORT
    return 1, 0, armed, ENTER_LONG
