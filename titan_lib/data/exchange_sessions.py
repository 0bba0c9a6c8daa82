"""Build the exchange session calendar the Lambda reads, from ``exchange-calendars``.

The serving side (:mod:`titan_lib.core.market_calendar`) must not import pandas, so the
sessions are computed here, at build time, with the maintained ``exchange-calendars``
library (a development dependency) and written into a small JSON document committed in
the package: the weekdays the exchange is closed, and the sessions that open late or close
early, in exchange local time. Regenerate it (e.g. yearly, as exchanges announce holidays)::

    .venv/bin/python -m titan_lib.data.exchange_sessions

and commit the changed ``titan_lib/core/market_calendar_xnys.json``.
"""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from importlib.metadata import version
from typing import Any

from titan_lib.core.market_calendar import CALENDAR_FILE, REGULAR_CLOSE, REGULAR_OPEN

FIRST_YEAR, LAST_YEAR = 1990, 2030


def build_calendar(
    exchange: str = "XNYS", first_year: int = FIRST_YEAR, last_year: int = LAST_YEAR
) -> dict[str, Any]:
    """The calendar document of ``exchange`` for whole years ``first_year..last_year``.

    Returns
    -------
    dict
        ``exchange``, ``timezone``, ``source`` (library and version), ``first_day`` and
        ``last_day`` (ISO dates covered), ``regular_open`` and ``regular_close`` (local
        ``HH:MM``), ``closed_weekdays`` (ISO dates, ascending), ``late_opens`` and
        ``early_closes`` (ISO date -> local ``HH:MM``).
    """
    import exchange_calendars

    start, end = date(first_year, 1, 1), date(last_year, 12, 31)
    calendar = exchange_calendars.get_calendar(
        exchange, start=start.isoformat(), end=end.isoformat()
    )
    zone = str(calendar.tz)
    schedule = calendar.schedule
    sessions: set[date] = set()
    late_opens: dict[str, str] = {}
    early_closes: dict[str, str] = {}
    for day, row in schedule.iterrows():
        session = day.date()
        sessions.add(session)
        opens = row["open"].tz_convert(zone).strftime("%H:%M")
        closes = row["close"].tz_convert(zone).strftime("%H:%M")
        if opens != REGULAR_OPEN[exchange]:
            late_opens[session.isoformat()] = opens
        if closes != REGULAR_CLOSE[exchange]:
            early_closes[session.isoformat()] = closes
    closed = []
    day = start
    while day <= end:
        if day.weekday() < 5 and day not in sessions:
            closed.append(day.isoformat())
        day += timedelta(days=1)
    return {
        "exchange": exchange,
        "timezone": zone,
        "source": f"exchange-calendars {version('exchange-calendars')}",
        "first_day": start.isoformat(),
        "last_day": end.isoformat(),
        "regular_open": REGULAR_OPEN[exchange],
        "regular_close": REGULAR_CLOSE[exchange],
        "closed_weekdays": closed,
        "late_opens": late_opens,
        "early_closes": early_closes,
    }


def render(document: dict[str, Any]) -> str:
    """The JSON text committed in the package (stable: one list item per line)."""
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def main() -> None:
    """Regenerate the committed calendar file of the New York Stock Exchange."""
    CALENDAR_FILE.write_text(render(build_calendar()))
    print(f"wrote {CALENDAR_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
