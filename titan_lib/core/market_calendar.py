"""Exchange sessions (holidays, early closes) from a calendar file committed in the package.

The file (``market_calendar_xnys.json`` next to this module) is generated at build time
from the maintained ``exchange-calendars`` library by
:mod:`titan_lib.data.exchange_sessions`; this module reads it with the standard library
only, so the Lambda needs no pandas. A session is a weekday that is not listed as closed;
it opens at ``regular_open`` and closes at ``regular_close`` New York time unless listed
under ``late_opens`` or ``early_closes``. New York time follows the US daylight-saving
rules in force since 1987 (the file covers 1990 onwards).

Conventions: a *moment* is a timezone-aware ``datetime``; a *day* is a ``date`` in
exchange local time; session open and close are returned as UTC ``datetime``.
"""

from __future__ import annotations

import bisect
import functools
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from titan_lib.exceptions import DataValidationError, UnavailableError

CALENDAR_FILE = Path(__file__).with_name("market_calendar_xnys.json")
REGULAR_OPEN = {"XNYS": "09:30"}
REGULAR_CLOSE = {"XNYS": "16:00"}


def _nth_sunday(year: int, month: int, n: int) -> date:
    """The ``n``-th Sunday of the month (``n = -1``: the last one)."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))
    following = date(year + month // 12, month % 12 + 1, 1)
    last = following - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _daylight_saving(year: int) -> tuple[date, date]:
    """The Sundays (at 02:00 local) US daylight-saving time starts and ends."""
    if year >= 2007:
        return _nth_sunday(year, 3, 2), _nth_sunday(year, 11, 1)
    return _nth_sunday(year, 4, 1), _nth_sunday(year, 10, -1)


def new_york_offset(day: date, at: time = time(12, 0)) -> timedelta:
    """UTC offset of New York wall-clock time ``at`` on ``day`` (EDT -4 h, EST -5 h)."""
    start, end = _daylight_saving(day.year)
    summer = (
        (start < day < end) or (day == start and at >= time(3)) or (day == end and at < time(1))
    )
    return timedelta(hours=-4 if summer else -5)


def new_york_time(moment: datetime) -> datetime:
    """``moment`` (timezone-aware) as naive New York wall-clock time."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    start, end = _daylight_saving(utc.year)
    dst_start = datetime.combine(start, time(7, 0))  # 02:00 EST
    dst_end = datetime.combine(end, time(6, 0))  # 02:00 EDT
    return utc + timedelta(hours=-4 if dst_start <= utc < dst_end else -5)


@dataclass(frozen=True)
class Session:
    """One trading session: its local ``day`` and its ``open``/``close`` in UTC."""

    day: date
    open: datetime
    close: datetime


class CalendarRangeError(UnavailableError):
    """A day outside the years the calendar file covers: the file needs regenerating."""

    code = "calendar_out_of_range"


def _clock(text: str) -> time:
    return time.fromisoformat(text)


class MarketCalendar:
    """Sessions of one exchange, read from a calendar document.

    Parameters
    ----------
    document
        The parsed calendar file (see :mod:`titan_lib.data.exchange_sessions`).
    """

    def __init__(self, document: dict[str, Any]) -> None:
        try:
            self.exchange = str(document["exchange"])
            self.first_day = date.fromisoformat(document["first_day"])
            self.last_day = date.fromisoformat(document["last_day"])
            self.regular_open = _clock(document["regular_open"])
            self.regular_close = _clock(document["regular_close"])
            closed = {date.fromisoformat(d) for d in document["closed_weekdays"]}
            self.late_opens = {
                date.fromisoformat(d): _clock(t) for d, t in document["late_opens"].items()
            }
            self.early_closes = {
                date.fromisoformat(d): _clock(t) for d, t in document["early_closes"].items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataValidationError(f"market calendar document is malformed: {exc}") from None
        start = self.first_day.toordinal()
        self._sessions = [
            n
            for n in range(start, self.last_day.toordinal() + 1)
            if (n + 6) % 7 < 5 and date.fromordinal(n) not in closed
        ]
        self._session_set = frozenset(self._sessions)

    @classmethod
    def load(cls, path: Path = CALENDAR_FILE) -> MarketCalendar:
        """The calendar in ``path`` (the packaged New York Stock Exchange file by default)."""
        return _load(str(path))

    def _covered(self, day: date) -> int:
        if not self.first_day <= day <= self.last_day:
            raise CalendarRangeError(
                f"the {self.exchange} calendar covers {self.first_day} to {self.last_day}, "
                f"not {day}; regenerate it (python -m titan_lib.data.exchange_sessions)",
                {"day": day.isoformat()},
            )
        return day.toordinal()

    def is_session(self, day: date) -> bool:
        """Whether the exchange trades on ``day``."""
        return self._covered(day) in self._session_set

    def session(self, day: date) -> Session | None:
        """The session on ``day``, or ``None`` when the exchange is closed."""
        if not self.is_session(day):
            return None
        opens = self.late_opens.get(day, self.regular_open)
        closes = self.early_closes.get(day, self.regular_close)
        return Session(
            day=day,
            open=(datetime.combine(day, opens) - new_york_offset(day, opens)).replace(tzinfo=UTC),
            close=(datetime.combine(day, closes) - new_york_offset(day, closes)).replace(
                tzinfo=UTC
            ),
        )

    def is_open(self, moment: datetime) -> bool:
        """Whether a session is in progress at ``moment``."""
        found = self.session(new_york_time(moment).date())
        return found is not None and found.open <= moment < found.close

    def last_closed_session(self, moment: datetime) -> date:
        """The latest session that closed at or before ``moment``."""
        today = new_york_time(moment).date()
        found = self.session(today)
        if found is not None and found.close <= moment:
            return today
        index = bisect.bisect_left(self._sessions, self._covered(today)) - 1
        if index < 0:
            raise CalendarRangeError(
                f"no {self.exchange} session before {today} in the calendar",
                {"day": today.isoformat()},
            )
        return date.fromordinal(self._sessions[index])

    def sessions_after(self, day: date, until: date) -> int:
        """How many sessions lie in ``(day, until]`` (0 when ``until <= day``)."""
        first = bisect.bisect_right(self._sessions, self._covered(day))
        last = bisect.bisect_right(self._sessions, self._covered(until))
        return max(0, last - first)


@functools.lru_cache(maxsize=4)
def _load(path: str) -> MarketCalendar:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"cannot read the market calendar {path}: {exc}") from None
    return MarketCalendar(document)


def market_open(moment: datetime) -> bool:
    """Whether the New York Stock Exchange is in a session at ``moment``."""
    return MarketCalendar.load().is_open(moment)
