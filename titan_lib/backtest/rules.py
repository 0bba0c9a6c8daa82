"""The trading rule of a pair in a backtest: thresholds, time stop and z-score method.

The rule is evaluated by the shared state machine (:mod:`titan_lib.core.state_machine`,
compiled in :mod:`titan_lib.signals`) on the z-score of the spread; this module holds the
validated parameters and the glue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from titan_lib.core.zscore import ZScoreSpec
from titan_lib.exceptions import ParameterError


@dataclass(frozen=True)
class PairRule:
    """Entry/exit/stop thresholds (z units), time stop (bars) and the z-score method.

    ``0 <= exit < entry < stop``; ``stop`` and ``max_hold`` may be ``inf`` (none). See
    :mod:`titan_lib.core.state_machine` for the transitions.

    Raises
    ------
    ParameterError
        A threshold out of order, negative or not a number, or ``max_hold < 1``.
    """

    entry: float = 2.0
    exit: float = 0.5
    stop: float = math.inf
    max_hold: float = math.inf
    zscore: ZScoreSpec = field(default_factory=lambda: ZScoreSpec.rolling(60))

    def __post_init__(self) -> None:
        check_thresholds(self.entry, self.exit, self.stop, self.max_hold)
        if not isinstance(self.zscore, ZScoreSpec):
            raise ParameterError(
                f"zscore must be a ZScoreSpec, got {type(self.zscore).__name__}",
                {"parameter": "zscore"},
            )


def check_thresholds(entry: float, exit: float, stop: float, max_hold: float) -> None:
    """Raise :class:`ParameterError` unless ``0 <= exit < entry < stop`` and ``max_hold >= 1``."""
    for name, value in (("entry", entry), ("exit", exit), ("stop", stop), ("max_hold", max_hold)):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise ParameterError(f"{name} must be a number, got {value!r}", {"parameter": name})
    if not math.isfinite(entry) or entry <= 0:
        raise ParameterError(
            f"entry must be a finite z-score > 0, got {entry!r}", {"parameter": "entry"}
        )
    if exit < 0:
        raise ParameterError(f"exit must be >= 0, got {exit!r}", {"parameter": "exit"})
    if exit >= entry:
        raise ParameterError(
            f"exit ({exit!r}) must be below entry ({entry!r})", {"parameter": "exit"}
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
