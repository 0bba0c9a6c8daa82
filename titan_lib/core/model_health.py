"""Health of a served model on its price tails: healthy, warning or broken, with reasons.

:func:`check_health` judges one model at one date on five criteria, each with a named,
documented default in :class:`HealthSettings`:

``breakdown`` / ``zscore``
    The z-score of the spread against the model's own stop band (``rules.stop``, or
    ``default_stop_band`` for a model without a stop-loss). Beyond the band (``|z| > stop``)
    for ``breakdown_sessions`` (10) consecutive sessions or more is a breakdown: **broken**
    ("breakdown: |z| > 4.0 for 12 sessions"). Beyond it for fewer sessions: **warning**.
``reversion``
    The recent mean-reversion speed: the AR(1) least-squares fit ``s_t = c + phi s_{t-1}``
    over the spreads of the last ``lookback_sessions`` (60) sessions, half-life
    ``-ln 2 / ln phi`` sessions (``inf`` for ``phi >= 1``), the convention of the research
    side (:mod:`titan_lib.pairs.spread_stats`). Slower than ``reversion_warning_ratio`` (3)
    times the fitted half-life (``model.fit.half_life``), or no reversion at all:
    **warning**; slower than ``reversion_broken_ratio`` times (off by default): **broken**.
``drawdown``
    The model's P&L drawdown now, from its running peak (and from zero), in the currency of
    the P&L passed in. Above ``max_drawdown`` (off by default: P&L scales with the notional
    traded): **broken**; above ``drawdown_warning_fraction`` (0.5) of it: **warning**.
``loss_limit``
    Realised + unrealised P&L below ``-max_loss`` (off by default): **broken**; below
    ``loss_warning_fraction`` (0.8) of it: **warning**. The per-model loss limit: pass
    settings with the model's own ``max_loss``.
``staleness``
    How many NYSE sessions (:mod:`titan_lib.core.market_calendar`) the model's newest common
    close lags the latest session closed at ``now``. More than ``stale_warning_sessions``
    (1, the order path's default limit): **warning**; more than ``stale_broken_sessions``
    (off by default: stale data is an ingest problem, not the model's): **broken**.

The z-scores and spreads are the serving ones: :func:`titan_lib.core.evaluate.evaluate`,
stepped one session at a time, each step given only the prices up to its session. Nothing
after ``as_of`` is read (no look-ahead): the check at ``t`` on the full history equals the
check on the history cut at ``t``.

:class:`HealthRecord` is the outcome (``to_dict``/``from_dict``); its
:attr:`HealthRecord.reason` is the text a retirement records, and
:mod:`titan_lib.core.model_health_store` keeps every record. Standard library only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast

from titan_lib.core.evaluate import PriceSeries, Signal, evaluate
from titan_lib.core.market_calendar import CalendarRangeError, MarketCalendar
from titan_lib.core.prices import PriceTail
from titan_lib.core.signal_model import SignalModel
from titan_lib.exceptions import DataValidationError, ParameterError, SchemaVersionError

HealthState = Literal["healthy", "warning", "broken"]
HEALTH_STATES: tuple[HealthState, ...] = ("healthy", "warning", "broken")
HealthCriterion = Literal["breakdown", "zscore", "reversion", "drawdown", "loss_limit", "staleness"]
HEALTH_CRITERIA: tuple[HealthCriterion, ...] = (
    "breakdown",
    "zscore",
    "reversion",
    "drawdown",
    "loss_limit",
    "staleness",
)
HEALTH_RECORD_SCHEMA_VERSION = 1
PnlInput = float | Sequence[tuple[str, float]]
"""The model's realised + unrealised P&L: a number now, or ``(iso_date, P&L)`` oldest first."""
MetricValue = float | int | str | None


@dataclass(frozen=True)
class HealthSettings:
    """Thresholds of the health criteria (see the module docstring).

    Attributes
    ----------
    breakdown_sessions
        Consecutive sessions beyond the stop band that make a breakdown (10).
    default_stop_band
        Stop band (z units) for a model without a stop-loss (``rules.stop = inf``) (4.0).
    lookback_sessions
        Sessions examined: the z-score run is counted within them and the AR(1) is fitted
        on their spreads (60).
    min_reversion_sessions
        Fewest spreads the AR(1) is fitted on; fewer and reversion is not judged (20).
    reversion_warning_ratio
        Recent half-life over fitted half-life above which the model is a warning (3.0).
    reversion_broken_ratio
        The same ratio for broken (``None``: reversion never breaks a model).
    max_drawdown
        P&L drawdown (currency) above which the model is broken (``None``: off).
    drawdown_warning_fraction
        Fraction of ``max_drawdown`` above which it is a warning (0.5).
    max_loss
        The loss limit: P&L below ``-max_loss`` (currency) is broken (``None``: off).
    loss_warning_fraction
        Fraction of ``max_loss`` a loss must exceed to be a warning (0.8).
    stale_warning_sessions
        Sessions the newest close may lag the latest closed session before a warning (1).
    stale_broken_sessions
        Sessions of lag that make the model broken (``None``: staleness never breaks).
    """

    breakdown_sessions: int = 10
    default_stop_band: float = 4.0
    lookback_sessions: int = 60
    min_reversion_sessions: int = 20
    reversion_warning_ratio: float = 3.0
    reversion_broken_ratio: float | None = None
    max_drawdown: float | None = None
    drawdown_warning_fraction: float = 0.5
    max_loss: float | None = None
    loss_warning_fraction: float = 0.8
    stale_warning_sessions: int = 1
    stale_broken_sessions: int | None = None

    def __post_init__(self) -> None:
        for name in ("breakdown_sessions", "lookback_sessions", "min_reversion_sessions"):
            if int(getattr(self, name)) < 1:
                raise ParameterError(f"health setting {name} must be >= 1")
        if self.lookback_sessions < self.breakdown_sessions:
            raise ParameterError(
                f"health setting lookback_sessions ({self.lookback_sessions}) must be at "
                f"least breakdown_sessions ({self.breakdown_sessions})"
            )
        if self.min_reversion_sessions < 3:
            raise ParameterError("health setting min_reversion_sessions must be >= 3")
        positive = ("default_stop_band", "reversion_warning_ratio", "reversion_broken_ratio")
        for name in (*positive, "max_drawdown", "max_loss"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0.0):
                raise ParameterError(f"health setting {name} must be a finite number > 0")
        for name in ("drawdown_warning_fraction", "loss_warning_fraction"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ParameterError(f"health setting {name} must be in (0, 1]")
        if self.stale_warning_sessions < 0 or (
            self.stale_broken_sessions is not None
            and self.stale_broken_sessions < self.stale_warning_sessions
        ):
            raise ParameterError(
                "health settings need 0 <= stale_warning_sessions <= stale_broken_sessions"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HealthSettings:
        """Settings from ``TITAN_HEALTH_<NAME>`` variables (upper-case field names).

        An unset or empty variable keeps the default; ``none`` turns an optional
        criterion off. A value that is not a number raises :class:`ParameterError`
        naming the variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            variable = f"TITAN_HEALTH_{spec.name.upper()}"
            text = (env.get(variable) or "").strip()
            if not text:
                continue
            optional = "None" in str(spec.type)
            if optional and text.lower() == "none":
                values[spec.name] = None
                continue
            try:
                number = float(text)
            except ValueError:
                raise ParameterError(f"{variable} must be a number, got {text[:32]!r}") from None
            whole = "int" in str(spec.type)
            if whole and not number.is_integer():
                raise ParameterError(f"{variable} must be a whole number, got {text[:32]!r}")
            values[spec.name] = int(number) if whole else number
        return cls(**values)

    def stop_band(self, model: SignalModel) -> float:
        """The model's stop band in z units (``default_stop_band`` without a stop)."""
        return model.rules.stop if math.isfinite(model.rules.stop) else self.default_stop_band


@dataclass(frozen=True)
class HealthReason:
    """Why a model is not healthy: the criterion, its verdict and the values behind it."""

    criterion: HealthCriterion
    state: Literal["warning", "broken"]
    message: str
    values: dict[str, MetricValue] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthRecord:
    """One health check of one model.

    Attributes
    ----------
    model_id
        The model checked.
    as_of
        ISO date of the last session used (the last date common to the model's prices).
    checked_at
        When the check ran (ISO 8601, UTC).
    state
        ``healthy``, ``warning`` or ``broken``: the worst verdict of the criteria.
    reasons
        One per criterion that is not healthy, broken ones first.
    metrics
        The measured values: ``zscore``, ``stop_band``, ``beyond_stop_sessions``,
        ``ar1_phi``, ``recent_half_life``, ``fitted_half_life``, ``reversion_sessions``,
        ``pnl``, ``drawdown``, ``age_sessions``, ``latest_session`` (``None`` when not
        measured or not finite).
    settings
        The :class:`HealthSettings` used, as a dict.
    """

    model_id: str
    as_of: str
    checked_at: str
    state: HealthState
    reasons: tuple[HealthReason, ...] = ()
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    settings: dict[str, MetricValue] = field(default_factory=dict)
    schema_version: int = HEALTH_RECORD_SCHEMA_VERSION

    @property
    def reason(self) -> str:
        """The reasons in one line (the text of an automatic retirement)."""
        return "; ".join(r.message for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no NaN or infinity)."""
        doc = asdict(self)
        doc["reasons"] = [asdict(r) for r in self.reasons]
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> HealthRecord:
        """Parse :meth:`to_dict` output; refuse a malformed document naming the field."""
        if not isinstance(doc, dict):
            raise DataValidationError("a health record must be a JSON object")
        version = doc.get("schema_version")
        if version != HEALTH_RECORD_SCHEMA_VERSION:
            raise SchemaVersionError(
                f"health record has schema_version {version!r}; this code reads "
                f"{HEALTH_RECORD_SCHEMA_VERSION}"
            )
        expected = {f.name for f in fields(cls)}
        if set(doc) != expected:
            raise DataValidationError(
                "health record fields differ: missing "
                f"{sorted(expected - set(doc))}, unknown {sorted(set(doc) - expected)}"
            )
        for name in ("model_id", "as_of", "checked_at"):
            if not isinstance(doc[name], str) or not doc[name]:
                raise DataValidationError(f"health record {name} must be a non-empty string")
        if doc["state"] not in HEALTH_STATES:
            raise DataValidationError(f"health record state {doc['state']!r} is unknown")
        if not isinstance(doc["reasons"], list):
            raise DataValidationError("health record reasons must be a list")
        reasons = []
        for i, item in enumerate(doc["reasons"]):
            where = f"health record reasons[{i}]"
            if not isinstance(item, dict) or set(item) != {
                "criterion",
                "state",
                "message",
                "values",
            }:
                raise DataValidationError(f"{where} must hold criterion, state, message, values")
            if item["criterion"] not in HEALTH_CRITERIA or item["state"] not in (
                "warning",
                "broken",
            ):
                raise DataValidationError(f"{where} has an unknown criterion or state")
            if not isinstance(item["message"], str):
                raise DataValidationError(f"{where}.message must be a string")
            reasons.append(
                HealthReason(
                    criterion=item["criterion"],
                    state=item["state"],
                    message=item["message"],
                    values=_metric_map(item["values"], f"{where}.values"),
                )
            )
        return cls(
            model_id=doc["model_id"],
            as_of=doc["as_of"],
            checked_at=doc["checked_at"],
            state=doc["state"],
            reasons=tuple(reasons),
            metrics=_metric_map(doc["metrics"], "health record metrics"),
            settings=_metric_map(doc["settings"], "health record settings"),
        )


def _metric_map(value: Any, where: str) -> dict[str, MetricValue]:
    if not isinstance(value, dict):
        raise DataValidationError(f"{where} must be an object")
    for key, item in value.items():
        if item is not None and not isinstance(item, int | float | str):
            raise DataValidationError(f"{where}.{key} must be a number, a string or null")
        if isinstance(item, float) and not math.isfinite(item):
            raise DataValidationError(f"{where}.{key} must be finite")
    return dict(value)


# -- the check ------------------------------------------------------------------------------


def _pairs(series: PriceSeries) -> list[tuple[str, float]]:
    if isinstance(series, PriceTail):
        return list(zip(series.dates, series.close, strict=True))
    return [(str(d), c) for d, c in series]


def recent_signals(
    model: SignalModel,
    prices: Mapping[str, PriceSeries],
    sessions: int,
    as_of: str | None = None,
) -> list[Signal]:
    """The model's signals on each of the last ``sessions`` common dates up to ``as_of``.

    Each signal is :func:`~titan_lib.core.evaluate.evaluate` given only the prices up to
    its own date (the first one replays from the start, the others continue from the
    previous state), so none of them sees a later price. Oldest first.

    Raises
    ------
    DataValidationError
        Prices are missing or invalid for a symbol (as :func:`evaluate`), or no date is
        common to the model's symbols up to ``as_of``.
    """
    if any(symbol not in prices for symbol in model.symbols):
        evaluate(model, prices)  # refuses the prices, naming the missing symbol
    series = {}
    for symbol in model.symbols:
        series[symbol] = [(d, c) for d, c in _pairs(prices[symbol]) if as_of is None or d <= as_of]
    common = set.intersection(*({d for d, _ in s} for s in series.values()))
    if not common:
        where = "" if as_of is None else f" up to {as_of}"
        raise DataValidationError(
            f"prices of {', '.join(model.symbols)} share no date{where}",
            {"symbols": list(model.symbols)},
        )
    dates = sorted(common)[-sessions:]

    def upto(day: str) -> dict[str, list[tuple[str, float]]]:
        return {s: [(d, c) for d, c in pairs if d <= day] for s, pairs in series.items()}

    signals = [evaluate(model, upto(dates[0]))]
    for day in dates[1:]:
        signals.append(evaluate(model, upto(day), position=signals[-1].state))
    return signals


def ar1_fit(values: Sequence[float]) -> tuple[float, float]:
    """Least-squares AR(1) ``s_t = c + phi s_{t-1}``: ``(phi, half-life in steps)``.

    The half-life is ``-ln 2 / ln phi``: ``inf`` for ``phi >= 1`` (no mean reversion),
    NaN for ``phi <= 0`` or a constant series (undefined), the research convention.
    """
    if len(values) < 3:
        raise ParameterError(f"an AR(1) fit needs at least 3 values, got {len(values)}")
    lagged, current = values[:-1], values[1:]
    n = len(current)
    mean_x = math.fsum(lagged) / n
    mean_y = math.fsum(current) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in lagged)
    if not sxx > 0.0:
        return math.nan, math.nan
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(lagged, current, strict=True))
    phi = sxy / sxx
    if not phi > 0.0:
        return phi, math.nan
    return phi, math.inf if phi >= 1.0 else -math.log(2.0) / math.log(phi)


def sessions_behind(last_day: str, now: datetime) -> tuple[int, date]:
    """NYSE sessions between ``last_day`` and the latest session closed at ``now``.

    Returns ``(age, latest session)``; 0 when ``last_day`` is that session.
    """
    calendar = MarketCalendar.load()
    latest = calendar.last_closed_session(now)
    day = date.fromisoformat(last_day)
    try:
        age = calendar.sessions_after(day, latest)
    except CalendarRangeError:  # before the calendar: at least every session it holds
        age = calendar.sessions_after(calendar.first_day - timedelta(days=1), latest)
    return age, latest


def _pnl_path(pnl: PnlInput, as_of: str | None) -> list[float]:
    if isinstance(pnl, int | float):
        values = [_number(pnl, 0)]
    else:
        values = []
        previous = ""
        for i, point in enumerate(pnl):
            try:
                day, value = point
            except (TypeError, ValueError):
                raise DataValidationError(f"P&L point {i} must be (iso_date, value)") from None
            if not isinstance(day, str) or day <= previous:
                raise DataValidationError(
                    f"P&L dates must be ascending ISO strings; point {i} is {day!r} after "
                    f"{previous!r}",
                    {"index": i},
                )
            previous = day
            if as_of is None or day <= as_of:
                values.append(_number(value, i))
    for i, value in enumerate(values):
        if not math.isfinite(value):
            raise DataValidationError(f"P&L value {i} must be finite, got {value!r}", {"index": i})
    return values


def _number(value: Any, index: int) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataValidationError(
            f"P&L value {index} must be a number, got {str(value)[:32]!r}", {"index": index}
        ) from None


def _fmt(value: float, digits: int = 2) -> str:
    """``4.0``, ``3.25``: at least one decimal, at most ``digits``."""
    text = f"{value:.{digits}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def check_health(
    model: SignalModel,
    prices: Mapping[str, PriceSeries],
    *,
    settings: HealthSettings | None = None,
    pnl: PnlInput | None = None,
    as_of: str | None = None,
    now: datetime | None = None,
    checked_at: datetime | None = None,
) -> HealthRecord:
    """Judge ``model`` on its prices (and P&L) up to ``as_of``.

    Parameters
    ----------
    model
        A published model.
    prices
        Closes per symbol of ``model.symbols``, oldest first (serving tails or pairs).
    settings
        Thresholds (default :class:`HealthSettings()`).
    pnl
        The model's realised + unrealised P&L (currency): ``(iso_date, P&L)`` points
        oldest first (only those up to ``as_of`` are used), or one number, the P&L now.
        ``None``: drawdown and loss limit are not judged.
    as_of
        ISO date: only prices and P&L dated up to it are used (default: all given).
    now
        Timezone-aware time for staleness; ``None``: staleness is not judged.
    checked_at
        Time stamped on the record (default: now, UTC).

    Raises
    ------
    DataValidationError
        Prices or P&L are missing or invalid, naming the symbol or point.
    """
    settings = settings or HealthSettings()
    if now is not None and now.tzinfo is None:
        raise ParameterError("now must be timezone-aware")
    signals = recent_signals(model, prices, settings.lookback_sessions, as_of)
    last = signals[-1]
    reasons: list[HealthReason] = []

    # z-score against the stop band
    band = settings.stop_band(model)
    run = 0
    for signal in reversed(signals):
        if signal.zscore is None or not abs(signal.zscore) > band:
            break
        run += 1
    metrics: dict[str, MetricValue] = {
        "zscore": _finite(last.zscore),
        "stop_band": band,
        "beyond_stop_sessions": run,
    }
    values: dict[str, MetricValue] = {"zscore": _finite(last.zscore), "stop_band": band}
    values["sessions"] = run
    if run >= settings.breakdown_sessions:
        message = f"breakdown: |z| > {_fmt(band)} for {run} sessions"
        reasons.append(HealthReason("breakdown", "broken", message, values))
    elif run:
        message = (
            f"zscore: |z| > {_fmt(band)} for {run} session{'s' * (run > 1)} "
            f"(breakdown at {settings.breakdown_sessions})"
        )
        reasons.append(HealthReason("zscore", "warning", message, values))

    # mean-reversion speed
    spreads = [s.spread for s in signals]
    fitted = model.fit.half_life
    metrics.update(
        ar1_phi=None,
        recent_half_life=None,
        fitted_half_life=_finite(fitted),
        reversion_sessions=len(spreads),
    )
    if len(spreads) >= settings.min_reversion_sessions:
        phi, recent = ar1_fit(spreads)
        metrics.update(ar1_phi=_finite(phi), recent_half_life=_finite(recent))
        if fitted is not None and math.isfinite(fitted) and fitted > 0.0 and phi > 0.0:
            ratio = recent / fitted
            values = {
                "ar1_phi": _finite(phi),
                "recent_half_life": _finite(recent),
                "fitted_half_life": fitted,
                "sessions": len(spreads),
            }
            if math.isinf(recent):
                measured = (
                    f"no mean reversion over {len(spreads)} sessions (AR(1) phi "
                    f"{_fmt(phi, 3)} >= 1; fitted half-life {_fmt(fitted, 1)})"
                )
            else:
                measured = (
                    f"half-life {_fmt(recent, 1)} sessions over the last {len(spreads)} is "
                    f"{_fmt(ratio, 1)} x the fitted {_fmt(fitted, 1)}"
                )
            broken_ratio = settings.reversion_broken_ratio
            warning_ratio = settings.reversion_warning_ratio
            if broken_ratio is not None and ratio > broken_ratio:
                message = f"reversion: {measured} (> {_fmt(broken_ratio)})"
                reasons.append(HealthReason("reversion", "broken", message, values))
            elif ratio > warning_ratio:
                message = f"reversion: {measured} (> {_fmt(warning_ratio)})"
                reasons.append(HealthReason("reversion", "warning", message, values))

    # P&L: drawdown and loss limit
    metrics.update(pnl=None, drawdown=None)
    path = _pnl_path(pnl, as_of) if pnl is not None else []
    if path:
        current = path[-1]
        drawdown = max(0.0, *path) - current
        metrics.update(pnl=current, drawdown=drawdown)
        limit = settings.max_drawdown
        if limit is not None:
            values = {"drawdown": drawdown, "max_drawdown": limit}
            fraction = settings.drawdown_warning_fraction
            if drawdown > limit:
                message = f"drawdown: {_fmt(drawdown)} > {_fmt(limit)}"
                reasons.append(HealthReason("drawdown", "broken", message, values))
            elif drawdown > fraction * limit:
                message = f"drawdown: {_fmt(drawdown)} > {_fmt(fraction)} x {_fmt(limit)}"
                reasons.append(HealthReason("drawdown", "warning", message, values))
        loss = settings.max_loss
        if loss is not None:
            values = {"pnl": current, "max_loss": loss}
            fraction = settings.loss_warning_fraction
            if current < -loss:
                message = f"loss_limit: P&L {_fmt(current)} < -{_fmt(loss)}"
                reasons.append(HealthReason("loss_limit", "broken", message, values))
            elif current < -fraction * loss:
                message = f"loss_limit: P&L {_fmt(current)} < -{_fmt(fraction)} x {_fmt(loss)}"
                reasons.append(HealthReason("loss_limit", "warning", message, values))

    # staleness
    metrics.update(age_sessions=None, latest_session=None)
    if now is not None:
        age, latest = sessions_behind(last.as_of, now)
        metrics.update(age_sessions=age, latest_session=latest.isoformat())
        latest_day = latest.isoformat()
        values = {"last_date": last.as_of, "age_sessions": age, "latest_session": latest_day}
        stale = f"staleness: newest close {last.as_of} is {age} sessions behind {latest_day}"
        broken_age = settings.stale_broken_sessions
        if broken_age is not None and age > broken_age:
            message = f"{stale} (> {broken_age})"
            reasons.append(HealthReason("staleness", "broken", message, values))
        elif age > settings.stale_warning_sessions:
            message = f"{stale} (> {settings.stale_warning_sessions})"
            reasons.append(HealthReason("staleness", "warning", message, values))

    reasons.sort(key=lambda r: r.state != "broken")
    state: HealthState = "healthy"
    if reasons:
        state = "broken" if reasons[0].state == "broken" else "warning"
    stamp = (checked_at or datetime.now(UTC)).astimezone(UTC).isoformat()
    return HealthRecord(
        model_id=model.model_id,
        as_of=last.as_of,
        checked_at=stamp,
        state=state,
        reasons=tuple(reasons),
        metrics=metrics,
        settings=cast(dict[str, MetricValue], asdict(settings)),
    )
