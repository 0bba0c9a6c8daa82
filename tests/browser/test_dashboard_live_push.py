"""The live-signals page in headless Chromium updates by push, with no reload and no Refresh.

`titan lambdas local` serves the WebSocket API over a real socket; `titan dashboard
live_signals --push-url ws://.../ws` subscribes the page to every served model's signal
with a token from TITAN_PUSH_TOKEN. The daily run's next closes are then written to the
store's serving prices and the 5-minute push runs: the page must show the pushed signal
within seconds, and say it is live. When the server drops the connection, the page says it
is not live, reconnects by itself and shows what changed meanwhile.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fixtures.lambda_world import lambda_env, serve, token, world_store
from websockets.sync.client import connect

pytest_plugins = ["harness"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

READY = ".titan-dashboard.titan-ready"
LIVE = ".titan-live-status [data-state='live']"
PUSH_SECONDS = 5


def signal_row(page: Any, model_id: str) -> list[str] | None:
    """Cell texts of the signals table's row of ``model_id`` (shown by its first 12
    characters)."""
    return page.evaluate(
        """(prefix) => {
            const rows = Array.from(document.querySelectorAll(
                '.titan-signals table.titan-table tbody tr'));
            const row = rows.find(r => r.cells[0].textContent.trim() === prefix);
            return row ? Array.from(row.cells).map(c => c.textContent.trim()) : null;
        }""",
        model_id[:12],
    )


WATCH_STATES = """() => {
    window.titanStates = [];
    const box = document.querySelector('.titan-live-status');
    new MutationObserver(() => {
        const line = box.querySelector('[data-state]');
        if (line) window.titanStates.push([line.dataset.state, line.innerText]);
    }).observe(box, {subtree: true, childList: true, characterData: true});
}"""
"""Record every state the page's live line shows (``window.titanStates``)."""


def wait_for_as_of(page: Any, model_id: str, as_of: str) -> None:
    """Block until the signals table shows ``as_of`` for ``model_id`` (a few seconds)."""
    page.wait_for_function(
        """([prefix, asOf]) => Array.from(document.querySelectorAll(
                '.titan-signals table.titan-table tbody tr'))
            .some(r => r.cells[0].textContent.trim() === prefix
                       && r.cells[2].textContent.trim() === asOf)""",
        arg=[model_id[:12], as_of],
        timeout=PUSH_SECONDS * 1000,
    )


def drop_connection(api: str, connection_id: str) -> None:
    """Close a WebSocket connection from the server side (the management API's DELETE)."""
    request = urllib.request.Request(f"{api}/@connections/{connection_id}", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def next_session(last: str) -> str:
    """The weekday after ISO date ``last``."""
    day = date.fromisoformat(last) + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.isoformat()


def append_closes(store: Path, moves: dict[str, float]) -> str:
    """Write the next session's close of each symbol (last close times its move) to the
    serving prices, as the daily run does; returns the new date."""
    from titan_lib.core.prices import price_tail_key

    new_date = ""
    for symbol, move in moves.items():
        path = store / price_tail_key(symbol)
        doc = json.loads(path.read_text())
        new_date = next_session(doc["dates"][-1])
        doc["dates"].append(new_date)
        doc["close"].append(doc["close"][-1] * move)
        doc["updated_at"] = f"{new_date}T21:00:00+00:00"
        path.write_text(json.dumps(doc))
    return new_date


def test_live_signals_update_by_push_without_refresh(
    tmp_path: Path,
    serve_dashboard: Any,
    watched_page: Any,
    monkeypatch: pytest.MonkeyPatch,
    screenshot_folder: Path,
) -> None:
    from titan_lib.dashboards.layout import format_value

    page, _ = watched_page
    store, ids = world_store(tmp_path)
    with serve(lambda_env(str(store), str(tmp_path / "ledger.sqlite"))) as api:
        from chalicelib.live import live, push_changed_signals
        from chalicelib.runtime import runtime

        push_changed_signals(runtime())  # today's signals are known: only changes are pushed

        def viewers() -> list[str]:
            connections = live(runtime()).connections
            subscribers = connections.subscribers(f"signals:{ids[0]}")
            return [s.connection_id for s in subscribers if s.principal == "dashboard-viewer"]

        bearer = token("signals:read", sub="dashboard-viewer")
        monkeypatch.setenv("TITAN_PUSH_TOKEN", bearer)
        push_url = api.replace("http://", "ws://") + "/ws"
        server = serve_dashboard(
            "live_signals", "--store", str(store), "--push-url", push_url, "--refill-delay", "60"
        )  # no second kernel starts while the page is tested
        assert viewers() == []  # a preheated kernel connects only once its page is visited

        page.goto(server.url("live_signals"))
        page.wait_for_selector(READY)
        page.wait_for_selector(LIVE, timeout=15_000)
        status = page.inner_text(".titan-live-status")
        assert status.startswith("Live:") and push_url in status
        assert "2 models subscribed" in status and "No push yet" in status
        assert bearer not in page.content()
        assert len(viewers()) == 1
        before = signal_row(page, ids[0])
        assert before is not None
        page.evaluate("window.titanSamePage = true")  # gone if the page reloads

        new_date = append_closes(store, {"KO": 1.06, "PEP": 1.0})
        with connect(f"{push_url}?token={bearer}", open_timeout=5) as probe:
            probe.send(json.dumps({"action": "subscribe", "channels": [f"signals:{ids[0]}"]}))
            assert json.loads(probe.recv(timeout=5))["event"] == "subscribed"
            outcome = push_changed_signals(runtime())
            pushed = json.loads(probe.recv(timeout=5))
        assert outcome["changed"] >= 1 and outcome["sent"] >= 2  # the page and the probe
        assert pushed["event"] == "signal" and pushed["data"]["as_of"] == new_date

        wait_for_as_of(page, ids[0], format_value(new_date, "as_of"))
        after = signal_row(page, ids[0])
        assert after is not None and after != before
        assert after[3] == format_value(pushed["data"]["zscore"], "zscore")
        assert after[3] != before[3]
        assert after[4] == pushed["data"]["action"]
        page.wait_for_function(
            "() => document.querySelector('.titan-live-status').innerText.includes('Last push')",
            timeout=PUSH_SECONDS * 1000,
        )
        status = page.inner_text(".titan-live-status")
        assert "KO/PEP signal: z-score " + after[3] in status and new_date in status
        page.screenshot(path=str(screenshot_folder / "live_signals_push.png"), full_page=True)

        # the server drops the page's connection and a close is written while it is gone:
        # the page says it is not live, reconnects and reads what it missed
        page.evaluate(WATCH_STATES)
        (connection_id,) = viewers()
        drop_connection(api, connection_id)
        newer = append_closes(store, {"KO": 0.94, "PEP": 1.0})
        missed = push_changed_signals(runtime())
        assert missed == {"changed": 1, "sent": 0}  # the page waits 0.5 s to reconnect
        wait_for_as_of(page, ids[0], format_value(newer, "as_of"))
        page.wait_for_selector(LIVE, timeout=PUSH_SECONDS * 1000)
        states = page.evaluate("window.titanStates")
        lost = [text for state, text in states if state == "reconnecting"]
        assert lost and lost[0].startswith(f"Not live: disconnected from {push_url}")
        assert "reconnecting in 0.5 s" in lost[0]
        assert len(viewers()) == 1
        assert page.evaluate("window.titanSamePage === true")
        assert bearer not in page.content()
