"""Publishing or retiring a model sends one SNS event (moto server), delivered to SQS."""

from __future__ import annotations

import json

import boto3
import pytest
from test_signal_model import make_model

from titan_lib.core import publish, retire
from titan_lib.core.model_events import TOPIC_ARN_ENV


def test_publish_and_retire_send_events(
    s3_store: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="titan-model-events")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="model-events-probe")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    monkeypatch.setenv(TOPIC_ARN_ENV, topic)

    model = make_model()
    assert publish(model, s3_store).created
    assert not publish(model, s3_store).created  # a no-op republish sends nothing
    retire(model.model_id, "test", s3_store)
    retire(model.model_id, "again", s3_store)  # idempotent: no second event

    received = []
    for _ in range(5):
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        received.extend(json.loads(m["Body"]) for m in batch)
        if len(received) >= 2:
            break
    assert received == [
        {"event": "published", "model_id": model.model_id},
        {"event": "retired", "model_id": model.model_id},
    ]


def test_no_topic_sends_nothing(local_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOPIC_ARN_ENV, raising=False)
    assert publish(make_model(), local_store).created
