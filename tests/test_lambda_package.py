"""`titan lambdas package` builds SAM and Terraform artefacts whose zip runs in a clean
virtual environment holding only boto3, like the Lambda runtime, and whose templates
create the bucket, the ledger table and the topic the app uses, name its secrets' SSM
parameters, and grant each function only what it uses (every name a parameter). The SAM
template passes cfn-lint."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fixtures.lambda_world import SECRET, token, world_store

from titan_lib.cli.lambda_resources import FUNCTION_GRANTS, GRANTS, LEDGER_ACTIONS
from titan_lib.core.execution.ledger_dynamodb import DynamoDBLedger

REPO = Path(__file__).resolve().parents[1]
RUNTIME_VENV = REPO / ".cache" / "lambda-runtime-venv"
FORBIDDEN = {"numpy", "pandas", "polars", "pyarrow", "scipy", "statsmodels", "vectorbt"}


def runtime_python() -> Path:
    """A venv with boto3 1.44.8 only (created once, kept in .cache)."""
    python = RUNTIME_VENV / "bin" / "python"
    ok = (
        python.exists()
        and subprocess.run(
            [str(python), "-c", "import boto3; assert boto3.__version__ == '1.44.8'"],
            capture_output=True,
        ).returncode
        == 0
    )
    if not ok:
        uv = Path(sys.executable).parent / "uv"
        subprocess.run(
            [str(uv), "venv", "-q", "--clear", "-p", sys.executable, str(RUNTIME_VENV)], check=True
        )
        subprocess.run(
            [str(uv), "pip", "install", "-q", "-p", str(python), "boto3==1.44.8"], check=True
        )
    return python


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    titan = Path(sys.executable).parent / "titan"
    done = subprocess.run(
        [str(titan), "lambdas", "package", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "deploy: sam deploy" in done.stdout
    return out


def test_artefacts_are_small_light_and_carry_gateway_responses(packaged: Path) -> None:
    zip_path = packaged / "sam" / "deployment.zip"
    assert zip_path.stat().st_size <= 5 * 1024 * 1024
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert not {t.split(".")[0] for t in top} & FORBIDDEN
    assert {"app.py", "chalicelib", "titan_lib", "aws_lambda_powertools", "chalice"} <= top
    assert "titan_lib/core/execution/service.py" in names
    assert not any(n.startswith(("titan_lib/data/", "titan_lib/runner/")) for n in names)
    sam = json.loads((packaged / "sam" / "sam.json").read_text())
    body = sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert responses["UNAUTHORIZED"]["statusCode"] == "401"
    assert '"error"' in responses["UNAUTHORIZED"]["responseTemplates"]["application/json"]
    kinds = {r["Type"] for r in sam["Resources"].values()}
    assert "AWS::Serverless::Function" in kinds
    terraform = json.loads((packaged / "terraform" / "chalice.tf.json").read_text())
    swagger = json.loads(terraform["locals"]["chalice_api_swagger"])
    assert "UNAUTHORIZED" in swagger["x-amazon-apigateway-gateway-responses"]


def test_packaged_app_runs_in_a_clean_boto3_only_runtime(packaged: Path, tmp_path: Path) -> None:
    python = runtime_python()
    unzipped = tmp_path / "task"
    with zipfile.ZipFile(packaged / "sam" / "deployment.zip") as archive:
        archive.extractall(unzipped)
    store, ids = world_store(tmp_path)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(unzipped),
        "PYTHONNOUSERSITE": "1",
        "TITAN_STORE": str(store),
        "TITAN_LEDGER": str(tmp_path / "ledger.sqlite"),
        "TITAN_JWT_SECRET": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    check = REPO / "tests" / "fixtures" / "lambda_runtime_check.py"
    done = subprocess.run(
        [
            str(python),
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(unzipped)!r}); "
            f"sys.argv = ['check', {ids[0]!r}, {token('signals:read')!r}]; "
            f"exec(open({str(check)!r}).read())",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["app_file"].startswith(str(unzipped))
    assert result["titan_file"].startswith(str(unzipped))
    assert result["heavy"] == []
    assert result["health"]["statusCode"] == 200
    assert json.loads(result["health"]["body"])["status"] == "ok"
    assert result["signal"]["statusCode"] == 200
    signal = json.loads(result["signal"]["body"])
    assert signal["model_id"] == ids[0] and signal["as_of"] == "2022-12-28"
    assert signal["target_position"] in (-1, 0, 1) and "zscore" in signal
    assert result["forbidden"]["statusCode"] == 403
    assert json.loads(result["forbidden"]["body"])["error"]["code"] == "forbidden"
    assert result["policy"]["principalId"] == "alice"
    assert result["policy"]["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["refused"] == "Unauthorized"


# -- resources, parameters and least privilege ----------------------------------------------

NAME_PARAMETERS = (
    "LedgerTableName",
    "ModelEventsTopicName",
    "JwtSecretParameterName",
    "AlpacaKeyIdParameterName",
    "AlpacaSecretKeyParameterName",
)


def _leaves(node: object) -> list[object]:
    if isinstance(node, dict):
        return [leaf for value in node.values() for leaf in _leaves(value)]
    if isinstance(node, list):
        return [leaf for value in node for leaf in _leaves(value)]
    return [node]


def _statements(sam: dict, role: str) -> list[dict]:
    """A role's statements; a conditional one (``Fn::If``) counts as present."""
    document = sam["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    found = []
    for statement in document["Statement"]:
        if "Fn::If" in statement:
            condition, statement, absent = statement["Fn::If"]
            assert absent == {"Ref": "AWS::NoValue"} and condition in sam["Conditions"]
        found.append(statement)
    return found


def _actions(sam: dict, role: str) -> set[str]:
    return {a for s in _statements(sam, role) for a in s["Action"]}


def test_sam_template_passes_cfn_lint_and_the_check_is_not_vacuous(packaged: Path) -> None:
    from cfnlint.api import lint_all

    template = (packaged / "sam" / "sam.json").read_text()
    # what `cfn-lint sam.json` reports: errors (E) and warnings (W); informational notes
    # (I) are off by default
    reported = [str(m) for m in lint_all(template) if m.rule.id.startswith(("E", "W"))]
    assert reported == []

    broken = json.loads(template)
    del broken["Resources"]["LedgerTable"]
    broken["Resources"]["ModelEventsTopic"]["Properties"]["Subscribers"] = []
    # cfn-lint resolves an Fn::Sub of a resource (the push grant's API id) over every
    # combination of regions, most of a lint's time; the breaks below do not involve it
    for resource in broken["Resources"].values():
        for policy in resource.get("Properties", {}).get("Policies", []):
            document = policy["PolicyDocument"]
            document["Statement"] = [
                s for s in document["Statement"] if "@connections" not in json.dumps(s)
            ]
    rules = {match.rule.id for match in lint_all(json.dumps(broken))}
    assert {"E1010", "E3002"} <= rules, rules  # GetAtt of a missing table; unknown property


def test_templates_create_what_the_app_uses_with_names_as_parameters(
    packaged: Path, moto_endpoint: str
) -> None:
    sam = json.loads((packaged / "sam" / "sam.json").read_text())
    resources = sam["Resources"]
    parameters = sam["Parameters"]
    assert "Default" not in parameters["StoreBucketName"]
    assert parameters["CreateStoreBucket"]["AllowedValues"] == ["true", "false"]
    bucket = resources["StoreBucket"]
    assert bucket["Condition"] == "CreatesStoreBucket"
    assert bucket["Properties"]["BucketName"] == {"Ref": "StoreBucketName"}
    assert bucket["DeletionPolicy"] == "Retain"

    # the table has the key schema and TTL of a table the ledger creates itself
    real = DynamoDBLedger.create_table(f"probe-{os.getpid()}-{id(sam)}")
    described = real.client.describe_table(TableName=real.table)["Table"]
    ttl = real.client.describe_time_to_live(TableName=real.table)["TimeToLiveDescription"]
    table = resources["LedgerTable"]["Properties"]
    assert table["TableName"] == {"Ref": "LedgerTableName"}
    assert table["KeySchema"] == described["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        described["AttributeDefinitions"], key=str
    )
    assert table["BillingMode"] == described["BillingModeSummary"]["BillingMode"]
    assert table["TimeToLiveSpecification"] == {
        "Enabled": True,
        "AttributeName": ttl["AttributeName"],
    }

    assert resources["ModelEventsTopic"]["Properties"]["TopicName"] == {
        "Ref": "ModelEventsTopicName"
    }
    functions = {
        r["Properties"]["Handler"].split(".", 1)[1]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert set(functions) == set(FUNCTION_GRANTS)
    schedules = {
        name: [
            e["Properties"]["Schedule"]
            for e in f.get("Events", {}).values()
            if e["Type"] == "Schedule"
        ]
        for name, f in functions.items()
    }
    assert schedules["refresh_signals"] == ["cron(30 21 ? * MON-FRI *)"]
    assert schedules["reconcile_orders"] == ["rate(5 minutes)"]
    sns = functions["on_model_event"]["Events"]["OnModelEventSnsSubscription"]["Properties"]
    assert sns["Topic"] == {"Ref": "ModelEventsTopic"}
    for name, function in functions.items():
        env = function["Environment"]["Variables"]
        assert env["TITAN_STORE"] == {"Fn::Sub": "s3://${StoreBucketName}/${StorePrefix}"}, name
        assert env["TITAN_LEDGER"] == {"Fn::Sub": "dynamodb://${LedgerTable}"}, name
        assert env["TITAN_MODEL_EVENTS_TOPIC_ARN"] == {"Ref": "ModelEventsTopic"}, name
        assert env["TITAN_JWT_SECRET_SSM"] == {"Ref": "JwtSecretParameterName"}, name
        # secrets are read from SSM by name; no variable holds a secret value
        assert "TITAN_JWT_SECRET" not in env and "TITAN_ALPACA_SECRET_KEY" not in env, name

    # names live in parameters only: no default is spelled out anywhere else
    outside = [leaf for key, part in sam.items() if key != "Parameters" for leaf in _leaves(part)]
    for name in NAME_PARAMETERS:
        default = parameters[name]["Default"]
        assert default.startswith(("titan-", "/titan/")), name
        assert default not in outside, name
        assert not any(isinstance(v, str) and default in v for v in outside), name
    config_dir = REPO / "lambdas" / ".chalice"
    config = json.loads((config_dir / "config.json").read_text())
    stages = [config, *config["stages"].values()]
    variables = {k for stage in stages for k in stage.get("environment_variables", {})}
    assert variables <= {"POWERTOOLS_SERVICE_NAME"}, variables
    for path in config_dir.glob("*.json"):
        text = path.read_text()
        assert not re.search(r"arn:aws:(s3|dynamodb|sns|ssm)|titan-(dev|prod)", text), path


def test_each_function_is_granted_only_what_it_uses(packaged: Path) -> None:
    sam = json.loads((packaged / "sam" / "sam.json").read_text())
    roles = {
        r["Properties"]["Handler"].split(".", 1)[1]: r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in sam["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    for handler, role in roles.items():
        for statement in _statements(sam, role):
            assert statement["Effect"] == "Allow"
            assert not any("*" in a for a in statement["Action"]), (handler, statement)
            assert statement["Resource"] != "*", (handler, statement)
            if any(a.startswith("kms:") for a in statement["Action"]):
                assert "kms:ViaService" in statement["Condition"]["StringEquals"]
    assert _actions(sam, roles["jwt_auth"]) == {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ssm:GetParameter",
        "kms:Decrypt",
    }
    assert not any(
        a.startswith(("dynamodb:", "sns:", "ssm:")) for a in _actions(sam, roles["on_model_event"])
    )
    assert "sns:Publish" in _actions(sam, roles["refresh_signals"])
    assert not any(
        "sns:Publish" in _actions(sam, roles[h]) for h in roles if h != "refresh_signals"
    )
    api = _statements(sam, roles["app"])
    ledger = next(s for s in api if s["Sid"] == "Ledger")
    assert ledger["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}
    assert set(ledger["Action"]) == set(LEDGER_ACTIONS)
    listing = next(s for s in api if s["Sid"] == "StoreList")
    assert listing["Condition"]["StringLike"]["s3:prefix"][0] == {"Ref": "StorePrefix"}
    alpaca = next(s for s in api if s["Sid"] == "AlpacaKeys")
    assert len(alpaca["Resource"]) == 2

    terraform = json.loads((packaged / "terraform" / "chalice.tf.json").read_text())
    tf = terraform["resource"]
    assert tf["aws_dynamodb_table"]["ledger"]["name"] == "${var.ledger_table_name}"
    assert tf["aws_dynamodb_table"]["ledger"]["hash_key"] == "pk"
    assert tf["aws_s3_bucket"]["store"]["count"] == "${var.create_store_bucket ? 1 : 0}"
    assert tf["aws_sns_topic"]["model_events"]["name"] == "${var.model_events_topic_name}"
    for subscription in tf["aws_sns_topic_subscription"].values():
        assert subscription["topic_arn"] == "${aws_sns_topic.model_events.arn}"
    documents = terraform["data"]["aws_iam_policy_document"]
    for name, function in tf["aws_lambda_function"].items():
        role = function["role"].removeprefix("${aws_iam_role.").removesuffix(".arn}")
        policy = tf["aws_iam_role_policy"][role]["policy"]
        assert policy == f"${{data.aws_iam_policy_document.{name}.json}}"
        assert function["environment"]["variables"]["TITAN_LEDGER"] == (
            "dynamodb://${aws_dynamodb_table.ledger.name}"
        )
    assert "ssm:GetParameter" not in json.dumps(documents["on_model_event"])
    assert set(terraform["variable"]) >= {
        "store_bucket_name",
        "create_store_bucket",
        "ledger_table_name",
        "model_events_topic_name",
        "jwt_secret_parameter_name",
    }


def _client_calls(path: Path) -> set[str]:
    """Names of ``<...>client.<method>(...)`` calls (and paginators) in a module."""
    calls: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Attribute) and owner.attr == "client":
                method = node.func.attr
                if method == "get_paginator":
                    method = ast.literal_eval(node.args[0])
                calls.add(method)
    return calls


def _iam_action(service: str, method: str) -> str:
    return f"{service}:" + "".join(part.title() for part in method.split("_"))


def test_the_grants_cover_every_call_the_app_makes() -> None:
    """Least privilege that still works: each AWS call of the ledger, the store, the model
    events and the secrets maps to an action granted to the functions that use it."""
    granted = {name: {a for g in grants for a in g.actions} for name, grants in GRANTS.items()}
    titan = REPO / "titan_lib"
    ledger = _client_calls(titan / "core" / "execution" / "ledger_dynamodb.py")
    bootstrap_only = {"create_table", "get_waiter", "update_time_to_live"}
    assert ledger - bootstrap_only, "no ledger calls found"
    for method in ledger - bootstrap_only:
        assert _iam_action("dynamodb", method) in granted["ledger"], method
    assert "dynamodb:ConditionCheckItem" in granted["ledger"]  # conditions inside transactions
    for module in ("jobs/store_dynamodb.py", "push/connections_dynamodb.py"):
        calls = _client_calls(titan / "core" / module)
        assert calls, module
        for method in calls:
            assert _iam_action("dynamodb", method) in granted["ledger"], (module, method)
    sqs = _client_calls(titan / "core" / "jobs" / "queue_sqs.py")
    assert {"get_queue_url", "send_message"} <= sqs  # what the API calls to queue a job
    assert granted["jobs_queue"] == {"sqs:GetQueueUrl", "sqs:SendMessage"}
    assert _client_calls(titan / "core" / "push" / "gateway.py") == {"post_to_connection"}
    assert granted["websocket_push"] == {"execute-api:ManageConnections"}
    store = _client_calls(titan / "stores" / "s3.py")
    needed = {
        "get_object": "s3:GetObject",
        "head_object": "s3:GetObject",
        "put_object": "s3:PutObject",
        "delete_object": "s3:DeleteObject",
        "list_objects_v2": "s3:ListBucket",
    }
    assert store and store <= set(needed), store
    assert {needed[m] for m in store} <= granted["store"]
    assert "publish" in (titan / "core" / "model_events.py").read_text()
    assert granted["model_events"] == {"sns:Publish"}
    assert "get_parameter(" in (titan / "core" / "auth.py").read_text()
    assert granted["jwt_secret"] == granted["alpaca_keys"] == {"ssm:GetParameter"}
