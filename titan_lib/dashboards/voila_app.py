"""The Voilà application ``titan dashboard`` runs: Voilà with TITAN's page-not-found routes.

Plain Voilà answers an address it has no route for (``/nope``, ``/a/b/c``) with tornado's
bare "404: Not Found" and a dashboard name typed without ``.ipynb``
(``/voila/render/live_signals``) with a redirect to its file server, which refuses it
with a bare 403. :class:`TitanVoila` sends both to :class:`PageNotFoundHandler`: status
404 and the dashboard template's ``404.html``, the same page an unknown dashboard gets,
with its link to the landing page and nothing loaded from beyond the server; a
dashboard's name without ``.ipynb`` also gets a link to that dashboard.

A visitor's browser connects to a preheated kernel only once the kernel has made the page
for the visit: the kernel keeps Voilà's visit socket (``/voila/query/<kernel id>``) open
while it rebuilds (:func:`titan_lib.dashboards.request.visit`), and
:class:`VisitedKernelSocketHandler` holds the browser's kernel connection until that socket
closes (at most :data:`PAGE_WAIT_SECONDS`). A browser connecting during the rebuild would
receive the opening of some of the new widgets and not others, and show "widget model not
found" where the page should be.

Run as ``python -m titan_lib.dashboards.voila_app`` with Voilà's own options (see
:func:`titan_lib.dashboards.serve.voila_command`).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from jupyter_server.utils import url_path_join
from tornado import web
from voila.app import Voila
from voila.handler import BaseVoilaHandler
from voila.request_info_handler import RequestInfoSocketHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from titan_lib.dashboards.catalog import DASHBOARDS

NOT_A_NOTEBOOK = r"/voila/render/(.*(?<!\.ipynb))"
"""A render address whose last part does not end in ``.ipynb`` (Voilà would redirect it
to its file server)."""
ANY_ADDRESS = r"/(.*)"
"""Every address; routed last, so it only takes what no other route serves."""
PAGE_WAIT_SECONDS = 60.0
"""Longest a browser's kernel connection waits for the kernel to make its visit's page;
after that it connects to the page as it is."""


class PageNotFoundHandler(BaseVoilaHandler):
    """Answers every request with status 404 and the template's page-not-found page."""

    async def prepare(self) -> None:
        """Raise 404 for any method; Voilà's error rendering picks ``404.html``."""
        await super().prepare()
        raise web.HTTPError(404)

    def render_template(self, name: str, **ns: Any) -> str:
        """The page, with ``suggestion`` (title and address) when the address names a
        dashboard without its ``.ipynb``."""
        render = url_path_join(self.base_url, "voila", "render") + "/"
        typed = self.request.path[len(render) :] if self.request.path.startswith(render) else ""
        dashboard = DASHBOARDS.get(typed.strip("/"))
        if dashboard is not None:
            address = url_path_join(self.base_url, dashboard.path)
            ns["suggestion"] = {"title": dashboard.title, "url": address}
        return str(super().render_template(name, **ns))


class VisitSocketHandler(RequestInfoSocketHandler):
    """Voilà's socket that hands a preheated kernel its visit, which also says when the
    kernel has made the page for it: the kernel closes the socket then.

    ``pages_in_making`` holds, per kernel handed a visit, an event set when its socket
    closes (page made, or the kernel gone).
    """

    pages_in_making: ClassVar[dict[str, asyncio.Event]] = {}

    def open(self, kernel_id: str) -> None:  # type: ignore[override]
        self.kernel_id = kernel_id
        super().open(kernel_id)

    def write_message(self, message: Any, binary: bool = False) -> Any:
        """Send the visit (the only message on this socket); the page is now in making."""
        VisitSocketHandler.pages_in_making.setdefault(self.kernel_id, asyncio.Event())
        return super().write_message(message, binary)

    def on_message(self, message: str | bytes) -> None:
        """Kernels send nothing on this socket; anything sent is ignored."""

    def on_close(self) -> None:
        super().on_close()
        made = VisitSocketHandler.pages_in_making.pop(self.kernel_id, None)
        if made is not None:
            made.set()


class VisitedKernelSocketHandler(VoilaKernelWebsocketHandler):
    """Voilà's kernel connection, opened once the kernel has made its visit's page."""

    async def pre_get(self) -> None:
        """After authorisation, wait (at most :data:`PAGE_WAIT_SECONDS`) while the kernel
        makes the page for the visit it was handed."""
        await super().pre_get()
        made = VisitSocketHandler.pages_in_making.get(self.kernel_id)
        if made is None:
            return
        try:
            await asyncio.wait_for(made.wait(), PAGE_WAIT_SECONDS)
        except TimeoutError:
            self.log.warning(
                "kernel %s did not finish its page in %.0f s; connecting to it as it is",
                self.kernel_id,
                PAGE_WAIT_SECONDS,
            )


SUBSTITUTES: dict[type, type] = {
    RequestInfoSocketHandler: VisitSocketHandler,
    VoilaKernelWebsocketHandler: VisitedKernelSocketHandler,
}
"""Voilà's handlers replaced on their own routes."""


class TitanVoila(Voila):
    """Voilà serving the dashboards folder, with :class:`PageNotFoundHandler` for render
    addresses that are not notebooks and for addresses Voilà has no route for, and the
    visit and kernel sockets that let a browser in once its page is made."""

    def init_handlers(self) -> list[Any]:
        """Voilà's routes (visit and kernel sockets substituted) between the two
        page-not-found routes."""
        handlers: list[Any] = [
            (route[0], SUBSTITUTES.get(route[1], route[1]), *route[2:])
            if isinstance(route, tuple)
            else route
            for route in super().init_handlers()
        ]
        options = {"voila_configuration": self.voila_configuration}
        first = (url_path_join(self.server_url, NOT_A_NOTEBOOK), PageNotFoundHandler, options)
        last = (url_path_join(self.server_url, ANY_ADDRESS), PageNotFoundHandler, options)
        return [first, *handlers, last]


main = TitanVoila.launch_instance

if __name__ == "__main__":
    main()
