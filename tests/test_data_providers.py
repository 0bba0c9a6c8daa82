"""`titan data fetch` against a fake Alpaca bars API on 127.0.0.1 (a real HTTP server).

The server speaks the bars endpoint's contract (symbols, timeframe, start/end, adjustment,
limit, page_token; keys in headers) over seeded prices with a 2:1 split, and misbehaves on
cue: 5xx, slow answers, bodies cut short, 429 with Retry-After or X-RateLimit-Reset.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from titan_lib.cli import main
from titan_lib.data import load_prices
from titan_lib.data.providers import (
    ProviderRejectedError,
    ProviderUnavailableError,
    RetryPolicy,
    fetch_prices,
    open_provider,
    provider_names,
    register_provider,
)
from titan_lib.data.providers.alpaca import AlpacaBars, AlpacaDataSettings
from titan_lib.exceptions import DataValidationError, NotFoundError, ParameterError

KEY, SECRET = "test-key-id", "test-secret-key"
START = dt.date(2021, 1, 4)
CALENDAR = (START + dt.timedelta(days=i) for i in range(90))
SESSIONS = [day for day in CALENDAR if day.weekday() < 5][:60]
SPLIT_DAY = 30
"""XYZ splits 2:1 before its 31st session: raw prices halve, adjusted ones do not jump."""
FAST = RetryPolicy(attempts=4, timeout_s=10.0, base_delay_s=0.001, max_delay_s=0.01)
NEW_YORK = ZoneInfo("America/New_York")


def _series(seed: int, level: float) -> list[float]:
    steps = np.random.default_rng(seed).normal(0.0, 0.01, len(SESSIONS))
    return [round(level * math.exp(x), 4) for x in np.cumsum(steps)]


ADJUSTED = {"KO": _series(1, 50.0), "PEP": _series(2, 130.0), "XYZ": _series(3, 40.0)}
RAW = {
    **ADJUSTED,
    "XYZ": [p * (2.0 if i < SPLIT_DAY else 1.0) for i, p in enumerate(ADJUSTED["XYZ"])],
}


def _bar(day: dt.date, close: float) -> dict[str, Any]:
    midnight = dt.datetime.combine(day, dt.time(), NEW_YORK).astimezone(dt.UTC)
    return {
        "t": midnight.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "o": close,
        "h": round(close * 1.01, 4),
        "l": round(close * 0.99, 4),
        "c": close,
        "v": 1000,
        "n": 10,
        "vw": close,
    }


@dataclass
class Seen:
    """One request as the server saw it."""

    query: dict[str, str]
    headers: dict[str, str]
    at: float


@dataclass
class FakeAlpaca:
    """State of the fake API: a queue of misbehaviours, then normal answers."""

    url: str = ""
    script: list[tuple[str, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    override: dict[str, list[float]] = field(default_factory=dict)

    def answer(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        symbols = query["symbols"].split(",")
        bad = [s for s in symbols if not s.replace(".", "").isalnum()]
        if bad:
            return 400, {}, json.dumps({"message": f"invalid symbol: {bad[0]}"}).encode()
        closes = {**(RAW if query.get("adjustment") == "raw" else ADJUSTED), **self.override}
        start = dt.date.fromisoformat(query["start"])
        end = dt.date.fromisoformat(query["end"]) if "end" in query else SESSIONS[-1]
        flat = [
            (symbol, _bar(day, closes[symbol][i]))
            for symbol in sorted(symbols)
            if symbol in closes
            for i, day in enumerate(SESSIONS)
            if start <= day <= end
        ]
        offset = int(base64.b64decode(query["page_token"])) if "page_token" in query else 0
        limit = int(query.get("limit", "1000"))
        page = flat[offset : offset + limit]
        bars: dict[str, list[dict[str, Any]]] = {}
        for symbol, bar in page:
            bars.setdefault(symbol, []).append(bar)
        more = offset + limit < len(flat)
        token = base64.b64encode(str(offset + limit).encode()).decode() if more else None
        return 200, {}, json.dumps({"bars": bars, "next_page_token": token}).encode()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeAlpaca]:
    state = FakeAlpaca()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, headers: dict[str, str], body: bytes, length: int) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(length))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parts.query))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.seen.append(Seen(query, headers, time.time()))
            if parts.path != "/v2/stocks/bars":
                self._send(404, {}, b'{"message": "not found"}', 24)
                return
            if (self.headers.get("APCA-API-KEY-ID"), self.headers.get("APCA-API-SECRET-KEY")) != (
                KEY,
                SECRET,
            ):
                self._send(401, {}, b'{"message": "unauthorized."}', 28)
                return
            kind, arg = state.script.pop(0) if state.script else ("normal", None)
            if kind == "status":
                status, headers = arg
                body = json.dumps({"message": f"fake {status}"}).encode()
                self._send(status, headers, body, len(body))
                return
            if kind == "slow":
                time.sleep(arg)
            status, headers, body = state.answer(query)
            if kind == "truncate":
                self._send(status, headers, body[: len(body) // 2], len(body))
                self.close_connection = True
                return
            self._send(status, {**headers, **(arg or {})}, body, len(body))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def api(fake_server: FakeAlpaca, monkeypatch: pytest.MonkeyPatch) -> FakeAlpaca:
    """The fake API, reset, with the keys and its URL in the environment."""
    fake_server.script.clear()
    fake_server.seen.clear()
    fake_server.override.clear()
    monkeypatch.setenv("TITAN_ALPACA_KEY_ID", KEY)
    monkeypatch.setenv("TITAN_ALPACA_SECRET_KEY", SECRET)
    monkeypatch.setenv("TITAN_ALPACA_DATA_URL", fake_server.url)
    return fake_server


def _provider(api: FakeAlpaca, page_limit: int = 10_000, retry: RetryPolicy = FAST) -> AlpacaBars:
    return AlpacaBars(
        AlpacaDataSettings(KEY, SECRET, base_url=api.url, page_limit=page_limit, retry=retry)
    )


def _store_files(store: str) -> dict[str, bytes]:
    root = Path(store)
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_pages_are_joined_per_symbol_and_stored_adjusted_through_the_ingest(
    api: FakeAlpaca, local_store: str
) -> None:
    provider = _provider(api, page_limit=25)
    report = fetch_prices(["KO", "pep", "XYZ"], start=START, provider=provider, store=local_store)

    # 180 bars in pages of 25: symbols end and begin in the middle of pages
    assert len(api.seen) == 8
    assert [s.query.get("page_token") is None for s in api.seen] == [True] + [False] * 7
    first = api.seen[0]
    assert first.query["symbols"] == "KO,PEP,XYZ"
    assert first.query["timeframe"] == "1Day"
    assert first.query["adjustment"] == "all"
    assert first.query["start"] == "2021-01-04" and "end" not in first.query
    assert first.headers["apca-api-key-id"] == KEY
    assert first.headers["apca-api-secret-key"] == SECRET
    assert KEY not in api.url and all(KEY not in str(s.query) for s in api.seen)

    assert report.rows_added == 180 and report.sources == ["alpaca:KO,PEP,XYZ"]
    assert "fetched from alpaca in 8 requests (0 retries" in str(report)
    stored = load_prices(["KO", "PEP", "XYZ"], store=local_store)
    for symbol, closes in ADJUSTED.items():
        rows = stored.filter(pl.col("symbol") == symbol).sort("date")
        assert rows.get_column("date").to_list() == SESSIONS  # New York session dates
        assert rows.get_column("close").to_list() == pytest.approx(closes)

    xyz = stored.filter(pl.col("symbol") == "XYZ").sort("date").get_column("close").to_numpy()
    raw_jump = math.log(RAW["XYZ"][SPLIT_DAY] / RAW["XYZ"][SPLIT_DAY - 1])
    assert raw_jump < -0.6  # the unadjusted series halves at the split
    assert np.abs(np.diff(np.log(xyz))).max() < 0.06  # the stored one does not

    again = fetch_prices(["KO"], start=START, provider=provider, store=local_store)
    assert again.rows_added == 0 and again.rows_revised == 0  # the same ingest: idempotent


def test_5xx_timeouts_and_cut_pages_are_retried_with_backoff(
    api: FakeAlpaca, local_store: str
) -> None:
    api.script[:] = [
        ("status", (500, {})),
        ("slow", 3.0),  # longer than the 1.5 s timeout
        ("truncate", None),  # a page cut short is never parsed as a shorter page
        ("status", (503, {})),
    ]
    provider = _provider(api, retry=RetryPolicy(attempts=5, timeout_s=1.5, base_delay_s=0.001))
    report = fetch_prices(["KO", "PEP"], start=START, provider=provider, store=local_store)
    assert len(api.seen) == 5
    assert provider.log.retries == 4
    assert report.rows_added == 120
    stored = load_prices(["KO"], store=local_store).sort("date")
    assert stored.get_column("close").to_list() == pytest.approx(ADJUSTED["KO"])


def test_rate_limits_wait_for_retry_after_and_the_announced_reset(
    api: FakeAlpaca, local_store: str
) -> None:
    reset_at = int(time.time()) + 2
    api.script[:] = [
        ("status", (429, {"Retry-After": "1"})),
        ("status", (429, {"X-RateLimit-Reset": str(reset_at)})),
        ("normal", {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_at + 1)}),
    ]
    provider = _provider(api, page_limit=100)
    fetch_prices(["KO", "PEP"], start=START, provider=provider, store=local_store)
    times = [s.at for s in api.seen]
    assert len(times) == 4  # two refused, then page 1, then page 2
    assert times[1] - times[0] >= 0.95  # Retry-After: 1
    assert times[2] >= reset_at - 0.05  # X-RateLimit-Reset
    assert times[3] >= reset_at + 1 - 0.05  # Remaining 0: wait before the next page
    assert provider.log.retries == 2 and provider.log.waited_s >= 1.8  # 1 s + reset waits


def test_a_fetch_failing_half_way_writes_nothing(api: FakeAlpaca, local_store: str) -> None:
    fetch_prices(["KO"], start=START, end=SESSIONS[9], provider=_provider(api), store=local_store)
    before = _store_files(local_store)
    assert before

    api.script[:] = [("normal", None)] + [("status", (502, {}))] * 10
    with pytest.raises(ProviderUnavailableError) as info:
        fetch_prices(
            ["KO", "PEP"], start=START, provider=_provider(api, page_limit=50), store=local_store
        )
    assert "no usable answer after 4 tries; last: HTTP 502" in info.value.message
    assert "alpaca bars for KO, PEP" in info.value.message
    assert len(api.seen) == 1 + 1 + 4  # the first fetch, page 1, four tries of page 2
    assert _store_files(local_store) == before

    api.script.clear()
    api.override["PEP"] = [-1.0] * len(SESSIONS)  # bad bars fail the ingest's validation
    with pytest.raises(
        DataValidationError,
        match=r"^alpaca bars of PEP: row \d+ \(date 2021-01-04\), column close: value -1.0 must",
    ):
        fetch_prices(["KO", "PEP"], start=START, provider=_provider(api), store=local_store)
    assert _store_files(local_store) == before


def test_bad_and_unknown_symbols_are_named_and_nothing_is_written(
    api: FakeAlpaca, local_store: str
) -> None:
    with pytest.raises(ProviderRejectedError, match=r"HTTP 400: invalid symbol: BAD!"):
        fetch_prices(["KO", "BAD!"], start=START, provider=_provider(api), store=local_store)
    assert len(api.seen) == 1  # a definitive answer is not retried
    with pytest.raises(NotFoundError, match=r"no bars for NOPE from 2021-01-04 to 2021-02-01"):
        fetch_prices(
            ["KO", "NOPE"],
            start=START,
            end=dt.date(2021, 2, 1),
            provider=_provider(api),
            store=local_store,
        )
    assert _store_files(local_store) == {}


def test_keys_come_from_the_environment_or_ssm_and_urls_must_be_safe(
    api: FakeAlpaca, local_store: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    ssm = boto3.client("ssm", endpoint_url=moto_endpoint)
    ssm.put_parameter(Name="/titan/alpaca/key", Value=KEY, Type="SecureString", Overwrite=True)
    ssm.put_parameter(
        Name="/titan/alpaca/secret", Value=SECRET, Type="SecureString", Overwrite=True
    )
    monkeypatch.delenv("TITAN_ALPACA_KEY_ID")
    monkeypatch.delenv("TITAN_ALPACA_SECRET_KEY")
    monkeypatch.setenv("TITAN_ALPACA_KEY_ID_SSM", "/titan/alpaca/key")
    monkeypatch.setenv("TITAN_ALPACA_SECRET_KEY_SSM", "/titan/alpaca/secret")
    report = fetch_prices(["KO"], start=START, store=local_store, retry=FAST)
    assert report.rows_added == 60
    assert api.seen[-1].headers["apca-api-key-id"] == KEY
    assert KEY not in repr(AlpacaDataSettings.from_env())

    monkeypatch.delenv("TITAN_ALPACA_KEY_ID_SSM")
    with pytest.raises(ParameterError, match="the Alpaca data provider needs TITAN_ALPACA_KEY_ID"):
        open_provider("alpaca")
    with pytest.raises(ParameterError, match=r"plain http is allowed for 127\.0\.0\.1 only"):
        AlpacaDataSettings(KEY, SECRET, base_url="http://data.example.com")
    with pytest.raises(ProviderRejectedError, match="HTTP 401: unauthorized"):
        AlpacaBars(AlpacaDataSettings("wrong", SECRET, base_url=api.url)).fetch(["KO"], START)


def test_other_providers_plug_in_by_name(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from titan_lib.data.providers import registry

    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))  # undone after

    class Constant:
        name = "constant"
        log = None

        def fetch(
            self, symbols: list[str], start: dt.date, end: dt.date | None = None
        ) -> pl.DataFrame:
            days = [start + dt.timedelta(days=i) for i in range(3)]
            return pl.DataFrame(
                {"date": days * len(symbols), "symbol": [s for s in symbols for _ in days]}
            ).with_columns(close=pl.lit(10.0))

    with pytest.raises(ParameterError, match="unknown price provider 'constant'; available: "):
        open_provider("constant")
    register_provider("constant", lambda environ, retry: Constant())
    assert {"alpaca", "constant"} <= set(provider_names())
    report = fetch_prices(["AAA", "BBB"], start=START, provider="constant", store=local_store)
    assert report.rows_added == 6 and report.sources == ["constant:AAA,BBB"]


def test_cli_fetch_feeds_the_ingest_and_fails_in_one_line(
    api: FakeAlpaca, local_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "data",
                "fetch",
                "KO,PEP",
                "XYZ",
                "--provider",
                "alpaca",
                "--start",
                "2021-01-04",
                "--end",
                "2021-03-01",
                "--store",
                local_store,
            ]
        )
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"ingested 1 file(s) into {local_store}" in out
    assert "3 symbols" in out and "fetched from alpaca in 1 request (0 retries" in out
    assert api.seen[0].query["end"] == "2021-03-01"
    before = _store_files(local_store)

    api.script[:] = [("status", (500, {}))]
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "fetch", "KO", "--start", "2021-01-04", "--retries", "1", "-s", local_store])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert err.startswith(
        "error: alpaca bars for KO: no usable answer after 1 tries; last: HTTP 500"
    )
    assert "Traceback" not in err
    assert _store_files(local_store) == before


def test_an_empty_store_suggests_the_command_for_that_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = str(tmp_path / "empty-store")
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "symbols", "--store", empty])
    assert exit_info.value.code == 0
    assert f"run `titan data ingest sample --store {empty}`" in capsys.readouterr().out
    with pytest.raises(NotFoundError, match=f"`titan data ingest sample --store {empty}`"):
        load_prices(["KO"], store=empty)
