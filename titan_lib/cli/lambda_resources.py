"""The AWS resources the Lambda needs, added to the templates ``chalice package`` writes.

``chalice package`` emits the functions, the REST API, the schedules and one IAM role per
function. :func:`complete_sam` and :func:`complete_terraform` add what the app uses at run
time, every name a template parameter (SAM) or variable (Terraform):

- the store bucket (created, or an existing one passed in), objects under a prefix;
- the ledger table, with the key schema and TTL of
  :meth:`DynamoDBLedger.create_table
  <titan_lib.core.execution.ledger_dynamodb.DynamoDBLedger.create_table>`
  (captured from that method, never restated);
- the model-events SNS topic (the ``on_model_event`` subscription points at it);
- the SSM parameters holding secrets, by **name** only (SecureString parameters, which
  CloudFormation cannot create: the operator puts them, see lambdas/README.md);
- per function, an IAM policy granting exactly the actions it uses on those resources
  (:data:`FUNCTION_GRANTS`), and the environment naming them.

:func:`bootstrap` creates the bucket and the ledger table directly (a dev account, or the
moto server in tests), idempotently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger
from titan_lib.core.jobs.queue import MAX_RECEIVES
from titan_lib.exceptions import ParameterError, StoreError

GrantName = Literal[
    "logs",
    "store",
    "ledger",
    "model_events",
    "jwt_secret",
    "alpaca_keys",
    "jobs_queue",
    "websocket_push",
]


@dataclass(frozen=True)
class Grant:
    """One IAM statement of a function's policy.

    Attributes
    ----------
    sid
        Statement id.
    actions
        IAM actions.
    resources
        Resource kinds (keys of the renderers' ARN tables).
    condition
        Template condition under which the statement exists (``None``: always).
    """

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Literal["HasJwtSecret", "UsesAlpaca"] | None = None


LEDGER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Scan",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:TransactWriteItems",
)
"""What :class:`DynamoDBLedger` and the job and connection stores in its table call
(reads, conditional writes, one transaction, queries of a channel's subscribers)."""
JOBS_QUEUE_ACTIONS = ("sqs:GetQueueUrl", "sqs:SendMessage")
"""What the API does with the job queue (workers receive outside Lambda)."""

GRANTS: dict[GrantName, tuple[Grant, ...]] = {
    "logs": (
        Grant("Logs", ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
              ("log_groups",)),
    ),
    "store": (
        Grant("StoreObjects", ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
              ("store_objects",)),
        Grant("StoreList", ("s3:ListBucket",), ("store_bucket",)),
    ),
    "ledger": (Grant("Ledger", LEDGER_ACTIONS, ("ledger_table",)),),
    "model_events": (Grant("ModelEvents", ("sns:Publish",), ("model_events_topic",)),),
    "jwt_secret": (
        Grant("JwtSecret", ("ssm:GetParameter",), ("jwt_secret_parameter",), "HasJwtSecret"),
    ),
    "alpaca_keys": (
        Grant("AlpacaKeys", ("ssm:GetParameter",),
              ("alpaca_key_id_parameter", "alpaca_secret_key_parameter"), "UsesAlpaca"),
    ),
    "jobs_queue": (Grant("JobsQueue", JOBS_QUEUE_ACTIONS, ("jobs_queue",)),),
    "websocket_push": (
        Grant("WebSocketPush", ("execute-api:ManageConnections",), ("websocket_connections",)),
    ),
}  # fmt: skip
"""IAM statements by what they give access to."""

FUNCTION_GRANTS: dict[str, tuple[GrantName, ...]] = {
    "jwt_auth": ("logs", "jwt_secret"),
    "app": ("logs", "store", "ledger", "alpaca_keys", "jobs_queue", "websocket_push"),
    "reconcile_orders": ("logs", "store", "ledger", "alpaca_keys", "websocket_push"),
    "refresh_signals": ("logs", "store", "ledger", "model_events", "alpaca_keys"),
    "on_model_event": ("logs", "store"),
    "live_push.ws_connect": ("logs", "ledger", "jwt_secret"),
    "live_push.ws_message": ("logs", "store", "ledger", "websocket_push"),
    "live_push.ws_disconnect": ("logs", "ledger"),
    "live_push.push_signals": ("logs", "store", "ledger", "websocket_push"),
}
"""Grants of each function, by its handler in ``app.py`` (``app`` is the REST API).

The authorizer reads only the JWT secret; the API and the reconciler read the store and
write the ledger and may call the broker; the daily after-close job may also announce
model events (it is where broken models are retired). The API also queues jobs; the API,
the reconciler and the WebSocket handlers push to connections. ``$connect`` verifies the
token and records the connection; a message reads the store to check a model. A
function not listed gets every grant."""

WEBSOCKET_STAGE = "api"
"""The stage chalice deploys the WebSocket API to (its ``api_gateway_stage``)."""

SSM_SECRET_ACTIONS = ("kms:Decrypt",)
"""SecureString parameters are decrypted with the account's SSM key, only through SSM."""


def ledger_table_spec() -> dict[str, Any]:
    """The ``create_table`` and ``update_time_to_live`` arguments of the ledger.

    Runs :meth:`DynamoDBLedger.create_table` against a client that only records, so the
    templates and :func:`bootstrap` use the ledger's own key schema and TTL attribute.
    """

    class Recorder:
        def __init__(self) -> None:
            self.calls: dict[str, dict[str, Any]] = {}

        def create_table(self, **kwargs: Any) -> None:
            self.calls["create_table"] = kwargs

        def update_time_to_live(self, **kwargs: Any) -> None:
            self.calls["update_time_to_live"] = kwargs

        def get_waiter(self, name: str) -> Recorder:
            return self

        def wait(self, **kwargs: Any) -> None:
            return None

    recorder = Recorder()
    DynamoDBLedger.create_table("ledger", recorder)
    return recorder.calls


# -- SAM (CloudFormation) -----------------------------------------------------------------


def sam_parameters(stage: str) -> dict[str, Any]:
    """Template parameters: every resource name, the secrets' SSM names, the settings."""
    name = "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
    ssm_name = "^$|^(/[A-Za-z0-9_.-]+)+$"
    return {
        "StoreBucketName": {
            "Type": "String",
            "AllowedPattern": name,
            "Description": "S3 bucket of the store (models, price tails, snapshots).",
        },
        "CreateStoreBucket": {
            "Type": "String",
            "AllowedValues": ["true", "false"],
            "Default": "true",
            "Description": "true: the stack creates the bucket; false: it exists already.",
        },
        "StorePrefix": {
            "Type": "String",
            "Default": "titan",
            "AllowedPattern": "^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
            "Description": "Key prefix of the store inside the bucket.",
        },
        "LedgerTableName": {
            "Type": "String",
            "Default": f"titan-{stage}-ledger",
            "AllowedPattern": "^[A-Za-z0-9_.-]{3,255}$",
            "Description": "DynamoDB table of the order ledger (created by the stack).",
        },
        "JobsQueueName": {
            "Type": "String",
            "Default": f"titan-{stage}-jobs",
            "AllowedPattern": "^[A-Za-z0-9_-]{1,76}$",
            "Description": "SQS queue of research jobs (its dead-letter queue: <name>-dlq).",
        },
        "ModelEventsTopicName": {
            "Type": "String",
            "Default": f"titan-{stage}-model-events",
            "AllowedPattern": "^[A-Za-z0-9_-]{1,256}$",
            "Description": "SNS topic of model publications and retirements.",
        },
        "JwtSecretParameterName": {
            "Type": "String",
            "Default": f"/titan/{stage}/jwt-secret",
            "AllowedPattern": ssm_name,
            "Description": "SSM SecureString holding the HS256 secret (empty: RS256 only).",
        },
        "JwtJwksUrl": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^$|^https://.+$",
            "Description": "https URL of the identity provider's JWKS (RS256), or empty.",
        },
        "JwtIssuer": {"Type": "String", "Default": "titan", "Description": "Required iss."},
        "JwtAudience": {"Type": "String", "Default": "titan-api", "Description": "Required aud."},
        "Broker": {
            "Type": "String",
            "AllowedValues": ["paper", "alpaca"],
            "Default": "paper",
            "Description": "Order routing: the paper broker or Alpaca.",
        },
        "AlpacaMode": {"Type": "String", "AllowedValues": ["paper", "live"], "Default": "paper"},
        "AlpacaKeyIdParameterName": {
            "Type": "String",
            "Default": f"/titan/{stage}/alpaca-key-id",
            "AllowedPattern": ssm_name,
            "Description": "SSM SecureString holding the Alpaca key id (Broker=alpaca).",
        },
        "AlpacaSecretKeyParameterName": {
            "Type": "String",
            "Default": f"/titan/{stage}/alpaca-secret-key",
            "AllowedPattern": ssm_name,
            "Description": "SSM SecureString holding the Alpaca secret key (Broker=alpaca).",
        },
        "MarketHours": {
            "Type": "String",
            "AllowedValues": ["regular", "always"],
            "Default": "regular",
            "Description": "regular: orders only during NYSE sessions.",
        },
    }


def _ssm_arn(parameter: str) -> dict[str, Any]:
    prefix = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
    return {"Fn::Sub": prefix + "${" + parameter + "}"}


SAM_ARNS: dict[str, Any] = {
    "log_groups": {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
        "log-group:/aws/lambda/*"
    },
    "store_objects": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${StoreBucketName}/${StorePrefix}/*"},
    "store_bucket": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${StoreBucketName}"},
    "ledger_table": {"Fn::GetAtt": ["LedgerTable", "Arn"]},
    "jobs_queue": {"Fn::GetAtt": ["JobsQueue", "Arn"]},
    "websocket_connections": {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        f"${{WebsocketAPI}}/{WEBSOCKET_STAGE}/POST/@connections/*"
    },
    "model_events_topic": {"Ref": "ModelEventsTopic"},
    "jwt_secret_parameter": _ssm_arn("JwtSecretParameterName"),
    "alpaca_key_id_parameter": _ssm_arn("AlpacaKeyIdParameterName"),
    "alpaca_secret_key_parameter": _ssm_arn("AlpacaSecretKeyParameterName"),
}

SAM_ENVIRONMENT: dict[str, Any] = {
    "TITAN_STORE": {"Fn::Sub": "s3://${StoreBucketName}/${StorePrefix}"},
    "TITAN_LEDGER": {"Fn::Sub": "dynamodb://${LedgerTable}"},
    "TITAN_QUEUE": {"Fn::Sub": "sqs://${JobsQueue.QueueName}"},
    "TITAN_WS_ENDPOINT": {
        "Fn::Sub": "https://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
        + WEBSOCKET_STAGE
    },
    "TITAN_MODEL_EVENTS_TOPIC": {"Fn::GetAtt": ["ModelEventsTopic", "TopicName"]},
    "TITAN_MODEL_EVENTS_TOPIC_ARN": {"Ref": "ModelEventsTopic"},
    "TITAN_JWT_SECRET_SSM": {"Ref": "JwtSecretParameterName"},
    "TITAN_JWT_JWKS_URL": {"Ref": "JwtJwksUrl"},
    "TITAN_JWT_ISSUER": {"Ref": "JwtIssuer"},
    "TITAN_JWT_AUDIENCE": {"Ref": "JwtAudience"},
    "TITAN_BROKER": {"Ref": "Broker"},
    "TITAN_ALPACA_MODE": {"Ref": "AlpacaMode"},
    "TITAN_ALPACA_KEY_ID_SSM": {"Ref": "AlpacaKeyIdParameterName"},
    "TITAN_ALPACA_SECRET_KEY_SSM": {"Ref": "AlpacaSecretKeyParameterName"},
    "TITAN_MARKET_HOURS": {"Ref": "MarketHours"},
}
"""The environment of every function (an empty value reads as unset)."""


def grants_of(handler: str) -> tuple[GrantName, ...]:
    """The grants of the function whose handler is ``app.<handler>``."""
    return FUNCTION_GRANTS.get(handler, tuple(GRANTS))


def _sam_statement(grant: Grant) -> dict[str, Any]:
    resources = [SAM_ARNS[kind] for kind in grant.resources]
    statement: dict[str, Any] = {
        "Sid": grant.sid,
        "Effect": "Allow",
        "Action": list(grant.actions),
        "Resource": resources if len(resources) > 1 else resources[0],
    }
    if grant.sid == "StoreList":
        statement["Condition"] = {
            "StringLike": {"s3:prefix": [{"Ref": "StorePrefix"}, {"Fn::Sub": "${StorePrefix}/*"}]}
        }
    if grant.condition:
        return {"Fn::If": [grant.condition, statement, {"Ref": "AWS::NoValue"}]}
    return statement


def sam_policy(handler: str) -> dict[str, Any]:
    """The IAM policy document of one function (CloudFormation intrinsics)."""
    names = grants_of(handler)
    statements = [_sam_statement(g) for name in names for g in GRANTS[name]]
    secrets = {"jwt_secret": "HasJwtSecret", "alpaca_keys": "UsesAlpaca"}
    used = [secrets[n] for n in names if n in secrets]
    if used:
        via_ssm = {"kms:ViaService": {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}}
        decrypt = {
            "Sid": "SecretsViaSsm",
            "Effect": "Allow",
            "Action": list(SSM_SECRET_ACTIONS),
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"
            },
            "Condition": {"StringEquals": via_ssm},
        }
        condition = used[0] if len(used) == 1 else "UsesSecrets"
        statements.append({"Fn::If": [condition, decrypt, {"Ref": "AWS::NoValue"}]})
    return {"Version": "2012-10-17", "Statement": statements}


def sam_resources() -> dict[str, Any]:
    """The bucket (conditional), the ledger table and the model-events topic."""
    spec = ledger_table_spec()
    table = spec["create_table"]
    ttl = spec["update_time_to_live"]["TimeToLiveSpecification"]
    retain = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    return {
        "StoreBucket": {
            "Type": "AWS::S3::Bucket",
            "Condition": "CreatesStoreBucket",
            **retain,
            "Properties": {
                "BucketName": {"Ref": "StoreBucketName"},
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
            },
        },
        "LedgerTable": {
            "Type": "AWS::DynamoDB::Table",
            **retain,
            "Properties": {
                "TableName": {"Ref": "LedgerTableName"},
                "AttributeDefinitions": table["AttributeDefinitions"],
                "KeySchema": table["KeySchema"],
                "BillingMode": table["BillingMode"],
                "TimeToLiveSpecification": ttl,
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        },
        "ModelEventsTopic": {
            "Type": "AWS::SNS::Topic",
            "Properties": {"TopicName": {"Ref": "ModelEventsTopicName"}},
        },
        "JobsDeadLetterQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {"Fn::Sub": "${JobsQueueName}-dlq"},
                "MessageRetentionPeriod": 1209600,
            },
        },
        "JobsQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {"Ref": "JobsQueueName"},
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
                    "maxReceiveCount": MAX_RECEIVES,
                },
            },
        },
    }


SAM_CONDITIONS: dict[str, Any] = {
    "CreatesStoreBucket": {"Fn::Equals": [{"Ref": "CreateStoreBucket"}, "true"]},
    "HasJwtSecret": {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtSecretParameterName"}, ""]}]},
    "UsesAlpaca": {"Fn::Equals": [{"Ref": "Broker"}, "alpaca"]},
}
USES_SECRETS = {"Fn::Or": [{"Condition": "HasJwtSecret"}, {"Condition": "UsesAlpaca"}]}
"""Condition of the KMS grant of a function that reads both kinds of secret."""


def complete_sam(template: dict[str, Any], stage: str) -> dict[str, Any]:
    """Add parameters, resources, policies and environment to a chalice SAM template."""
    resources = template["Resources"]
    template["Parameters"] = {**template.get("Parameters", {}), **sam_parameters(stage)}
    conditions = {**template.get("Conditions", {}), **SAM_CONDITIONS}
    for logical, resource in list(resources.items()):
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        handler = str(props["Handler"]).split(".", 1)[1]
        variables = props.setdefault("Environment", {}).setdefault("Variables", {})
        variables.update(SAM_ENVIRONMENT)
        role = props["Role"]["Fn::GetAtt"][0]
        resources[role]["Properties"]["Policies"] = [
            {"PolicyName": f"{logical}Policy", "PolicyDocument": sam_policy(handler)}
        ]
        if {"jwt_secret", "alpaca_keys"} <= set(grants_of(handler)):
            conditions["UsesSecrets"] = USES_SECRETS
        for event in props.get("Events", {}).values():
            if event["Type"] == "SNS":
                event["Properties"]["Topic"] = {"Ref": "ModelEventsTopic"}
    resources.update(sam_resources())
    template["Conditions"] = conditions
    template["Outputs"] = {
        **template.get("Outputs", {}),
        "StoreUri": {"Value": {"Fn::Sub": "s3://${StoreBucketName}/${StorePrefix}"}},
        "LedgerUri": {"Value": {"Fn::Sub": "dynamodb://${LedgerTable}"}},
        "ModelEventsTopicArn": {"Value": {"Ref": "ModelEventsTopic"}},
    }
    return template


# -- Terraform ----------------------------------------------------------------------------


def terraform_variables(stage: str) -> dict[str, Any]:
    """The Terraform variables: the SAM parameters under snake_case names, with the same
    allowed values and patterns as validations."""
    variables: dict[str, Any] = {}
    for name, spec in sam_parameters(stage).items():
        variable = _snake(name)
        entry: dict[str, Any] = {"type": "string", "description": spec.get("Description", name)}
        if name == "CreateStoreBucket":
            variables[variable] = {**entry, "type": "bool", "default": True}
            continue
        if "Default" in spec:
            entry["default"] = spec["Default"]
        if "AllowedValues" in spec:
            allowed = ", ".join(f'"{v}"' for v in spec["AllowedValues"])
            condition = f"${{contains([{allowed}], var.{variable})}}"
            message = f"{variable} must be one of {', '.join(spec['AllowedValues'])}."
            entry["validation"] = [{"condition": condition, "error_message": message}]
        elif "AllowedPattern" in spec:
            condition = f'${{can(regex("{spec["AllowedPattern"]}", var.{variable}))}}'
            message = f"{variable} must match {spec['AllowedPattern']}."
            entry["validation"] = [{"condition": condition, "error_message": message}]
        variables[variable] = entry
    return variables


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _tf_ssm_arn(variable: str) -> str:
    region = "${data.aws_region.chalice.name}"
    account = "${data.aws_caller_identity.chalice.account_id}"
    partition = "${data.aws_partition.chalice.partition}"
    return f"arn:{partition}:ssm:{region}:{account}:parameter${{var.{variable}}}"


TF_PARTITION = "${data.aws_partition.chalice.partition}"
TF_ARNS: dict[str, str] = {
    "log_groups": f"arn:{TF_PARTITION}:logs:${{data.aws_region.chalice.name}}:"
    "${data.aws_caller_identity.chalice.account_id}:log-group:/aws/lambda/*",
    "store_objects": f"arn:{TF_PARTITION}:s3:::${{var.store_bucket_name}}/${{var.store_prefix}}/*",
    "store_bucket": f"arn:{TF_PARTITION}:s3:::${{var.store_bucket_name}}",
    "ledger_table": "${aws_dynamodb_table.ledger.arn}",
    "jobs_queue": "${aws_sqs_queue.jobs.arn}",
    "websocket_connections": f"arn:{TF_PARTITION}:execute-api:${{data.aws_region.chalice.name}}:"
    "${data.aws_caller_identity.chalice.account_id}:${aws_apigatewayv2_api.websocket_api.id}/"
    f"{WEBSOCKET_STAGE}/POST/@connections/*",
    "model_events_topic": "${aws_sns_topic.model_events.arn}",
    "jwt_secret_parameter": _tf_ssm_arn("jwt_secret_parameter_name"),
    "alpaca_key_id_parameter": _tf_ssm_arn("alpaca_key_id_parameter_name"),
    "alpaca_secret_key_parameter": _tf_ssm_arn("alpaca_secret_key_parameter_name"),
}
TF_CONDITIONS = {
    "HasJwtSecret": 'var.jwt_secret_parameter_name != ""',
    "UsesAlpaca": 'var.broker == "alpaca"',
}
TF_ENVIRONMENT: dict[str, str] = {
    "TITAN_STORE": "s3://${var.store_bucket_name}/${var.store_prefix}",
    "TITAN_LEDGER": "dynamodb://${aws_dynamodb_table.ledger.name}",
    "TITAN_QUEUE": "sqs://${aws_sqs_queue.jobs.name}",
    "TITAN_WS_ENDPOINT": "https://${aws_apigatewayv2_api.websocket_api.id}.execute-api."
    f"${{data.aws_region.chalice.name}}.amazonaws.com/{WEBSOCKET_STAGE}",
    "TITAN_MODEL_EVENTS_TOPIC": "${aws_sns_topic.model_events.name}",
    "TITAN_MODEL_EVENTS_TOPIC_ARN": "${aws_sns_topic.model_events.arn}",
    "TITAN_JWT_SECRET_SSM": "${var.jwt_secret_parameter_name}",
    "TITAN_JWT_JWKS_URL": "${var.jwt_jwks_url}",
    "TITAN_JWT_ISSUER": "${var.jwt_issuer}",
    "TITAN_JWT_AUDIENCE": "${var.jwt_audience}",
    "TITAN_BROKER": "${var.broker}",
    "TITAN_ALPACA_MODE": "${var.alpaca_mode}",
    "TITAN_ALPACA_KEY_ID_SSM": "${var.alpaca_key_id_parameter_name}",
    "TITAN_ALPACA_SECRET_KEY_SSM": "${var.alpaca_secret_key_parameter_name}",
    "TITAN_MARKET_HOURS": "${var.market_hours}",
}


def _tf_statement(grant: Grant) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "sid": grant.sid,
        "effect": "Allow",
        "actions": list(grant.actions),
        "resources": [TF_ARNS[kind] for kind in grant.resources],
    }
    if grant.sid == "StoreList":
        statement["condition"] = [
            {
                "test": "StringLike",
                "variable": "s3:prefix",
                "values": ["${var.store_prefix}", "${var.store_prefix}/*"],
            }
        ]
    return statement


def terraform_policy(handler: str) -> dict[str, Any]:
    """An ``aws_iam_policy_document`` data source of one function."""
    names = grants_of(handler)
    static: list[dict[str, Any]] = []
    dynamic: list[dict[str, Any]] = []
    conditions: list[str] = []
    for name in names:
        for grant in GRANTS[name]:
            statement = _tf_statement(grant)
            if grant.condition is None:
                static.append(statement)
                continue
            conditions.append(TF_CONDITIONS[grant.condition])
            dynamic.append(
                {"for_each": f"${{{TF_CONDITIONS[grant.condition]} ? [1] : []}}",
                 "content": statement}
            )  # fmt: skip
    if conditions:
        decrypt = {
            "sid": "SecretsViaSsm",
            "effect": "Allow",
            "actions": list(SSM_SECRET_ACTIONS),
            "resources": [
                f"arn:{TF_PARTITION}:kms:${{data.aws_region.chalice.name}}:"
                "${data.aws_caller_identity.chalice.account_id}:key/*"
            ],
            "condition": [
                {
                    "test": "StringEquals",
                    "variable": "kms:ViaService",
                    "values": ["ssm.${data.aws_region.chalice.name}.amazonaws.com"],
                }
            ],
        }
        dynamic.append(
            {"for_each": f"${{{' || '.join(conditions)} ? [1] : []}}", "content": decrypt}
        )
    document: dict[str, Any] = {"statement": static}
    if dynamic:
        document["dynamic"] = {"statement": dynamic}
    return document


def terraform_resources() -> dict[str, Any]:
    """The bucket (``count`` by ``create_store_bucket``), the ledger table and the topic."""
    spec = ledger_table_spec()
    table = spec["create_table"]
    ttl = spec["update_time_to_live"]["TimeToLiveSpecification"]
    keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
    attribute_type = {"S": "S", "N": "N", "B": "B"}
    return {
        "aws_s3_bucket": {
            "store": {
                "count": "${var.create_store_bucket ? 1 : 0}",
                "bucket": "${var.store_bucket_name}",
                "lifecycle": {"prevent_destroy": True},
            }
        },
        "aws_s3_bucket_public_access_block": {
            "store": {
                "count": "${var.create_store_bucket ? 1 : 0}",
                "bucket": "${aws_s3_bucket.store[0].id}",
                "block_public_acls": True,
                "block_public_policy": True,
                "ignore_public_acls": True,
                "restrict_public_buckets": True,
            }
        },
        "aws_dynamodb_table": {
            "ledger": {
                "name": "${var.ledger_table_name}",
                "billing_mode": table["BillingMode"],
                "hash_key": keys["HASH"],
                "range_key": keys["RANGE"],
                "attribute": [
                    {"name": a["AttributeName"], "type": attribute_type[a["AttributeType"]]}
                    for a in table["AttributeDefinitions"]
                ],
                "ttl": {"attribute_name": ttl["AttributeName"], "enabled": ttl["Enabled"]},
                "point_in_time_recovery": {"enabled": True},
                "lifecycle": {"prevent_destroy": True},
            }
        },
        "aws_sns_topic": {"model_events": {"name": "${var.model_events_topic_name}"}},
        "aws_sqs_queue": {
            "jobs_dead_letters": {
                "name": "${var.jobs_queue_name}-dlq",
                "message_retention_seconds": 1209600,
            },
            "jobs": {
                "name": "${var.jobs_queue_name}",
                "redrive_policy": "${jsonencode({deadLetterTargetArn = "
                "aws_sqs_queue.jobs_dead_letters.arn, maxReceiveCount = "
                f"{MAX_RECEIVES}}})}}",
            },
        },
    }


def complete_terraform(template: dict[str, Any], stage: str) -> dict[str, Any]:
    """Add variables, resources, policies and environment to chalice's Terraform JSON."""
    resource = template["resource"]
    template["variable"] = {**template.get("variable", {}), **terraform_variables(stage)}
    documents: dict[str, Any] = {}
    for name, function in resource.get("aws_lambda_function", {}).items():
        handler = str(function["handler"]).split(".", 1)[1]
        function.setdefault("environment", {}).setdefault("variables", {}).update(TF_ENVIRONMENT)
        role = str(function["role"]).removeprefix("${aws_iam_role.").removesuffix(".arn}")
        documents[name] = terraform_policy(handler)
        resource["aws_iam_role_policy"][role]["policy"] = (
            f"${{data.aws_iam_policy_document.{name}.json}}"
        )
    template.setdefault("data", {})["aws_iam_policy_document"] = documents
    topic = "${aws_sns_topic.model_events.arn}"
    for subscription in resource.get("aws_sns_topic_subscription", {}).values():
        subscription["topic_arn"] = topic
    for permission in resource.get("aws_lambda_permission", {}).values():
        if permission.get("principal") == "sns.amazonaws.com":
            permission["source_arn"] = topic
    for kind, entries in terraform_resources().items():
        resource.setdefault(kind, {}).update(entries)
    template.setdefault("output", {}).update(
        {
            "StoreUri": {"value": TF_ENVIRONMENT["TITAN_STORE"]},
            "LedgerUri": {"value": TF_ENVIRONMENT["TITAN_LEDGER"]},
            "ModelEventsTopicArn": {"value": topic},
        }
    )
    return template


# -- bootstrap ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapStep:
    """What :func:`bootstrap` did to one resource: ``created`` or ``unchanged``."""

    kind: Literal["s3 bucket", "dynamodb table"]
    name: str
    action: Literal["created", "unchanged"]

    def describe(self) -> str:
        """One line for the console."""
        if self.action == "created":
            return f"created {self.kind} {self.name}"
        return f"{self.kind} {self.name} exists: unchanged"


def _client_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def ensure_bucket(bucket: str, client: Any) -> BootstrapStep:
    """Create the store bucket (private) unless it exists."""
    try:
        client.head_bucket(Bucket=bucket)
        return BootstrapStep("s3 bucket", bucket, "unchanged")
    except Exception as exc:
        if _client_error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise StoreError(
                f"could not inspect bucket {bucket}: {_client_error_code(exc) or exc}",
                {"bucket": bucket},
            ) from None
    region = client.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**kwargs)
        client.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    except Exception as exc:
        raise StoreError(
            f"could not create bucket {bucket}: {_client_error_code(exc) or exc}",
            {"bucket": bucket},
        ) from None
    return BootstrapStep("s3 bucket", bucket, "created")


def ensure_ledger_table(table: str, client: Any) -> BootstrapStep:
    """Create the ledger table unless it exists; an existing one must have its key schema."""
    expected = ledger_table_spec()["create_table"]["KeySchema"]
    try:
        found = client.describe_table(TableName=table)["Table"]
    except Exception as exc:
        if _client_error_code(exc) != "ResourceNotFoundException":
            raise StoreError(
                f"could not inspect table {table}: {_client_error_code(exc) or exc}",
                {"table": table},
            ) from None
    else:
        if sorted(map(json.dumps, found["KeySchema"])) != sorted(map(json.dumps, expected)):
            raise ParameterError(
                f"table {table} exists with key schema {found['KeySchema']}, "
                f"not the ledger's {expected}",
                {"table": table},
            )
        return BootstrapStep("dynamodb table", table, "unchanged")
    DynamoDBLedger.create_table(table, client)
    return BootstrapStep("dynamodb table", table, "created")


def bootstrap(store: str, ledger: str) -> list[BootstrapStep]:
    """Create the store bucket and the ledger table if missing (boto3 from the environment).

    Parameters
    ----------
    store
        ``s3://bucket[/prefix]``; the bucket is created.
    ledger
        ``dynamodb://<table>``; the table is created with the ledger's key schema and TTL.
    """
    if not store.startswith("s3://") or not store[5:].split("/", 1)[0]:
        raise ParameterError(f"--store must be s3://<bucket>[/<prefix>], got {store!r}")
    table = ledger.removeprefix("dynamodb://")
    if not ledger.startswith("dynamodb://") or not table or "/" in table:
        raise ParameterError(f"--ledger must be dynamodb://<table>, got {ledger!r}")
    import boto3
    from botocore.exceptions import NoRegionError

    try:
        s3 = boto3.client("s3")
        dynamodb = boto3.client("dynamodb")
    except NoRegionError:
        raise ParameterError("no AWS region: set AWS_DEFAULT_REGION (or AWS_REGION)") from None
    return [ensure_bucket(store[5:].split("/", 1)[0], s3), ensure_ledger_table(table, dynamodb)]
