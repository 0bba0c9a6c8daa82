"""The Voilà application ``titan dashboard`` runs: Voilà with TITAN's page-not-found routes.

Plain Voilà answers an address it has no route for (``/nope``, ``/a/b/c``) with tornado's
bare "404: Not Found" and a dashboard name typed without ``.ipynb``
(``/voila/render/live_signals``) with a redirect to its file server, which refuses it
with a bare 403. :class:`TitanVoila` sends both to :class:`PageNotFoundHandler`: status
404 and the dashboard template's ``404.html``, the same page an unknown dashboard gets,
with its link to the landing page and nothing loaded from beyond the server; a
dashboard's name without ``.ipynb`` also gets a link to that dashboard.

Run as ``python -m titan_lib.dashboards.voila_app`` with Voilà's own options (see
:func:`titan_lib.dashboards.serve.voila_command`).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join
from tornado import web
from voila.app import Voila
from voila.handler import BaseVoilaHandler

from titan_lib.dashboards.catalog import DASHBOARDS

NOT_A_NOTEBOOK = r"/voila/render/(.*(?<!\.ipynb))"
"""A render address whose last part does not end in ``.ipynb`` (Voilà would redirect it
to its file server)."""
ANY_ADDRESS = r"/(.*)"
"""Every address; routed last, so it only takes what no other route serves."""


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


class TitanVoila(Voila):
    """Voilà serving the dashboards folder, with :class:`PageNotFoundHandler` for render
    addresses that are not notebooks and for addresses Voilà has no route for."""

    def init_handlers(self) -> list[Any]:
        """Voilà's routes between the two page-not-found routes."""
        handlers: list[Any] = super().init_handlers()
        options = {"voila_configuration": self.voila_configuration}
        first = (url_path_join(self.server_url, NOT_A_NOTEBOOK), PageNotFoundHandler, options)
        last = (url_path_join(self.server_url, ANY_ADDRESS), PageNotFoundHandler, options)
        return [first, *handlers, last]


main = TitanVoila.launch_instance

if __name__ == "__main__":
    main()
