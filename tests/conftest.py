"""Shared fixtures: real services started per session, state kept in temp folders.

- ``moto_endpoint``: a real ``moto_server`` on 127.0.0.1 (S3, DynamoDB, SSM, SNS, ...),
  reached over HTTP by ordinary boto3 clients through ``AWS_ENDPOINT_URL``.
- ``s3_store``: a fresh bucket on that server, as an ``s3://`` store URI.
- Jupyter and IPython write to temp folders, never to the home directory.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY_LIBRARIES = frozenset(
    ("numpy", "pandas", "polars", "statsmodels", "vectorbt", "scipy", "numba", "pyarrow")
)
"""Libraries that titan_lib.core and titan_lib.stores never import (the Lambda has none)."""


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


DEMO_FIXTURE = "demo_pipeline"
DEMO_FOLDER_ENV = "TITAN_TEST_DEMO_FOLDER"
"""Where the session's demo pipeline writes; set by the main pytest process for its workers."""
_DEMO_SCRIPT = """
import pickle, sys, traceback
from pathlib import Path
from titan_lib.runner import load_pipeline, run_pipeline
repo, folder = Path(sys.argv[1]), Path(sys.argv[2])
code = 1
try:
    pipeline = load_pipeline(repo / "parameters" / "pipelines" / "demo.yaml", root=repo)
    result = run_pipeline(pipeline, store=str(folder / "store"), progress=False, reports=True)
    (folder / "result.pickle").write_bytes(pickle.dumps(result))
    code = 0
except BaseException:
    traceback.print_exc()
finally:
    (folder / "exit.partial").write_text(str(code))
    (folder / "exit.partial").replace(folder / "exit")
"""


@dataclass(frozen=True)
class _DemoRun:
    """The demo pipeline running in its own process while the other tests run.

    One pipeline serves the whole session: with pytest-xdist, the first worker that
    collects a test needing it claims the folder (an atomic ``mkdir``) and starts it; the
    others wait for the same files. The main process removes the folder at the end.
    """

    folder: Path

    @property
    def store(self) -> str:
        return str(self.folder / "store")

    def start(self) -> None:
        try:
            (self.folder / "claimed").mkdir(parents=True)
        except FileExistsError:
            return
        home = self.folder / "home"
        home.mkdir()
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
            "JUPYTER_DATA_DIR": str(home / "jupyter-data"),
            "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
            "IPYTHONDIR": str(home / "ipython"),
            "MPLCONFIGDIR": str(home / "mpl"),
        }
        env.pop("TITAN_STORE", None)
        with (self.folder / "pipeline.log").open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-c", _DEMO_SCRIPT, str(REPO), str(self.folder)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=str(REPO),
                start_new_session=True,
            )
        (self.folder / "pid").write_text(str(process.pid))

    def wait(self, timeout: float) -> tuple[Any, str]:
        exit_file = self.folder / "exit"
        deadline = time.monotonic() + timeout
        while not exit_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the demo pipeline did not finish in {timeout:.0f} s")
            time.sleep(0.2)
        code = exit_file.read_text()
        if code != "0":
            tail = (self.folder / "pipeline.log").read_text(errors="replace")[-4000:]
            raise RuntimeError(f"the demo pipeline process failed (exit {code}):\n{tail}")
        return pickle.loads((self.folder / "result.pickle").read_bytes()), self.store

    def stop(self) -> None:
        pid_file = self.folder / "pid"
        if pid_file.exists() and not (self.folder / "exit").exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Choose the session's demo folder in the main process; workers inherit it."""
    if _is_worker(config):
        return
    os.environ[DEMO_FOLDER_ENV] = str(
        Path(tempfile.gettempdir()) / f"titan-demo-pipeline-{uuid.uuid4().hex[:12]}"
    )


def _demo_run() -> _DemoRun:
    return _DemoRun(Path(os.environ[DEMO_FOLDER_ENV]))


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Start the demo pipeline in the background and run the tests that need it last.

    The pipeline (seven notebook kernels, about two minutes) is the longest fixture. Started
    as soon as the tests are known, it runs beside the tests that do not need it; the tests
    that need it are moved to the end of the session.

    With pytest-xdist, ``make test`` runs ``--dist loadgroup``: with no group marks it hands
    the tests out one or two at a time in this order, so the tests that need the pipeline
    still come last (plain ``--dist load`` would send each worker a share of the list at
    once). Tests of one module may run on both workers, each with its own module fixtures.
    """
    needing = [item for item in items if DEMO_FIXTURE in getattr(item, "fixturenames", ())]
    if not needing or config.getoption("collectonly"):
        return
    others = [item for item in items if DEMO_FIXTURE not in getattr(item, "fixturenames", ())]
    items[:] = others + needing
    _demo_run().start()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the background demo pipeline if still running and remove its folder."""
    if not _is_worker(config) and DEMO_FOLDER_ENV in os.environ:
        _demo_run().stop()
        del os.environ[DEMO_FOLDER_ENV]


@pytest.fixture(scope="session")
def demo_pipeline() -> tuple[Any, str]:
    """The demo pipeline (quick profile) run once per session into a fresh local store.

    Returns ``(PipelineResult, store URI)``. It was started in the background when the
    tests were collected (:func:`pytest_collection_modifyitems`); this waits for it. Tests
    that change the store work on a copy (see :func:`copy_store`), so every user sees the
    pipeline's own output.
    """
    return _demo_run().wait(timeout=900)


def copy_store(store: str, target: Path) -> str:
    """Copy a local store folder to ``target`` and return the copy's URI."""
    shutil.copytree(store, target)
    return str(target)
