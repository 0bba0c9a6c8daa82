"""Tables in one SQLite file shared by threads and processes, with atomic write blocks.

Each thread has its own connection; :meth:`SQLiteTables.write` runs a ``BEGIN
IMMEDIATE`` transaction, so SQLite's file lock makes every check-then-write inside it
atomic across threads and processes. WAL journaling lets readers proceed while one
writer commits.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from titan_lib.exceptions import StoreError


class SQLiteTables:
    """A SQLite file holding the tables of ``schema`` (created when missing).

    Parameters
    ----------
    path
        The database file; its folder is created if needed.
    schema
        ``CREATE TABLE IF NOT EXISTS`` / ``CREATE INDEX IF NOT EXISTS`` statements,
        separated by ``;``.
    what
        What the file holds, for the error when it cannot be opened.
    """

    def __init__(self, path: str | os.PathLike[str], schema: str, what: str = "") -> None:
        self.path = Path(path).expanduser()
        self.uri = f"sqlite://{self.path}"
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.write() as conn:
                for statement in schema.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"could not open {what or 'the file'} {self.path}: {exc}") from None

    def read(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: each read sees the latest commit)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the file's write lock until it commits."""
        conn = self.read()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
