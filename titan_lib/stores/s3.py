"""S3 object store (boto3). Conditional writes use S3's ``If-None-Match``/``If-Match``.

The endpoint honours boto3's own configuration, so ``AWS_ENDPOINT_URL`` points it at a
local moto server in tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from titan_lib.exceptions import ConflictError, NotFoundError, StoreError

_MISSING = ("NoSuchKey", "404", "NotFound")
_PRECONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3ObjectStore:
    """Objects under ``s3://bucket/prefix``.

    Parameters
    ----------
    uri
        ``s3://bucket`` or ``s3://bucket/prefix``.
    client
        A boto3 S3 client; one is created from the environment when omitted.
    """

    def __init__(self, uri: str, client: Any | None = None) -> None:
        if not uri.startswith("s3://"):
            raise StoreError(f"not an S3 URI: {uri!r}", {"uri": uri})
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise StoreError(f"S3 URI has no bucket: {uri!r}", {"uri": uri})
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.client = client

    def _key(self, key: str) -> str:
        clean = key.strip("/")
        if not clean:
            raise StoreError(f"invalid store key {key!r}", {"key": key})
        return f"{self.prefix}/{clean}" if self.prefix else clean

    def local_path(self, key: str) -> Path | None:
        return None

    @contextmanager
    def _calling_s3(self, action: str, key: str) -> Iterator[None]:
        """Turn S3's refusals and unreachable endpoints into :class:`StoreError`.

        Only botocore's errors are translated; a wrong argument (``ParamValidationError``)
        or any other exception is a bug and propagates as it is.
        """
        try:
            yield
        except ParamValidationError:
            raise
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(
                f"could not {action} {self.uri}/{key}: {exc}", {"key": key, "uri": self.uri}
            ) from exc

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        with self._calling_s3("read", key):
            try:
                obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    return None
                if _error_code(exc) == "NoSuchBucket":
                    raise StoreError(
                        f"S3 bucket {self.bucket!r} does not exist (store {self.uri})",
                        {"bucket": self.bucket},
                    ) from None
                raise
            return obj["Body"].read(), str(obj["ETag"])

    def read_bytes(self, key: str) -> bytes:
        found = self.read_versioned(key)
        if found is None:
            raise NotFoundError(f"{key} not found in store {self.uri}", {"key": key})
        return found[0]

    def write_bytes(self, key: str, data: bytes) -> None:
        with self._calling_s3("write", key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        with self._calling_s3("write", key):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
                )
            except ClientError as exc:
                if _error_code(exc) in _PRECONDITION_FAILED:
                    return False
                raise
        return True

    def write_if_match(self, key: str, data: bytes, token: str | None) -> None:
        extra: dict[str, str] = {"IfNoneMatch": "*"} if token is None else {"IfMatch": token}
        with self._calling_s3("write", key):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
            except ClientError as exc:
                if _error_code(exc) in _PRECONDITION_FAILED:
                    raise ConflictError(
                        f"{key} changed in store {self.uri} while it was being updated; retry",
                        {"key": key},
                    ) from None
                raise

    def exists(self, key: str) -> bool:
        with self._calling_s3("check", key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    return False
                raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        # Folder semantics, as in the local store: "runs" lists "runs/...", not "runsx".
        full = (
            self._key(prefix) + "/"
            if prefix.strip("/")
            else (f"{self.prefix}/" if self.prefix else "")
        )
        root = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with self._calling_s3("list", prefix):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    keys.append(item["Key"][len(root) :])
        return sorted(keys)

    def delete(self, key: str) -> None:
        with self._calling_s3("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
