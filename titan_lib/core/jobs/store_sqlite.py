"""Research jobs in the ledger's SQLite file (table ``jobs``)."""

from __future__ import annotations

import json
import os

from titan_lib.core.jobs.models import Job, JobStatus
from titan_lib.core.jobs.store import PageKey
from titan_lib.core.sqlite_tables import SQLiteTables

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, principal TEXT NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL, created_at TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_by_principal ON jobs (principal, created_at, job_id)
"""


class SQLiteJobStore:
    """Job store in a SQLite file (the ledger's, by default).

    Parameters
    ----------
    path
        The database file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.tables = SQLiteTables(path, _SCHEMA, "the job store")
        self.uri = self.tables.uri

    def create_job(self, job: Job) -> tuple[Job, bool]:
        with self.tables.write() as conn:
            row = conn.execute("SELECT doc FROM jobs WHERE job_id = ?", (job.job_id,)).fetchone()
            if row is not None:
                return Job.from_dict(json.loads(row[0])), False
            conn.execute(
                "INSERT INTO jobs (job_id, principal, status, attempts, created_at, doc)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    job.job_id,
                    job.principal,
                    job.status,
                    job.attempts,
                    job.created_at,
                    json.dumps(job.to_dict()),
                ),
            )
        return job, True

    def get_job(self, job_id: str) -> Job | None:
        row = self.tables.read().execute("SELECT doc FROM jobs WHERE job_id = ?", (job_id,))
        found = row.fetchone()
        return None if found is None else Job.from_dict(json.loads(found[0]))

    def list_jobs(self, principal: str, limit: int, after: PageKey | None = None) -> list[Job]:
        sql = "SELECT doc FROM jobs WHERE principal = ?"
        args: list[object] = [principal]
        if after is not None:
            sql += " AND (created_at < ? OR (created_at = ? AND job_id < ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY created_at DESC, job_id DESC LIMIT ?"
        rows = self.tables.read().execute(sql, (*args, limit)).fetchall()
        return [Job.from_dict(json.loads(row[0])) for row in rows]

    def replace_job(self, job: Job, status: JobStatus, attempts: int) -> bool:
        with self.tables.write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = ?, attempts = ?, doc = ?"
                " WHERE job_id = ? AND status = ? AND attempts = ?",
                (job.status, job.attempts, json.dumps(job.to_dict()), job.job_id, status, attempts),
            )
        return cursor.rowcount == 1
