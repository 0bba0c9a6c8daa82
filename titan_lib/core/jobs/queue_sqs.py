"""The job queue on Amazon SQS, with a dead-letter queue by redrive policy.

``sqs://<name>`` names the queue; its URL is looked up once. :meth:`SQSQueue.create`
makes the queue and ``<name>-dlq`` with ``maxReceiveCount`` :data:`MAX_RECEIVES`.
boto3 is imported when the queue is opened; it honours ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from titan_lib.core.execution.ledger_dynamodb import _code
from titan_lib.core.jobs.queue import MAX_RECEIVES, QueueMessage
from titan_lib.exceptions import StoreError

MAX_WAIT_SECONDS = 20
"""Longest long poll SQS allows."""


class SQSQueue:
    """Job queue on SQS.

    Parameters
    ----------
    name
        The queue name.
    client
        A boto3 SQS client; created from the environment when omitted.
    """

    def __init__(self, name: str, client: Any | None = None) -> None:
        if not name:
            raise StoreError("an SQS job queue needs a name: sqs://<queue>")
        if client is None:
            import boto3

            client = boto3.client("sqs")
        self.client = client
        self.name = name
        self.uri = f"sqs://{name}"
        self._url: str | None = None

    def _fail(self, action: str, exc: Exception) -> StoreError:
        return StoreError(
            f"could not {action} on queue {self.uri}: {_code(exc) or type(exc).__name__}",
            {"queue": self.name},
        )

    @property
    def url(self) -> str:
        if self._url is None:
            try:
                self._url = str(self.client.get_queue_url(QueueName=self.name)["QueueUrl"])
            except Exception as exc:
                raise self._fail("find the queue", exc) from exc
        return self._url

    @classmethod
    def create(cls, name: str, client: Any | None = None) -> SQSQueue:
        """Create the queue and its dead-letter queue ``<name>-dlq`` (idempotent)."""
        queue = cls(name, client)
        try:
            dead = queue.client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            dead_arn = queue.client.get_queue_attributes(
                QueueUrl=dead, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            redrive = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": str(MAX_RECEIVES)}
            queue._url = queue.client.create_queue(
                QueueName=name, Attributes={"RedrivePolicy": json.dumps(redrive)}
            )["QueueUrl"]
        except Exception as exc:
            raise queue._fail("create the queue", exc) from exc
        return queue

    def send(self, job_id: str) -> None:
        try:
            self.client.send_message(QueueUrl=self.url, MessageBody=json.dumps({"job_id": job_id}))
        except Exception as exc:
            raise self._fail("send a message", exc) from exc

    def receive(self, wait_seconds: float, visibility_seconds: float) -> QueueMessage | None:
        try:
            found = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=min(MAX_WAIT_SECONDS, math.ceil(wait_seconds)),
                VisibilityTimeout=math.ceil(visibility_seconds),
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
        except Exception as exc:
            raise self._fail("receive a message", exc) from exc
        if not found:
            return None
        message = found[0]
        try:
            job_id = str(json.loads(message["Body"])["job_id"])
        except (ValueError, KeyError, TypeError):
            job_id = ""  # not a job message: the worker leaves it to dead-letter
        count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        return QueueMessage(job_id=job_id, receipt=message["ReceiptHandle"], receive_count=count)

    def extend(self, receipt: str, visibility_seconds: float) -> None:
        try:
            self.client.change_message_visibility(
                QueueUrl=self.url,
                ReceiptHandle=receipt,
                VisibilityTimeout=math.ceil(visibility_seconds),
            )
        except Exception as exc:
            raise self._fail("extend a message", exc) from exc

    def delete(self, receipt: str) -> None:
        try:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)
        except Exception as exc:
            raise self._fail("delete a message", exc) from exc
