"""Research jobs in the ledger's DynamoDB table.

Items: ``pk = JOB#<job_id>``, ``sk = JOB``, with ``principal``, ``status``, ``attempts``,
``created_at`` and ``doc`` (the job JSON). Creation is conditioned on
``attribute_not_exists(pk)``, every later change on the ``status`` and ``attempts`` read
before it. Listing scans the table for the principal's jobs (fine for thousands of jobs;
add an index on ``principal`` before millions). Table access is the ledger's
(:class:`~titan_lib.core.execution.ledger_dynamodb.DynamoDBLedger`).
"""

from __future__ import annotations

import json
from typing import Any

from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger, _code, _s
from titan_lib.core.jobs.models import Job, JobStatus
from titan_lib.core.jobs.store import PageKey


def _item(job: Job) -> dict[str, Any]:
    return {
        "pk": _s(f"JOB#{job.job_id}"),
        "sk": _s("JOB"),
        "principal": _s(job.principal),
        "status": _s(job.status),
        "attempts": {"N": str(job.attempts)},
        "created_at": _s(job.created_at),
        "doc": _s(json.dumps(job.to_dict())),
    }


class DynamoDBJobStore:
    """Job store in the ledger's DynamoDB table.

    Parameters
    ----------
    table
        The ledger table.
    client
        A boto3 DynamoDB client; created from the environment when omitted.
    """

    def __init__(self, table: str, client: Any | None = None) -> None:
        self.table = DynamoDBLedger(table, client)
        self.uri = self.table.uri

    def create_job(self, job: Job) -> tuple[Job, bool]:
        try:
            self.table.client.put_item(
                TableName=self.table.table,
                Item=_item(job),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise self.table._fail("create a job", exc) from exc
            existing = self.get_job(job.job_id)
            if existing is None:
                raise self.table._fail("read back a job", exc) from exc
            return existing, False
        return job, True

    def get_job(self, job_id: str) -> Job | None:
        item = self.table._get(f"JOB#{job_id}", "JOB")
        return None if item is None else Job.from_dict(json.loads(item["doc"]["S"]))

    def list_jobs(self, principal: str, limit: int, after: PageKey | None = None) -> list[Job]:
        jobs = [
            Job.from_dict(json.loads(item["doc"]["S"]))
            for item in self.table._scan("JOB#")
            if item["principal"]["S"] == principal
        ]
        keyed = sorted(((j.created_at, j.job_id), j) for j in jobs)
        newest_first = [j for key, j in reversed(keyed) if after is None or key < after]
        return newest_first[:limit]

    def replace_job(self, job: Job, status: JobStatus, attempts: int) -> bool:
        try:
            self.table.client.put_item(
                TableName=self.table.table,
                Item=_item(job),
                ConditionExpression="#st = :st AND attempts = :at",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":st": _s(status), ":at": {"N": str(attempts)}},
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise self.table._fail("update a job", exc) from exc
        return True
