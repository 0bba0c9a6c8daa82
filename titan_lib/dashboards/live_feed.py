"""Live push for the dashboards: a subscription to the signals API's WebSocket channels.

The WebSocket API (``titan lambdas local`` at ``ws://HOST:PORT/ws``, API Gateway's
``wss://.../api`` in AWS; lambdas/asyncapi.yaml) pushes a model's signal on
``signals:<model_id>`` when it changes and a principal's fills on ``fills``. A
:class:`PushFeed` connects with the bearer token in the query parameter ``token``,
subscribes to the channels a page asks for (one channel per message, so a refused channel
never blocks the others), hands each event to the page and reconnects after a lost
connection, waiting :data:`BACKOFF_SECONDS` (longer, :data:`REFUSED_RETRY_SECONDS`, when
the token is refused). Its :class:`FeedStatus` says in words whether the page is live.

Settings: ``TITAN_PUSH_URL`` (``titan dashboard --push-url``) and the token from
``TITAN_PUSH_TOKEN`` or the SSM parameter named by ``TITAN_PUSH_TOKEN_SSM``
(:func:`titan_lib.core.auth.read_secret`). The token never appears in a status, a page or
a log line: messages are scrubbed of it.

In a Jupyter kernel (Voilà) the feed runs as a task on the kernel's own event loop
(:func:`run_in_kernel`), so the page's widgets are changed on the kernel's main thread,
between two of its messages, as a control's callback would change them.

Standard library at import; the ``websockets`` client is imported when a feed runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from titan_lib.core.push.channels import SIGNALS_PREFIX
from titan_lib.exceptions import ParameterError

PUSH_URL_ENV = "TITAN_PUSH_URL"
PUSH_TOKEN_ENV = "TITAN_PUSH_TOKEN"
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Waits before reconnecting after a lost connection: the n-th attempt waits the n-th
value, the last one from then on; a connection that subscribed starts again at the first."""
REFUSED_RETRY_SECONDS = 60.0
"""Wait before trying again after the endpoint refused the token (HTTP 401 or 403)."""
OPEN_TIMEOUT_SECONDS = 10.0
"""Seconds to open the connection (TCP, TLS and the WebSocket upgrade)."""
PING_SECONDS = 20.0
"""Keep-alive ping interval; a connection that does not answer one in time is lost."""
MAX_MESSAGE_BYTES = 1_000_000

FeedState = Literal["off", "connecting", "live", "reconnecting", "refused"]


def check_push_url(url: str) -> str:
    """``url`` if it is a WebSocket address (``ws://`` or ``wss://`` with a host) that
    carries no token.

    Raises
    ------
    ParameterError
        Another scheme, no host, or a ``token`` in the query (the token comes from
        ``TITAN_PUSH_TOKEN``, never from a URL that is printed and logged).
    """
    parts = urlsplit(url)
    shown = parts._replace(query="", fragment="").geturl()[:120]
    if "token" in parse_qs(parts.query):
        raise ParameterError(
            f"the push URL must not carry the token; set {PUSH_TOKEN_ENV} (or "
            f"{PUSH_TOKEN_ENV}_SSM) instead",
            {"push_url": shown},
        )
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ParameterError(
            f"the push URL must be ws://HOST:PORT/PATH or wss://HOST/PATH, got {shown!r}",
            {"push_url": shown},
        )
    return url


@dataclass(frozen=True)
class PushSettings:
    """Where a page subscribes and with which bearer token.

    Attributes
    ----------
    url
        The WebSocket API (:func:`check_push_url`).
    token
        A bearer token with the scope ``signals:read`` (``orders:write`` too for
        ``fills``); sent as the query parameter ``token`` at connect, never shown.
    """

    url: str
    token: str = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        check_push_url(self.url)
        if not self.token.strip():
            raise ParameterError(f"the push token is empty ({PUSH_TOKEN_ENV})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PushSettings | None:
        """The settings from ``TITAN_PUSH_URL`` and ``TITAN_PUSH_TOKEN`` (or its SSM
        parameter); ``None`` when no push URL is set.

        Raises
        ------
        ParameterError
            A push URL without a token, or a URL that is not a WebSocket address.
        StoreError
            The token's SSM parameter could not be read.
        """
        import os

        from titan_lib.core.auth import read_secret

        env = os.environ if environ is None else environ
        url = (env.get(PUSH_URL_ENV) or "").strip()
        if not url:
            return None
        check_push_url(url)
        token = read_secret(PUSH_TOKEN_ENV, env)
        if not token or not token.strip():
            raise ParameterError(
                f"a push endpoint is set ({url}) but no token: set {PUSH_TOKEN_ENV} or "
                f"{PUSH_TOKEN_ENV}_SSM to a token with the scope signals:read",
                {"push_url": url},
            )
        return cls(url=url, token=token.strip())

    def address(self) -> str:
        """The URL connected to: :attr:`url` with the token as query parameter."""
        separator = "&" if urlsplit(self.url).query else "?"
        return f"{self.url}{separator}{urlencode({'token': self.token})}"


@dataclass(frozen=True)
class PushEvent:
    """One pushed event (lambdas/asyncapi.yaml).

    Attributes
    ----------
    channel
        ``signals:<model_id>``, ``fills`` or ``jobs:<job_id>``.
    event
        ``signal``, ``fill`` or ``job``.
    data
        The HTTP API's document of the event (a Signal, an Order, a Job).
    sent_at
        When the server sent it (ISO 8601).
    received_at
        When it arrived here (ISO 8601 UTC).
    """

    channel: str
    event: str
    data: dict[str, Any]
    sent_at: str
    received_at: str


@dataclass(frozen=True)
class FeedStatus:
    """Whether a page is live, and since when.

    Attributes
    ----------
    state
        ``off`` (no push endpoint, or it cannot be used: :attr:`detail` says why),
        ``connecting``, ``live`` (connected and subscribed), ``reconnecting`` (the
        connection was lost or could not be opened) or ``refused`` (the endpoint refused
        the token).
    url
        The push endpoint (never with the token).
    detail
        Why the page is not live, in words.
    since
        When the state began (ISO 8601 UTC).
    last_push
        When the last event arrived (ISO 8601 UTC), or ``None``.
    retry_in
        Seconds until the next connection attempt (``reconnecting``, ``refused``).
    subscribed
        Channels the endpoint confirmed.
    refused
        Channels the endpoint refused, with its message.
    """

    state: FeedState
    url: str | None = None
    detail: str = ""
    since: str | None = None
    last_push: str | None = None
    retry_in: float | None = None
    subscribed: tuple[str, ...] = ()
    refused: tuple[tuple[str, str], ...] = ()

    @property
    def live(self) -> bool:
        """Whether pushed events reach the page now."""
        return self.state == "live"

    def describe(self) -> str:
        """One or two sentences saying whether the page updates by itself."""
        if self.state == "off":
            return f"Not live: {self.detail}. Press Refresh to read the store again."
        if self.state == "connecting":
            return f"Connecting to {self.url} for live updates."
        if self.state == "reconnecting":
            return (
                f"Not live: disconnected from {self.url} ({self.detail}); reconnecting in "
                f"{self.retry_in:g} s. Press Refresh to read the store now."
            )
        if self.state == "refused":
            return (
                f"Not live: {self.url} refused the push token ({self.detail}); trying again "
                f"in {self.retry_in:g} s. Check {PUSH_TOKEN_ENV}."
            )
        models = sum(1 for c in self.subscribed if c.startswith(SIGNALS_PREFIX))
        text = (
            f"Live: updates are pushed from {self.url} (connected at {clock(self.since)} UTC, "
            f"{models} model{'s' if models != 1 else ''} subscribed"
            + (", fills too" if "fills" in self.subscribed else "")
            + ")."
        )
        signals_refused = [(c, m) for c, m in self.refused if c.startswith(SIGNALS_PREFIX)]
        if signals_refused:
            text += f" Not pushed: {len(signals_refused)} model(s) ({signals_refused[0][1]})."
        return text


def clock(iso: str | None) -> str:
    """``HH:MM:SS`` of an ISO time (``-`` for none)."""
    return iso[11:19] if iso else "-"


def utc_now() -> str:
    """Now, ISO 8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class PushFeed:
    """A reconnecting subscription; :meth:`run` until cancelled.

    Parameters
    ----------
    settings
        Endpoint and token.
    on_event
        Called with each pushed event, on the feed's event loop.
    on_status
        Called with each new status, on the feed's event loop (and once at once).
    """

    def __init__(
        self,
        settings: PushSettings,
        on_event: Callable[[PushEvent], None],
        on_status: Callable[[FeedStatus], None],
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._on_status = on_status
        self._wanted: dict[str, None] = {}
        self._pending: dict[str, None] = {}
        self._subscribed: dict[str, None] = {}
        self._refused: dict[str, str] = {}
        self._connection: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.status = FeedStatus("connecting", url=settings.url, since=utc_now())
        on_status(self.status)

    def want(self, channels: Iterable[str]) -> None:
        """Subscribe to ``channels`` too (now if connected, else at the next connection).

        Callable from any thread.
        """
        new = [c for c in channels if c not in self._wanted]
        self._wanted.update(dict.fromkeys(new))
        if new and self._connection is not None and self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._subscribe(self._connection, new), self._loop)

    def _scrub(self, text: str) -> str:
        return text.replace(self.settings.token, "<token>")

    def _set(self, **changes: Any) -> None:
        self.status = dataclasses.replace(
            self.status,
            subscribed=tuple(self._subscribed),
            refused=tuple(self._refused.items()),
            **changes,
        )
        self._on_status(self.status)

    async def _subscribe(self, connection: Any, channels: Iterable[str]) -> None:
        for channel in channels:
            if channel in self._subscribed or channel in self._pending:
                continue
            self._pending[channel] = None
            await connection.send(json.dumps({"action": "subscribe", "channels": [channel]}))

    def _answered(self) -> None:
        if not self._pending and self.status.state == "connecting":
            self._set(state="live", detail="", since=utc_now(), retry_in=None)
        else:
            self._set()

    def _receive(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {}
            details = error.get("details")
            named = details.get("channel") if isinstance(details, dict) else None
            channel = named or next(iter(self._pending), None)
            if channel is not None:
                self._pending.pop(channel, None)
                self._refused[str(channel)] = self._scrub(str(error.get("message", "refused")))
            self._answered()
            return
        event, data = message.get("event"), message.get("data")
        if event == "subscribed" and isinstance(data, dict):
            for channel in data.get("channels") or []:
                self._pending.pop(channel, None)
                self._subscribed[channel] = None
            self._answered()
        elif isinstance(event, str) and isinstance(message.get("channel"), str):
            received = utc_now()
            self._set(last_push=received)
            self._on_event(
                PushEvent(
                    channel=message["channel"],
                    event=event,
                    data=data if isinstance(data, dict) else {},
                    sent_at=str(message.get("sent_at") or ""),
                    received_at=received,
                )
            )

    async def _session(self) -> None:
        """One connection: subscribe, then hand on messages until it closes."""
        from websockets.asyncio.client import connect

        async with connect(
            self.settings.address(),
            open_timeout=OPEN_TIMEOUT_SECONDS,
            ping_interval=PING_SECONDS,
            ping_timeout=PING_SECONDS,
            max_size=MAX_MESSAGE_BYTES,
        ) as connection:
            self._pending.clear()
            self._subscribed.clear()
            self._refused.clear()
            self._connection = connection
            try:
                await self._subscribe(connection, list(self._wanted))
                self._answered()
                async for raw in connection:
                    self._receive(raw)
            finally:
                self._connection = None

    async def run(self) -> None:
        """Connect, subscribe and reconnect until cancelled."""
        from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

        self._loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            if self.status.state != "connecting":
                self._set(state="connecting", detail="", since=utc_now(), retry_in=None)
            try:
                await self._session()
                reason = "the server closed the connection"
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    self._set(
                        state="refused",
                        detail=f"HTTP {status}: {self._refusal(exc.response.body)}",
                        since=utc_now(),
                        retry_in=REFUSED_RETRY_SECONDS,
                    )
                    await asyncio.sleep(REFUSED_RETRY_SECONDS)
                    continue
                reason = f"the upgrade was answered HTTP {status}"
            except ConnectionClosed as exc:
                reason = f"the connection was lost (code {exc.rcvd.code if exc.rcvd else 1006})"
            except (OSError, TimeoutError, WebSocketException) as exc:
                reason = self._scrub(f"{type(exc).__name__}: {exc}")
            if self.status.state == "live":
                attempt = 0
            delay = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
            attempt += 1
            self._set(state="reconnecting", detail=reason, since=utc_now(), retry_in=delay)
            await asyncio.sleep(delay)

    def _refusal(self, body: bytes | bytearray | None) -> str:
        """The error message of a refused upgrade (the API's one error shape)."""
        try:
            message = json.loads(body or b"{}")["error"]["message"]
        except (ValueError, KeyError, TypeError):
            return "refused"
        return self._scrub(str(message))[:200]


_RUNNING: dict[str, concurrent.futures.Future[None]] = {}


def kernel_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of the Jupyter kernel this code runs in, or ``None`` outside one."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    io_loop = getattr(getattr(shell, "kernel", None), "io_loop", None)
    loop = getattr(io_loop, "asyncio_loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


def run_in_kernel(name: str, feed: PushFeed) -> bool:
    """Run ``feed`` on the kernel's event loop as ``name``, stopping the feed that ran
    under that name before (a page rebuilt replaces its feed). ``False`` outside a kernel.
    """
    loop = kernel_loop()
    if loop is None:
        return False
    stop_feed(name)
    _RUNNING[name] = asyncio.run_coroutine_threadsafe(feed.run(), loop)
    return True


def stop_feed(name: str) -> None:
    """Stop the feed running as ``name``, if any."""
    running = _RUNNING.pop(name, None)
    if running is not None:
        running.cancel()
