"""Announce model publications and retirements so serving caches are invalidated.

When ``TITAN_MODEL_EVENTS_TOPIC_ARN`` (an SNS topic ARN) is set, :func:`announce` publishes
``{"event": "published" | "retired", "model_id": "<64 hex>"}`` to it; the Lambda's SNS
handler (``lambdas/app.py``, topic ``TITAN_MODEL_EVENTS_TOPIC``) then bumps the cache
generation in the store. With the variable unset (research on a laptop) nothing is sent.
SNS rather than S3 events: chalice's SAM packaging cannot export S3 event handlers.

Standard library only at import time; boto3 is imported when a message is sent.
"""

from __future__ import annotations

import json
import os
from typing import Literal

from titan_lib.exceptions import StoreError

TOPIC_ARN_ENV = "TITAN_MODEL_EVENTS_TOPIC_ARN"


def announce(event: Literal["published", "retired"], model_id: str) -> str | None:
    """Publish a model event to SNS when a topic is configured.

    Returns
    -------
    str or None
        The SNS message id, or ``None`` when no topic is configured.

    Raises
    ------
    StoreError
        The topic is configured but the message could not be sent.
    """
    topic_arn = os.environ.get(TOPIC_ARN_ENV)
    if not topic_arn:
        return None
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    message = json.dumps({"event": event, "model_id": model_id}, sort_keys=True)
    try:
        response = boto3.client("sns").publish(TopicArn=topic_arn, Message=message)
    except (BotoCoreError, ClientError) as exc:
        raise StoreError(
            f"model {model_id} was {event}, but the event could not be sent to {topic_arn}: {exc}",
            {"model_id": model_id, "topic_arn": topic_arn},
        ) from None
    return str(response["MessageId"])
