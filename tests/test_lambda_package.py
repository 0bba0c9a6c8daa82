"""`titan lambdas package` builds SAM and Terraform artefacts whose zip runs in a clean
virtual environment holding only boto3, like the Lambda runtime."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fixtures.lambda_world import SECRET, token, world_store

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
    store, ids = world_store(tmp_path, REPO / ".cache")
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
