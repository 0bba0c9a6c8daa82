"""The page request a dashboard kernel serves: URL parameters and the store to read.

Voilà runs a preheated kernel's notebook before anyone asks for the page: the notebook
builds its default view from :func:`current_request` and then follows the visit with
:func:`visit`, which waits until the page is requested and reads the query string
(``QUERY_STRING``, e.g. ``run=...&pair=KO/PEP``); see :mod:`titan_lib.dashboards.preheat`.
Standard library only, but for the websocket client that waits for the visit.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs

QUERY_ENV = "QUERY_STRING"


@dataclass(frozen=True)
class PageRequest:
    """What the visitor asked for.

    Attributes
    ----------
    run
        Run id to preselect (``?run=``), or ``None``.
    pair
        Pair to preselect, ``"Y/X"`` (``?pair=``), or ``None``.
    model
        Model id to preselect (``?model=``), or ``None``.
    store
        The store URI the dashboards read: ``$TITAN_STORE`` (set by ``titan dashboard``),
        else the default store.
    """

    run: str | None = None
    pair: str | None = None
    model: str | None = None
    store: str | None = None


def parse_query(query: str, store: str | None = None) -> PageRequest:
    """A :class:`PageRequest` from a URL query string (first value of each key wins)."""
    values = parse_qs(query.lstrip("?"), keep_blank_values=False)

    def first(key: str) -> str | None:
        found = values.get(key)
        return found[0].strip() or None if found else None

    return PageRequest(run=first("run"), pair=first("pair"), model=first("model"), store=store)


def current_request() -> PageRequest:
    """The request as known now: the URL parameters of a kernel started for a page view,
    none in a preheated kernel that no visitor has asked for yet."""
    return parse_query(os.environ.get(QUERY_ENV, ""), store=os.environ.get("TITAN_STORE"))


@contextmanager
def visit(open_timeout: float = 5.0) -> Iterator[PageRequest]:
    """The request of this kernel's visitor, with the visit held open while the page is
    made for it.

    In a preheated kernel (``VOILA_PREHEAT=True``) it blocks until Voilà hands the kernel
    to a visitor: one JSON message on :func:`visit_url` (the protocol of
    ``voila.utils.wait_for_request``, spoken here without importing the ``voila`` package,
    which loads the whole Jupyter server into the kernel: about 2 s of CPU per kernel)
    puts the visit's variables (``QUERY_STRING``, ...) into ``os.environ``. The socket
    stays open until the ``with`` block ends: ``titan dashboard`` lets the visitor's
    browser connect to the kernel only once it closes (see
    :mod:`titan_lib.dashboards.voila_app`), so the browser never sees half of a page
    being rebuilt. When the server cannot be reached within ``open_timeout`` seconds,
    the kernel keeps the request it has and a warning is logged.

    Outside a preheated kernel (a kernel started for the page, JupyterLab) it yields the
    request as known at once.
    """
    if os.environ.get("VOILA_PREHEAT") != "True":
        yield current_request()
        return
    from websockets.exceptions import WebSocketException
    from websockets.sync.client import ClientConnection, connect

    url = visit_url()
    socket: ClientConnection | None = None
    variables: dict[str, str] = {}
    try:
        socket = connect(url, open_timeout=open_timeout, proxy=None)
        variables = json.loads(socket.recv())
    except (OSError, TimeoutError, WebSocketException) as error:
        logging.getLogger(__name__).warning("no visit from %s: %s", url, error)
    try:
        os.environ.update({name: str(value) for name, value in variables.items()})
        yield current_request()
    finally:
        if socket is not None:
            socket.close()


def visit_url(environ: Mapping[str, str] | None = None) -> str:
    """Voilà's websocket that sends a preheated kernel its visit:
    ``<ws base URL>voila/query/<kernel id>``, from the variables Voilà gives the kernel."""
    env = os.environ if environ is None else environ
    server_url = env.get("VOILA_SERVER_URL", "/")
    base = env.get("VOILA_WS_BASE_URL", server_url)
    host = f"{env.get('VOILA_APP_IP', '127.0.0.1')}:{env.get('VOILA_APP_PORT', '8866')}"
    protocol = env.get("VOILA_WS_PROTOCOL", "ws")
    return f"{protocol}://{host}{base}voila/query/{env.get('VOILA_KERNEL_ID', '')}"
