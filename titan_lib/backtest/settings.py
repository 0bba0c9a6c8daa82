"""Settings of a backtest run, validated once and passed through every layer.

Composed like the parts of a model: :class:`BacktestSettings` holds the sizing
(:class:`~titan_lib.backtest.sizing.SizingSettings`), the costs
(:class:`~titan_lib.backtest.costs.Costs`) and the account, fill and window of a run. The
rule of a pair is a :class:`~titan_lib.backtest.rules.PairRule`; single-pair backtests add
where the hedge comes from (:class:`~titan_lib.backtest.pair.HedgeFit`), sweeps the grid
(:class:`~titan_lib.backtest.sweep.SweepSettings`), walk-forward tests the windows and the
selection (:mod:`titan_lib.backtest.walk_forward`). Every object is frozen and checks
itself in ``__post_init__``; :func:`settings_dict` is the JSON-ready record of one, stored
with the results it produced.

The keyword functions (:func:`~titan_lib.backtest.backtest_pair`, ...) build these objects
and call the functions that take them (:func:`~titan_lib.backtest.pair.run_pair`, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from titan_lib.backtest.costs import Costs
from titan_lib.backtest.legs import FillPrice
from titan_lib.backtest.sizing import HedgeUnits, SizingSettings
from titan_lib.data.price_store import coerce_date
from titan_lib.exceptions import ParameterError
from titan_lib.pairs.hedge_ratios import HedgeMethod

Engine = Literal["vectorbt", "numba"]
ENGINES: tuple[str, ...] = ("vectorbt", "numba")
DateLike = date | datetime | str | None
DEFAULT_INIT_CASH = 1_000_000.0
"""Starting equity of a run unless given, in currency."""


@dataclass(frozen=True)
class BacktestSettings:
    """Sizing, costs, account, fills and trading window shared by every pair of a run.

    Parameters
    ----------
    sizing
        Gross size per trade and hedge units (:class:`SizingSettings`).
    costs
        Commission, slippage and borrow (:class:`Costs`); none by default.
    init_cash
        Starting equity in currency (> 0).
    gross_cap
        New entries are scaled down so that the gross exposure stays at or below
        ``gross_cap`` times equity (``inf``: no cap).
    fill
        Fill price of the next bar: ``"close"``, ``"open"`` or ``"auto"`` (the open when
        every leg has one).
    start, end
        Trading window (inclusive); dates, datetimes or ISO strings, stored as dates.
    flatten_at_end
        Close every position on the last bar (decided at the close before it).
    risk_free
        Annual risk-free rate for Sharpe and Sortino (simple, per day ``rf / 252``).
    engine
        ``"vectorbt"`` or ``"numba"`` (same numbers; see :mod:`titan_lib.backtest.book`).

    Raises
    ------
    ParameterError
        Any invalid setting, naming it.
    """

    sizing: SizingSettings = field(default_factory=SizingSettings)
    costs: Costs = field(default_factory=Costs)
    init_cash: float = DEFAULT_INIT_CASH
    gross_cap: float = math.inf
    fill: FillPrice = "auto"
    start: DateLike = None
    end: DateLike = None
    flatten_at_end: bool = False
    risk_free: float = 0.0
    engine: Engine = "vectorbt"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ParameterError(
                f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}",
                {"parameter": "engine"},
            )
        if self.fill not in ("auto", "close", "open"):
            raise ParameterError(f"fill must be 'auto', 'close' or 'open', got {self.fill!r}")
        if not isinstance(self.costs, Costs):
            raise ParameterError(f"costs must be a Costs, got {type(self.costs).__name__}")
        if not isinstance(self.sizing, SizingSettings):
            raise ParameterError(
                f"sizing must be a SizingSettings, got {type(self.sizing).__name__}"
            )
        cash = self.init_cash
        if isinstance(cash, bool) or not isinstance(cash, int | float) or not math.isfinite(cash):
            raise ParameterError(f"init_cash must be a finite number, got {cash!r}")
        if cash <= 0:
            raise ParameterError(f"init_cash must be > 0, got {cash!r}")
        cap = self.gross_cap
        if isinstance(cap, bool) or not isinstance(cap, int | float) or not cap > 0:
            raise ParameterError(f"gross_cap must be > 0 (inf for none), got {cap!r}")
        rf = self.risk_free
        if isinstance(rf, bool) or not isinstance(rf, int | float):
            raise ParameterError(f"risk_free must be a number, got {rf!r}")
        if not math.isfinite(rf):
            raise ParameterError(f"risk_free must be finite, got {rf!r}")
        lo, hi = coerce_date(self.start, "start"), coerce_date(self.end, "end")
        if lo is not None and hi is not None and hi < lo:
            raise ParameterError(f"end {hi} is before start {lo}")
        object.__setattr__(self, "init_cash", float(cash))
        object.__setattr__(self, "gross_cap", float(cap))
        object.__setattr__(self, "risk_free", float(rf))
        object.__setattr__(self, "start", lo)
        object.__setattr__(self, "end", hi)
        object.__setattr__(self, "flatten_at_end", bool(self.flatten_at_end))

    @classmethod
    def build(
        cls,
        *,
        target_weight: float | Sequence[float] | None = None,
        notional: float | Sequence[float] | None = None,
        hedge: HedgeUnits = "log",
        hedge_method: HedgeMethod = "ols",
        costs: Costs | None = None,
        init_cash: float = DEFAULT_INIT_CASH,
        gross_cap: float = math.inf,
        fill: FillPrice = "auto",
        start: DateLike = None,
        end: DateLike = None,
        flatten_at_end: bool = False,
        risk_free: float = 0.0,
        engine: Engine = "vectorbt",
    ) -> BacktestSettings:
        """The settings of the keyword functions' flat keywords: the sizing keywords
        become a :class:`SizingSettings`, ``costs=None`` no costs."""
        return cls(
            sizing=SizingSettings(
                target_weight=target_weight,
                notional=notional,
                hedge=hedge,
                hedge_method=hedge_method,
            ),
            costs=Costs() if costs is None else costs,
            init_cash=init_cash,
            gross_cap=gross_cap,
            fill=fill,
            start=start,
            end=end,
            flatten_at_end=flatten_at_end,
            risk_free=risk_free,
            engine=engine,
        )

    @property
    def first_day(self) -> date | None:
        """``start`` as a date (``None``: from the first bar)."""
        return coerce_date(self.start, "start")

    @property
    def last_day(self) -> date | None:
        """``end`` as a date (``None``: to the last bar)."""
        return coerce_date(self.end, "end")


def settings_dict(settings: Any) -> dict[str, Any]:
    """The record of a settings dataclass: :func:`dataclasses.asdict`, dates as ISO strings.

    Stored with the results a run produced (e.g. ``BacktestResult.settings["backtest"]``).
    """
    return asdict(
        settings,
        dict_factory=lambda items: {
            key: value.isoformat() if isinstance(value, date) else value for key, value in items
        },
    )
