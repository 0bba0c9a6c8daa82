"""The page request a dashboard kernel serves: URL parameters and the store to read.

Voilà runs a preheated kernel's notebook before anyone asks for the page: the notebook
builds its default view from :func:`current_request` and then follows the visit with
:func:`page_request`, which waits until the page is requested and reads the query string
(``QUERY_STRING``, e.g. ``run=...&pair=KO/PEP``); see :mod:`titan_lib.dashboards.preheat`.
Standard library only.
"""

from __future__ import annotations

import os
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


def page_request() -> PageRequest:
    """Wait for the page request (preheated kernels) and read its URL parameters.

    Outside Voilà (a notebook opened in JupyterLab) it returns at once with no parameters.
    """
    if os.environ.get("VOILA_PREHEAT") == "True":
        from voila.utils import wait_for_request

        wait_for_request()
    return current_request()
