"""The S3 store turns S3's refusals and an unreachable endpoint into ``StoreError``, and
nothing else: a bug in the caller or in the client surfaces as itself."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ParamValidationError
from conftest import free_port

from titan_lib.exceptions import ConflictError, StoreError
from titan_lib.stores.s3 import S3ObjectStore


def test_an_unreachable_endpoint_is_a_store_error_naming_the_object() -> None:
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=1, retries={"total_max_attempts": 1}),
    )
    store = S3ObjectStore("s3://titan-down/prefix", client=client)
    with pytest.raises(StoreError, match=r"could not read s3://titan-down/prefix/a\.json"):
        store.read_bytes("a.json")
    with pytest.raises(StoreError, match="could not write"):
        store.write_bytes("a.json", b"{}")
    with pytest.raises(StoreError, match="could not list"):
        store.list("runs")


def test_refusals_of_s3_keep_their_meaning(s3_store: str) -> None:
    store = S3ObjectStore(s3_store)
    assert store.read_versioned("none.json") is None and not store.exists("none.json")
    assert store.put_if_absent("a.json", b"1") and not store.put_if_absent("a.json", b"2")
    with pytest.raises(ConflictError, match="changed in store"):
        store.write_if_match("a.json", b"3", token='"stale"')
    assert store.read_bytes("a.json") == b"1"
    other = S3ObjectStore(s3_store.replace("titan-test-", "titan-gone-"))
    with pytest.raises(StoreError, match="does not exist"):
        other.read_bytes("a.json")
    with pytest.raises(StoreError, match="could not write"):
        other.write_bytes("a.json", b"1")


def test_programming_errors_are_not_reported_as_an_unavailable_store(s3_store: str) -> None:
    store = S3ObjectStore(s3_store)
    with pytest.raises(ParamValidationError):
        store.write_bytes("a.json", 12345)  # type: ignore[arg-type]
    broken = S3ObjectStore(s3_store, client=object())
    with pytest.raises(AttributeError, match="put_object"):
        broken.write_bytes("a.json", b"1")
    with pytest.raises(AttributeError, match="get_object"):
        broken.read_versioned("a.json")
    assert not store.exists("a.json")
