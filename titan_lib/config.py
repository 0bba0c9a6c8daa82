"""Where things live: the store URI and other settings read from the environment.

Standard library only.
"""

from __future__ import annotations

import os

DEFAULT_STORE = "./titan-data"
"""The embedded default store: a local folder under the working directory."""


def store_uri(store: str | os.PathLike[str] | None = None) -> str:
    """Resolve a store URI.

    Parameters
    ----------
    store
        An explicit URI (a local path or ``s3://bucket/prefix``). When ``None``, the
        environment variable ``TITAN_STORE`` is used, then :data:`DEFAULT_STORE`.

    Returns
    -------
    str
        The URI as given (paths are not made absolute here).
    """
    if store is not None:
        return os.fspath(store)
    return os.environ.get("TITAN_STORE") or DEFAULT_STORE


def store_option(store: str | os.PathLike[str] | None = None) -> str:
    """``" --store URI"`` to append to a command suggested to the user, so the command
    works on the store the user is on; empty for the default ``./titan-data`` here.

    Local paths are shown absolute (the command may be run from another folder).
    """
    import shlex
    from pathlib import Path

    uri = store_uri(store)
    if not uri.startswith("s3://"):
        path = Path(uri).expanduser().resolve()
        if path == Path(DEFAULT_STORE).resolve():
            return ""
        uri = str(path)
    return f" --store {shlex.quote(uri)}"
