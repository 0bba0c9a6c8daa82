"""Shared fixtures: real services started per session, state kept in temp folders.

- ``moto_endpoint``: a real ``moto_server`` on 127.0.0.1 (S3, DynamoDB, SSM, SNS, ...),
  reached over HTTP by ordinary boto3 clients through ``AWS_ENDPOINT_URL``.
- ``s3_store``: a fresh bucket on that server, as an ``s3://`` store URI.
- Jupyter and IPython write to temp folders, never to the home directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    """Block until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def imported_modules(code: str) -> set[str]:
    """Top-level packages imported by running ``code`` in a fresh interpreter.

    Read from ``python -X importtime``, so indirect imports count too.
    """
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep Jupyter/IPython state and AWS config out of the user's home folder."""
    home = tmp_path_factory.mktemp("home")
    env = {
        "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "MPLCONFIGDIR": str(home / "mpl"),
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    os.environ.pop("TITAN_STORE", None)
    yield
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_endpoint(_isolated_home: None) -> Iterator[str]:
    """Start ``moto_server`` on 127.0.0.1 for the session; yield its URL.

    ``AWS_ENDPOINT_URL`` is set while it runs, so every boto3 client talks to it.
    """
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
        "moto_server"
    )
    if exe is None:
        raise RuntimeError("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        old = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = url
        yield url
        if old is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = old
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture()
def s3_bucket(moto_endpoint: str) -> str:
    """A fresh, empty bucket on the moto server; returns its name."""
    import boto3

    name = f"titan-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture()
def s3_store(s3_bucket: str) -> str:
    """A store URI on a fresh moto bucket: ``s3://<bucket>/store``."""
    return f"s3://{s3_bucket}/store"


@pytest.fixture()
def local_store(tmp_path: Path) -> str:
    """A store URI that is an empty local folder."""
    return str(tmp_path / "store")


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest) -> str:
    """Each test using it runs twice: on a local folder and on S3 (moto server)."""
    if request.param == "local":
        return str(request.getfixturevalue("tmp_path") / "store")
    return str(request.getfixturevalue("s3_store"))


@pytest.fixture(scope="session")
def demo_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    """The demo pipeline (quick profile) run once per session into a fresh local store.

    Returns ``(PipelineResult, store URI)``. Tests that change the store work on a copy
    (see :func:`copy_store`), so every user sees the pipeline's own output.
    """
    from titan_lib.runner import load_pipeline, run_pipeline

    store = str(tmp_path_factory.mktemp("demo") / "store")
    pipeline = load_pipeline(REPO / "parameters" / "pipelines" / "demo.yaml", root=REPO)
    result = run_pipeline(pipeline, store=store, progress=False, reports=True)
    return result, store


def copy_store(store: str, target: Path) -> str:
    """Copy a local store folder to ``target`` and return the copy's URI."""
    shutil.copytree(store, target)
    return str(target)
