"""The dashboards' push feed against `titan lambdas local` over a real WebSocket.

A feed subscribes to every channel it is asked for, hands on pushed signals, says in
words when it is live, disconnected (and reconnects by itself) or refused; its token
never shows. Settings come from TITAN_PUSH_URL and TITAN_PUSH_TOKEN (or SSM); the page
says plainly when no push endpoint is configured.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fixtures.lambda_world import lambda_env, serve, token, world_store

from titan_lib.dashboards.live_feed import (
    FeedStatus,
    PushEvent,
    PushFeed,
    PushSettings,
    check_push_url,
)
from titan_lib.exceptions import ParameterError

VIEWER = "signals:read"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str], Any]]:
    tmp = tmp_path_factory.mktemp("feed")
    store, ids = world_store(tmp)
    with serve(lambda_env(str(store), str(tmp / "ledger.sqlite"))) as url:
        from chalicelib.runtime import runtime

        yield url.replace("http://", "ws://") + "/ws", ids, runtime


class Recorder:
    """A feed running on its own event loop in a thread, with what it reported."""

    def __init__(self, settings: PushSettings, channels: list[str]) -> None:
        self.statuses: list[FeedStatus] = []
        self.events: list[PushEvent] = []
        self.feed = PushFeed(settings, self.events.append, self.statuses.append)
        self.feed.want(channels)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.task = asyncio.run_coroutine_threadsafe(self.feed.run(), self.loop)

    def wait(self, check: Callable[[], Any], seconds: float = 10.0) -> Any:
        deadline = time.monotonic() + seconds
        while not (found := check()):
            assert time.monotonic() < deadline, f"not reported in {seconds} s: {self.statuses}"
            time.sleep(0.02)
        return found

    def stop(self) -> None:
        self.task.cancel()
        concurrent.futures.wait([self.task], timeout=10)
        time.sleep(0.1)  # the cancelled task closes its connection on the loop
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def test_the_feed_is_live_receives_pushed_signals_and_reconnects(api) -> None:
    url, ids, runtime = api
    from chalicelib.live import live

    from titan_lib.core.push.publisher import publish

    bearer = token(VIEWER, sub="feed-viewer")
    channels = [f"signals:{i}" for i in ids]
    recorder = Recorder(PushSettings(url, bearer), [*channels, "fills", "signals:" + "0" * 64])
    try:
        live_status = recorder.wait(lambda: recorder.feed.status.live and recorder.feed.status)
        assert set(live_status.subscribed) == set(channels)
        refused = dict(live_status.refused)
        assert (
            "scope orders:write" in refused["fills"]
            and "no model" in refused["signals:" + "0" * 64]
        )
        words = live_status.describe()
        assert words.startswith(f"Live: updates are pushed from {url}")
        assert "2 models subscribed" in words and "Not pushed: 1 model(s)" in words

        services = live(runtime())
        publish(services.connections, services.sender(), channels[0], "signal", {"zscore": 1.5})
        event = recorder.wait(lambda: recorder.events and recorder.events[-1])
        assert (event.channel, event.event, event.data) == (channels[0], "signal", {"zscore": 1.5})
        assert recorder.feed.status.last_push == event.received_at

        # the server drops the connection: the feed says so, reconnects and subscribes again
        (mine,) = [
            s for s in services.connections.subscribers(channels[0]) if s.principal == "feed-viewer"
        ]
        _delete(url, mine.connection_id)
        lost = recorder.wait(
            lambda: next((s for s in recorder.statuses if s.state == "reconnecting"), None)
        )
        assert lost.describe().startswith(f"Not live: disconnected from {url}")
        assert "reconnecting in 0.5 s" in lost.describe()
        again = recorder.wait(
            lambda: (
                recorder.statuses[-1].live
                and recorder.statuses.index(lost) < len(recorder.statuses) - 1
                and recorder.statuses[-1]
            )
        )
        assert set(again.subscribed) == set(channels)
        assert all(bearer not in s.describe() for s in recorder.statuses)
    finally:
        recorder.stop()


def _delete(url: str, connection_id: str) -> None:
    """Close a connection from the server side (the management API's DELETE)."""
    import urllib.request

    base = url.replace("ws://", "http://").removesuffix("/ws")
    request = urllib.request.Request(f"{base}/@connections/{connection_id}", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_a_refused_token_is_said_in_words_and_never_shown(api) -> None:
    url, *_ = api
    bearer = token(VIEWER, secret="another-secret-" + "y" * 40)
    recorder = Recorder(PushSettings(url, bearer), ["fills"])
    try:
        refused = recorder.wait(
            lambda: next((s for s in recorder.statuses if s.state == "refused"), None)
        )
        words = refused.describe()
        assert words.startswith(f"Not live: {url} refused the push token (HTTP 401: ")
        assert "trying again in 60 s" in words and bearer not in words
        assert recorder.events == []
    finally:
        recorder.stop()


def test_settings_come_from_the_environment_or_ssm(moto_endpoint: str) -> None:
    assert PushSettings.from_env({}) is None
    with pytest.raises(ParameterError, match="no token: set TITAN_PUSH_TOKEN"):
        PushSettings.from_env({"TITAN_PUSH_URL": "ws://127.0.0.1:8000/ws"})
    for bad in ("http://127.0.0.1:8000/ws", "ws:///ws", "https://api.example/api?token=abc"):
        with pytest.raises(ParameterError, match="push URL must") as refused:
            check_push_url(bad)
        assert "abc" not in str(refused.value.message)
    settings = PushSettings.from_env(
        {"TITAN_PUSH_URL": "wss://api.example/api", "TITAN_PUSH_TOKEN": "t.o.k"}
    )
    assert settings is not None and settings.address() == "wss://api.example/api?token=t.o.k"
    assert "t.o.k" not in repr(settings)
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/titan/push-token", Value="from.ssm.token", Type="SecureString", Overwrite=True
    )
    from_ssm = PushSettings.from_env(
        {
            "TITAN_PUSH_URL": "ws://127.0.0.1:8000/ws",
            "TITAN_PUSH_TOKEN_SSM": "/titan/push-token",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    assert from_ssm is not None and from_ssm.token == "from.ssm.token"


def test_without_a_push_endpoint_the_page_says_it_is_not_live(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ipywidgets as widgets

    from titan_lib.dashboards.live_signals import follow_pushes

    def no_read(*_: Any) -> Any:
        raise AssertionError("nothing is read without a push")

    line = widgets.HTML()
    monkeypatch.delenv("TITAN_PUSH_URL", raising=False)
    follow_pushes(line, widgets.Output(), no_read, no_read, no_read)
    assert "data-state='off'" in line.value
    assert "<b>Not live</b>: no push endpoint configured" in line.value
    assert "Press Refresh" in line.value
    monkeypatch.setenv("TITAN_PUSH_URL", "ws://127.0.0.1:9/ws")
    monkeypatch.delenv("TITAN_PUSH_TOKEN", raising=False)
    monkeypatch.delenv("TITAN_PUSH_TOKEN_SSM", raising=False)
    follow_pushes(line, widgets.Output(), no_read, no_read, no_read)
    assert "<b>Not live</b>: a push endpoint is set (ws://127.0.0.1:9/ws) but no token" in (
        line.value
    )
    monkeypatch.setenv("TITAN_PUSH_TOKEN", "a.secret.token")
    follow_pushes(line, widgets.Output(), no_read, no_read, no_read)
    assert "live updates need a Jupyter kernel" in line.value
    assert "a.secret.token" not in line.value


def test_titan_dashboard_passes_the_push_url_and_refuses_a_bad_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from titan_lib.cli import main
    from titan_lib.dashboards.serve import ServeOptions, voila_environment

    options = ServeOptions(folder=tmp_path, store=str(tmp_path), push_url="ws://127.0.0.1:8000/ws")
    env = voila_environment(options, base={"TITAN_PUSH_TOKEN": "t.o.k"})
    assert env["TITAN_PUSH_URL"] == "ws://127.0.0.1:8000/ws" and env["TITAN_PUSH_TOKEN"] == "t.o.k"
    assert "TITAN_PUSH_URL" not in voila_environment(ServeOptions(tmp_path, str(tmp_path)), {})
    with pytest.raises(SystemExit) as exited:
        main(["dashboard", "--push-url", "http://127.0.0.1:8000/ws", "--store", str(tmp_path)])
    assert exited.value.code == 1
    assert "error: the push URL must be ws://HOST:PORT/PATH" in capsys.readouterr().err
