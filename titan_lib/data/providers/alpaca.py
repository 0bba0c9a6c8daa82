"""Daily bars from Alpaca's market-data API (``GET /v2/stocks/bars``).

One request asks for up to :data:`SYMBOLS_PER_REQUEST` symbols with ``timeframe=1Day``,
``adjustment=all`` (split- and dividend-adjusted, so a split is no jump in the series),
``sort=asc`` and ``limit`` bars per page, and follows ``next_page_token`` until the
answer has none. A page holds bars of one or several symbols and may end in the middle of
a symbol: pages are joined per symbol before anything is returned. Each bar's ``t`` is
the session's start in UTC; its date is taken in New York time.

Settings come from the environment (:meth:`AlpacaDataSettings.from_env`):

- ``TITAN_ALPACA_KEY_ID`` and ``TITAN_ALPACA_SECRET_KEY``, or SSM parameter names in
  ``TITAN_ALPACA_KEY_ID_SSM`` / ``TITAN_ALPACA_SECRET_KEY_SSM`` (the keys the broker
  adapter uses), sent as ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY``;
- ``TITAN_ALPACA_DATA_URL``: the API's base URL, default ``https://data.alpaca.markets``
  (plain http for 127.0.0.1 only);
- ``TITAN_ALPACA_DATA_FEED``: ``iex`` or ``sip`` (default: the account's own feed).

A symbol the API refuses stops the fetch with the server's message; a symbol that comes
back without a single bar in the range is an error naming it. Nothing is returned, and so
nothing is stored, until every page of every symbol has arrived.
"""

from __future__ import annotations

import datetime as dt
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from titan_lib.core.execution.alpaca import alpaca_credentials
from titan_lib.data.providers.http import (
    RequestLog,
    RetryPolicy,
    check_base_url,
    get_json,
)
from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError

DEFAULT_DATA_URL = "https://data.alpaca.markets"
DATA_URL_ENV = "TITAN_ALPACA_DATA_URL"
FEED_ENV = "TITAN_ALPACA_DATA_FEED"
SYMBOLS_PER_REQUEST = 100
"""Symbols per request (keeps the URL short; pages are per request)."""
MARKET_TIME_ZONE = "America/New_York"

AlpacaFeed = Literal["iex", "sip"]


@dataclass(frozen=True)
class AlpacaDataSettings:
    """Connection settings of the bars client; keys never appear in ``repr``.

    Attributes
    ----------
    key_id, secret_key
        The API key pair.
    base_url
        ``https://data.alpaca.markets`` unless overridden.
    feed
        ``"iex"`` or ``"sip"``; ``None`` lets the API choose for the account.
    page_limit
        Bars per page (1..10000).
    retry
        Retries, timeouts and rate-limit waits.
    """

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    base_url: str = DEFAULT_DATA_URL
    feed: AlpacaFeed | None = None
    page_limit: int = 10_000
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", check_base_url(self.base_url, DATA_URL_ENV))
        if not 1 <= self.page_limit <= 10_000:
            raise ParameterError(f"page_limit must be in 1..10000, got {self.page_limit}")
        if self.feed not in (None, "iex", "sip"):
            raise ParameterError(f"{FEED_ENV} must be iex or sip, got {self.feed!r}")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, retry: RetryPolicy | None = None
    ) -> AlpacaDataSettings:
        """Keys, base URL and feed from the environment (see the module docstring)."""
        env = os.environ if environ is None else environ
        key_id, secret = alpaca_credentials(env, "the Alpaca data provider")
        feed = env.get(FEED_ENV) or None
        return cls(
            key_id=key_id,
            secret_key=secret,
            base_url=env.get(DATA_URL_ENV) or DEFAULT_DATA_URL,
            feed=feed,  # type: ignore[arg-type]  # checked in __post_init__
            retry=retry or RetryPolicy(),
        )


def _bar_rows(symbol: str, bars: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(bars, list):
        raise DataValidationError(f"{what}: bars of {symbol} are not a list", {"symbol": symbol})
    rows = []
    for bar in bars:
        if not isinstance(bar, dict) or "t" not in bar or "c" not in bar:
            raise DataValidationError(
                f"{what}: a bar of {symbol} has no time 't' or close 'c': {str(bar)[:120]}",
                {"symbol": symbol},
            )
        rows.append(
            {
                "t": str(bar["t"]),
                "symbol": symbol,
                "close": bar.get("c"),
                "open": bar.get("o"),
                "high": bar.get("h"),
                "low": bar.get("l"),
                "volume": bar.get("v"),
            }
        )
    return rows


class AlpacaBars:
    """The ``alpaca`` price provider: adjusted daily bars over HTTPS.

    Attributes
    ----------
    log
        Requests, retries and waits of the last :meth:`fetch`.
    """

    name = "alpaca"

    def __init__(self, settings: AlpacaDataSettings) -> None:
        self.settings = settings
        self.log = RequestLog()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlpacaBars:
        """The provider with :meth:`AlpacaDataSettings.from_env` settings."""
        return cls(AlpacaDataSettings.from_env(environ))

    def _pages(self, symbols: Sequence[str], start: dt.date, end: dt.date | None) -> list[Any]:
        query: dict[str, str] = {
            "symbols": ",".join(symbols),
            "timeframe": "1Day",
            "start": start.isoformat(),
            "adjustment": "all",
            "sort": "asc",
            "limit": str(self.settings.page_limit),
        }
        if end is not None:
            query["end"] = end.isoformat()
        if self.settings.feed is not None:
            query["feed"] = self.settings.feed
        headers = {
            "APCA-API-KEY-ID": self.settings.key_id,
            "APCA-API-SECRET-KEY": self.settings.secret_key,
        }
        what = f"alpaca bars for {', '.join(symbols[:5])}" + (" ..." if len(symbols) > 5 else "")
        pages: list[Any] = []
        seen: set[str] = set()
        while True:
            url = f"{self.settings.base_url}/v2/stocks/bars?{urllib.parse.urlencode(query)}"
            page = get_json(url, headers, self.settings.retry, what=what, log=self.log)
            if not isinstance(page, dict) or not isinstance(page.get("bars") or {}, dict):
                raise DataValidationError(
                    f"{what}: page {len(pages) + 1} is not an object with 'bars' by symbol"
                )
            pages.append(page)
            token = page.get("next_page_token")
            if not token:
                return pages
            if token in seen:
                raise DataValidationError(
                    f"{what}: the API repeated page token {str(token)[:40]!r}; stopping"
                )
            seen.add(str(token))
            query["page_token"] = str(token)

    def fetch(
        self, symbols: Sequence[str], start: dt.date, end: dt.date | None = None
    ) -> pl.DataFrame:
        """Adjusted daily bars of ``symbols`` from ``start`` to ``end`` (inclusive).

        Returns
        -------
        polars.DataFrame
            Long form ``date, symbol, close, open, high, low, volume`` (adjusted prices,
            unvalidated: the ingest validates them).

        Raises
        ------
        NotFoundError
            A symbol has no bar in the range (unknown or not traded then).
        ProviderRejectedError
            The API refused the request (bad keys, a malformed symbol).
        ProviderUnavailableError
            The API kept failing after every retry.
        """
        self.log = RequestLog()
        wanted = list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
        if not wanted:
            raise ParameterError("no symbols to fetch")
        rows: list[dict[str, Any]] = []
        for first in range(0, len(wanted), SYMBOLS_PER_REQUEST):
            chunk = wanted[first : first + SYMBOLS_PER_REQUEST]
            for page in self._pages(chunk, start, end):
                for symbol, bars in (page.get("bars") or {}).items():
                    rows.extend(_bar_rows(str(symbol), bars, "alpaca bars"))
        returned = {row["symbol"] for row in rows}
        missing = [s for s in wanted if s not in returned]
        if missing:
            span = f"{start.isoformat()} to {end.isoformat() if end else 'today'}"
            raise NotFoundError(
                f"alpaca returned no bars for {', '.join(missing)} from {span}; check the "
                "symbol (and that it traded then)",
                {"symbols": missing},
            )
        frame = pl.DataFrame(
            rows,
            schema={
                "t": pl.String,
                "symbol": pl.String,
                "close": pl.Float64,
                "open": pl.Float64,
                "high": pl.Float64,
                "low": pl.Float64,
                "volume": pl.Float64,
            },
            strict=False,
        )
        return (
            frame.with_columns(
                pl.col("t")
                .str.to_datetime(time_zone="UTC", strict=False)
                .dt.convert_time_zone(MARKET_TIME_ZONE)
                .dt.date()
                .alias("date")
            )
            .drop("t")
            .unique(maintain_order=True)
            .select("date", "symbol", "close", "open", "high", "low", "volume")
        )
