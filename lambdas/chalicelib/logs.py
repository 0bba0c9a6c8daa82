"""Structured JSON logs through the aws-lambda-powertools Logger.

The Logger is created on first use: importing powertools also imports botocore, which
would otherwise dominate the import time of every cold start. Log lines carry the request
id and the principal; tokens, secrets and request bodies are never logged.
"""

from __future__ import annotations

import os
from typing import Any

_logger: Any = None


def logger() -> Any:
    """The process-wide powertools ``Logger`` (service ``titan-api``)."""
    global _logger
    if _logger is None:
        from aws_lambda_powertools import Logger

        _logger = Logger(
            service=os.environ.get("POWERTOOLS_SERVICE_NAME", "titan-api"),
            level=os.environ.get("TITAN_LOG_LEVEL", "INFO"),
        )
    return _logger
