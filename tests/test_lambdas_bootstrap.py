"""`titan lambdas bootstrap` creates the store bucket and the ledger table on a moto server
over HTTP; a second run changes nothing and says so; the ledger then works on the table."""

from __future__ import annotations

import uuid

import boto3
import pytest
from fixtures.cli_runs import run_titan as titan

from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger


def test_bootstrap_creates_then_changes_nothing(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = f"titan-boot-{uuid.uuid4().hex[:10]}"
    table = f"titan-boot-{uuid.uuid4().hex[:10]}"
    argv = ["lambdas", "bootstrap", "--store", f"s3://{bucket}/titan"]
    argv += ["--ledger", f"dynamodb://{table}"]

    code, out, err = titan(argv, capsys)
    assert code == 0, err
    assert out.splitlines() == [f"created s3 bucket {bucket}", f"created dynamodb table {table}"]

    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.head_bucket(Bucket=bucket)
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    described = dynamodb.describe_table(TableName=table)["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in described["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "ttl"
    s3.put_object(Bucket=bucket, Key="titan/marker", Body=b"kept")

    code, out, err = titan(argv, capsys)
    assert code == 0, err
    assert out.splitlines() == [
        f"s3 bucket {bucket} exists: unchanged",
        f"dynamodb table {table} exists: unchanged",
        "nothing to change",
    ]
    assert s3.get_object(Bucket=bucket, Key="titan/marker")["Body"].read() == b"kept"

    ledger = DynamoDBLedger(table)
    assert ledger.list_orders() == []


def test_bootstrap_refuses_a_foreign_table_and_bad_uris(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = f"other-{uuid.uuid4().hex[:10]}"
    boto3.client("dynamodb", endpoint_url=moto_endpoint).create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    bucket = f"titan-boot-{uuid.uuid4().hex[:10]}"
    code, _, err = titan(
        ["lambdas", "bootstrap", "--store", f"s3://{bucket}", "--ledger", f"dynamodb://{table}"],
        capsys,
    )
    assert code == 1
    assert f"table {table} exists with key schema" in err and "Traceback" not in err

    for store, ledger, named in [
        ("/tmp/store", "dynamodb://t1", "--store"),
        ("s3://", "dynamodb://t1", "--store"),
        (f"s3://{bucket}", "ledger.sqlite", "--ledger"),
        (f"s3://{bucket}", "dynamodb://", "--ledger"),
    ]:
        code, _, err = titan(["lambdas", "bootstrap", "--store", store, "--ledger", ledger], capsys)
        assert code == 1 and f"error: {named} must be" in err, (store, ledger, err)
