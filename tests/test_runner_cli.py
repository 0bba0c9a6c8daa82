"""`titan run`, `titan runs list|show|export` and `titan lab`, driven as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, wait_for_port
from fixtures.cli_runs import run_titan as titan

from titan_lib.runner import list_records
from titan_lib.stores import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"

pytestmark = pytest.mark.slow


def test_run_list_show_export(
    any_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("x: 3\nn: 5\nprofiles:\n  quick: {n: 2}\n")
    code, out, err = titan(
        [
            "run",
            str(FIXTURES / "sidecar.ipynb"),
            "-f",
            str(params),
            "--profile",
            "quick",
            "-p",
            "tags",
            "[u, v]",
            "-p",
            "name",
            "007",
            "--no-progress",
            "--store",
            any_store,
        ],
        capsys,
    )
    assert code == 0, err
    (record,) = list_records(open_store(any_store))
    assert record.parameters == {"x": 3.0, "n": 2, "tags": ["u", "v"], "name": "007"}
    assert f"run {record.run_id} succeeded" in out

    code, out, _ = titan(["runs", "list", "--store", any_store], capsys)
    assert code == 0 and record.run_id in out and "sidecar" in out and "succeeded" in out

    code, out, _ = titan(["runs", "show", record.run_id, "--store", any_store], capsys)
    assert code == 0
    assert "status     succeeded" in out
    assert "total: 3" in out  # the sidecar's summary: 3.0 * (0 + 1)
    assert "tables     series" in out

    code, out, _ = titan(["runs", "show", record.run_id, "--json", "--store", any_store], capsys)
    assert json.loads(out)["run_id"] == record.run_id

    code, out, _ = titan(
        ["runs", "show", record.run_id, "--open", "--port", "8901", "--store", any_store], capsys
    )
    assert code == 0
    assert out.strip().startswith("http://127.0.0.1:8901/voila/render/")
    assert f"run={record.run_id}" in out

    html_path = tmp_path / "report.html"
    code, out, _ = titan(
        ["runs", "export", record.run_id, "-o", str(html_path), "--store", any_store], capsys
    )
    assert code == 0 and out.strip() == str(html_path)
    html = html_path.read_text()
    assert "Fixture notebook for the runner tests." in html  # markdown kept
    assert "values = [x * i for i in range(n)]" not in html  # code hidden
    assert open_store(any_store).exists(f"runs/{record.run_id}/report.html")


def test_cli_errors_are_one_line_messages(
    local_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = str(FIXTURES / "sidecar.ipynb")
    code, _, err = titan(["run", notebook, "-p", "n", "many", "--store", local_store], capsys)
    assert code == 1
    assert err.startswith("error: notebook sidecar: parameter 'n' must be int, got str 'many'")
    assert "n: int = 3  # number of values" in err
    assert "Traceback" not in err

    code, _, err = titan(
        ["run", notebook, "-p", "x", "-1", "--no-progress", "--store", local_store], capsys
    )
    assert code == 1
    assert "ValueError: x must be non-negative" in err and "Traceback" not in err

    code, _, err = titan(
        ["runs", "show", "20990101T000000000Z-000000", "--store", local_store], capsys
    )
    assert code == 1 and "not found" in err

    code, _, err = titan(["run", notebook, "-p", "x", "--store", local_store], capsys)
    assert code == 1 and "-p needs a NAME and a VALUE" in err

    code, _, err = titan(["run", notebook, "--profile", "quik", "--store", local_store], capsys)
    assert code == 1 and err.startswith("error: unknown profile 'quik' for notebook sidecar")

    empty = f"{local_store}-empty"
    code, out, _ = titan(["runs", "list", "--store", empty], capsys)
    assert code == 0
    assert f"`titan pipeline parameters/pipelines/demo.yaml --store {empty}`" in out


def _kernel_says(connection_file: Path, code: str) -> str:
    """What ``code`` prints in the kernel behind ``connection_file``."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient()
    client.load_connection_file(str(connection_file))
    client.start_channels()
    printed: list[str] = []
    try:
        client.wait_for_ready(timeout=60)
        client.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda msg: printed.append(msg["content"].get("text", "")),
        )
    finally:
        client.stop_channels()
    return "".join(printed)


def test_lab_serves_notebooks_with_the_titan_kernel(tmp_path: Path) -> None:
    import os

    port = free_port()
    token = "titan-test-token"
    repo = Path(__file__).resolve().parents[1]
    store = tmp_path / "lab-store"
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "titan"),
            "lab",
            "--port",
            str(port),
            "--no-browser",
            "--token",
            token,
            "--store",
            str(store),
        ],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        url = f"http://127.0.0.1:{port}/api/kernelspecs?token={token}"
        specs = json.loads(urllib.request.urlopen(url, timeout=30).read())
        assert specs["default"] == "titan"
        assert specs["kernelspecs"]["titan"]["spec"]["display_name"] == "TITAN (Python 3.11)"
        contents = json.loads(
            urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=30
            ).read()
        )
        names = {item["name"] for item in contents["content"]}
        # JupyterLab hides dot-folders (caches a kernel may leave), as a file browser does
        shown = {p.name for p in (repo / "notebooks").iterdir() if not p.name.startswith(".")}
        assert names == shown

        # a kernel started as JupyterLab starts one reads the store given to `titan lab`
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/kernels",
            data=b"{}",
            method="POST",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        kernel = json.loads(urllib.request.urlopen(request, timeout=60).read())
        assert kernel["name"] == "titan"
        connection = Path(os.environ["JUPYTER_RUNTIME_DIR"]) / f"kernel-{kernel['id']}.json"
        said = _kernel_says(
            connection,
            "import os\nfrom titan_lib.config import store_uri\n"
            "print(os.environ['TITAN_STORE'], store_uri())",
        )
        assert said.split() == [str(store), str(store)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
