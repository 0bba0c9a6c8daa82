"""A dashboard built while its kernel is preheated, brought up to date when the page is asked for.

Voilà runs a preheated kernel's notebook before anyone visits; the page is sent as soon as a
visitor asks for it, with what the notebook had drawn by then. A dashboard notebook
therefore builds its default view during preheat (no URL parameters)::

    dashboard = PreheatedPage(build_pair_explorer)   # cell 2: builds and shows the page
    dashboard.follow_requests()                       # cell 3: returns at once

and :meth:`PreheatedPage.follow_requests` waits for the visit in a background thread. When
it comes, the page is rebuilt only if the visitor asked for something else (``?run=``,
``?pair=``, ``?model=``), if the store's runs or models changed since the build, or if the
dashboard always shows fresh data (live signals); the page is rebuilt on the kernel's main
thread (see :func:`on_kernel_thread`). A preheated page is marked
``titan-ready`` only once the visit is known and the page matches it. The visitor's browser
connects to the kernel only after that (the kernel holds its visit open until the page is
made, and ``titan dashboard`` holds the browser's connection until then: see
:func:`titan_lib.dashboards.request.visit`), so it reads the final page whole from the
widget state and never a page half rebuilt. Outside a preheated kernel (cold start,
JupyterLab) the page is built once for the request as it is.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from titan_lib.dashboards.request import PageRequest, current_request, visit

if TYPE_CHECKING:
    import ipywidgets as widgets

Builder = Callable[[PageRequest], "widgets.Widget"]
READY_CLASS = "titan-ready"


def store_fingerprint(store: str | None) -> Hashable:
    """What a page drawn from ``store`` depends on: its run records and published models.

    An unreadable store gets a value equal to nothing, so the page is rebuilt and shows
    the store's error.
    """
    from titan_lib.stores.objects import open_store

    try:
        opened = open_store(store)
        return (tuple(opened.list("runs/")), tuple(opened.list("models/")))
    except Exception:
        return object()


def _preheating() -> bool:
    return os.environ.get("VOILA_PREHEAT") == "True"


class PreheatedPage:
    """A dashboard page that can be rebuilt for the request that finally arrives.

    Parameters
    ----------
    build
        Builds the page for a request (the dashboard's ``build_*`` function).
    fresh_on_visit
        Rebuild on every visit (data that changes by the minute, like live signals).
    """

    def __init__(self, build: Builder, *, fresh_on_visit: bool = False) -> None:
        import ipywidgets as widgets

        self._build = build
        self._fresh_on_visit = fresh_on_visit
        self.request = current_request()
        self._fingerprint = store_fingerprint(self.request.store)
        self.root = widgets.Box([build(self.request)], layout=widgets.Layout(width="100%"))
        self.thread: threading.Thread | None = None
        if _preheating():
            # not ready until the visit is known: a browser never acts on a stale view
            self.page.remove_class(READY_CLASS)

    @property
    def page(self) -> widgets.Widget:
        """The page shown now."""
        return self.root.children[0]

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.root)

    def needs_rebuild(self, request: PageRequest) -> bool:
        """Whether ``request`` would show something other than the page built."""
        if self._fresh_on_visit or request != self.request:
            return True
        return bool(store_fingerprint(request.store) != self._fingerprint)

    def apply(self, request: PageRequest) -> None:
        """Show the page for ``request``, rebuilding only when :meth:`needs_rebuild`."""
        if not self.needs_rebuild(request):
            self.page.add_class(READY_CLASS)
            return
        self.page.remove_class(READY_CLASS)
        self.request = request
        self._fingerprint = store_fingerprint(request.store)
        self.root.children = [self._build(request)]

    def follow_requests(self) -> None:
        """Apply the page request when it arrives (in a background thread when preheated).

        Returns at once, so Voilà holds the page ready to send.
        """
        if not _preheating():
            return
        self.thread = threading.Thread(
            target=self._follow_visit, name="titan-page-request", daemon=True
        )
        self.thread.start()

    def _follow_visit(self) -> None:
        with visit() as request:  # the visitor's browser connects once this block ends
            on_kernel_thread(self.apply, request)
            wait_until_published()


def on_kernel_thread(action: Callable[[PageRequest], None], request: PageRequest) -> None:
    """Run ``action(request)`` on the kernel's main thread, between two of its messages.

    The page's browser asks the kernel for every widget's state (ipywidgets' control
    message) on the main thread, which reads the kernel's table of widgets. A page built
    in another thread at the same time adds widgets to that table while it is read: the
    reply then fails or misses widgets, and the browser shows "widget model not found"
    where the page should be. Built on the main thread, the page is either all in the
    reply or sent after it, each widget opened before the page that holds it.
    Outside a kernel the action runs here.
    """
    from IPython import get_ipython

    shell = get_ipython()
    loop = getattr(getattr(shell, "kernel", None), "io_loop", None)
    if loop is None:
        action(request)
        return
    done = threading.Event()

    def run() -> None:
        try:
            action(request)
        finally:
            done.set()

    loop.add_callback(run)
    done.wait()


def wait_until_published(timeout: float = 10.0) -> None:
    """Return once the kernel has sent every message it has queued so far (the widgets
    of a page just built), or after ``timeout`` seconds.

    The kernel sends its messages from its IOPub thread, in the order they are queued;
    a callback queued behind them runs once they are all sent. Outside a kernel it
    returns at once.
    """
    from IPython import get_ipython

    shell = get_ipython()
    iopub = getattr(getattr(shell, "kernel", None), "iopub_thread", None)
    if iopub is None:
        return
    sent = threading.Event()
    iopub.schedule(sent.set)
    sent.wait(timeout)
