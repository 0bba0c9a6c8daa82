"""The job queue in a SQLite file: leases by visibility time, a dead-letter table.

Receiving is one write transaction (select the oldest visible message, hide it under a
new receipt), so concurrent receivers in any process never get the same delivery.
A receipt is valid only for its delivery: once the message reappears and is received
again, the old receipt neither extends nor deletes it.
"""

from __future__ import annotations

import os
import secrets
import time

from titan_lib.core.jobs.queue import MAX_RECEIVES, QueueMessage
from titan_lib.core.sqlite_tables import SQLiteTables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    message_id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,
    visible_at REAL NOT NULL, receipt TEXT, receive_count INTEGER NOT NULL,
    sent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS queue_dead_letters (
    message_id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, receive_count INTEGER NOT NULL,
    sent_at REAL NOT NULL, dead_at REAL NOT NULL)
"""
POLL_SECONDS = 0.1


class SQLiteQueue:
    """Job queue in a SQLite file.

    Parameters
    ----------
    path
        The database file.
    max_receives
        Deliveries before a message moves to ``queue_dead_letters``.
    """

    def __init__(self, path: str | os.PathLike[str], max_receives: int = MAX_RECEIVES) -> None:
        self.tables = SQLiteTables(path, _SCHEMA, "the job queue")
        self.uri = self.tables.uri
        self.max_receives = max_receives

    def send(self, job_id: str) -> None:
        now = time.time()
        with self.tables.write() as conn:
            conn.execute(
                "INSERT INTO queue_messages (job_id, visible_at, receive_count, sent_at)"
                " VALUES (?, ?, 0, ?)",
                (job_id, now, now),
            )

    def _receive_now(self, visibility_seconds: float) -> QueueMessage | None:
        now = time.time()
        with self.tables.write() as conn:
            conn.execute(
                "INSERT INTO queue_dead_letters"
                " SELECT message_id, job_id, receive_count, sent_at, ? FROM queue_messages"
                " WHERE visible_at <= ? AND receive_count >= ?",
                (now, now, self.max_receives),
            )
            conn.execute(
                "DELETE FROM queue_messages WHERE visible_at <= ? AND receive_count >= ?",
                (now, self.max_receives),
            )
            row = conn.execute(
                "SELECT message_id, job_id, receive_count FROM queue_messages"
                " WHERE visible_at <= ? ORDER BY visible_at, message_id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            receipt = f"{row[0]}:{secrets.token_hex(8)}"
            conn.execute(
                "UPDATE queue_messages SET visible_at = ?, receipt = ?,"
                " receive_count = receive_count + 1 WHERE message_id = ?",
                (now + visibility_seconds, receipt, row[0]),
            )
        return QueueMessage(job_id=str(row[1]), receipt=receipt, receive_count=int(row[2]) + 1)

    def receive(self, wait_seconds: float, visibility_seconds: float) -> QueueMessage | None:
        deadline = time.monotonic() + wait_seconds
        while True:
            message = self._receive_now(visibility_seconds)
            if message is not None or time.monotonic() >= deadline:
                return message
            time.sleep(POLL_SECONDS)

    def extend(self, receipt: str, visibility_seconds: float) -> None:
        with self.tables.write() as conn:
            conn.execute(
                "UPDATE queue_messages SET visible_at = ? WHERE receipt = ?",
                (time.time() + visibility_seconds, receipt),
            )

    def delete(self, receipt: str) -> None:
        with self.tables.write() as conn:
            conn.execute("DELETE FROM queue_messages WHERE receipt = ?", (receipt,))

    def dead_letters(self) -> list[str]:
        """Job ids of the messages moved to the dead-letter table, oldest first."""
        rows = self.tables.read().execute(
            "SELECT job_id FROM queue_dead_letters ORDER BY message_id"
        )
        return [str(row[0]) for row in rows.fetchall()]
