"""The trading rule of a pair in a backtest: thresholds, time stop and z-score method.

The rule is evaluated by the shared state machine (:mod:`titan_lib.core.state_machine`,
compiled in :mod:`titan_lib.signals`) on the z-score of the spread; this module holds the
validated parameters and the glue. A served model's rules
(:class:`~titan_lib.core.signal_model.SignalRules`, time stop in half-lives) become a
:class:`PairRule` (time stop in bars) with :meth:`PairRule.from_signal_rules`; both are
checked by the one :func:`~titan_lib.core.state_machine.check_thresholds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from titan_lib.core.signal_model import SignalRules
from titan_lib.core.state_machine import check_thresholds
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

    @classmethod
    def from_signal_rules(
        cls, rules: SignalRules, zscore: ZScoreSpec, half_life: float | None = None
    ) -> PairRule:
        """The backtest rule of a served model's rules: the same thresholds, the time stop
        ``rules.time_stop_half_lives * half_life`` in bars (``inf`` when unset).

        Raises
        ------
        ParameterError
            A time stop without a finite half-life > 0, or a time stop under one bar.
        """
        return cls(
            entry=rules.entry,
            exit=rules.exit,
            stop=rules.stop,
            max_hold=rules.max_hold(half_life),
            zscore=zscore,
        )
