"""The committed exchange calendar agrees with exchange-calendars; sessions and hours."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from titan_lib.core.market_calendar import CALENDAR_FILE, MarketCalendar, market_open

# exchange-calendars itself trips a pandas deprecation while building schedules
pytestmark = pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar.load()


def test_committed_file_is_what_exchange_calendars_builds() -> None:
    from titan_lib.data.exchange_sessions import build_calendar, render

    assert CALENDAR_FILE.read_text() == render(build_calendar())


@pytest.mark.parametrize("year", [1999, 2008, 2024, 2025, 2030])
def test_sessions_and_hours_match_exchange_calendars(calendar: MarketCalendar, year: int) -> None:
    import exchange_calendars

    reference = exchange_calendars.get_calendar(
        "XNYS", start=f"{year}-01-01", end=f"{year}-12-31"
    ).schedule
    expected = {
        day.date(): (row["open"].to_pydatetime(), row["close"].to_pydatetime())
        for day, row in reference.iterrows()
    }
    day, ours = date(year, 1, 1), {}
    while day.year == year:
        session = calendar.session(day)
        if session is not None:
            ours[day] = (session.open, session.close)
        day = date.fromordinal(day.toordinal() + 1)
    assert ours == expected


def test_holidays_and_early_closes(calendar: MarketCalendar) -> None:
    assert not calendar.is_session(date(2024, 7, 4))  # Independence Day
    assert not calendar.is_session(date(2025, 1, 9))  # national day of mourning
    early = calendar.session(date(2024, 11, 29))  # the day after Thanksgiving
    assert early is not None and early.close == datetime(2024, 11, 29, 18, 0, tzinfo=UTC)
    assert market_open(datetime(2024, 11, 29, 17, 59, tzinfo=UTC))
    assert not market_open(datetime(2024, 11, 29, 18, 0, tzinfo=UTC))  # 13:00 New York
    assert not market_open(datetime(2024, 7, 4, 15, 0, tzinfo=UTC))
    assert market_open(datetime(2024, 7, 5, 15, 0, tzinfo=UTC))


def test_session_counting(calendar: MarketCalendar) -> None:
    # Wednesday 3 July 2024 (early close), Thursday 4 July closed, Friday 5 July.
    assert calendar.last_closed_session(datetime(2024, 7, 5, 19, 59, tzinfo=UTC)) == date(
        2024, 7, 3
    )
    assert calendar.last_closed_session(datetime(2024, 7, 5, 20, 0, tzinfo=UTC)) == date(2024, 7, 5)
    assert calendar.last_closed_session(datetime(2024, 7, 7, 12, 0, tzinfo=UTC)) == date(2024, 7, 5)
    assert calendar.sessions_after(date(2024, 7, 3), date(2024, 7, 8)) == 2
    assert calendar.sessions_after(date(2024, 7, 8), date(2024, 7, 3)) == 0
    assert calendar.sessions_after(date(2023, 12, 29), date(2024, 12, 31)) == 252


def test_days_outside_the_file_are_refused(calendar: MarketCalendar) -> None:
    from titan_lib.core.market_calendar import CalendarRangeError

    with pytest.raises(CalendarRangeError, match="regenerate"):
        calendar.is_session(date(2031, 1, 2))
    assert json.loads(CALENDAR_FILE.read_text())["first_day"] == "1990-01-01"


def test_a_day_outside_the_file_is_a_503_naming_the_calendar(calendar: MarketCalendar) -> None:
    from titan_lib.core.http_errors import error_body, status_for
    from titan_lib.core.market_calendar import CalendarRangeError

    with pytest.raises(CalendarRangeError) as caught:
        calendar.is_session(date(2031, 1, 2))
    assert status_for(caught.value) == 503
    assert error_body(caught.value)["error"]["code"] == "calendar_out_of_range"
