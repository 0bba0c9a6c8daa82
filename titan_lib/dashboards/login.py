"""The sign-in page of a token-protected dashboard server (``titan dashboard --token``).

Voilà signs visitors in with Jupyter server's login form, whose page tells them to run
``jupyter server list``: meaningless to a dashboard reader. :class:`TitanIdentityProvider`
keeps Voilà's sign-in (same token check, same cookie) and renders the TITAN page
``login.html`` of the dashboard template instead.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import PasswordIdentityProvider
from voila.voila_identity_provider import VoilaLoginHandler

LOGIN_TEMPLATE = "login.html"


class TitanLoginHandler(VoilaLoginHandler):
    """Voilà's login handler with the TITAN sign-in page."""

    def get_template(self, name: str) -> Any:
        """The TITAN page for the login form; anything else as Voilà has it."""
        if name == LOGIN_TEMPLATE:
            return self.settings["voila_jinja2_env"].get_template(name)
        return super().get_template(name)


class TitanIdentityProvider(PasswordIdentityProvider):
    """Voilà's default token sign-in, with :class:`TitanLoginHandler` as its login page."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.login_handler_class = TitanLoginHandler
