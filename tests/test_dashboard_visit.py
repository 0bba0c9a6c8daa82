"""A visitor's browser connects to a preheated kernel only once the page for the visit is made.

A real ``titan dashboard`` server (:mod:`titan_lib.dashboards.voila_app`) serves a notebook
whose kernel takes two seconds to make the page for a visit, in a background thread (the
kernel's main thread stays free to answer the browser). The page request hands a preheated
kernel its visit; a kernel connection opened at once (what the browser does next) is
accepted only after the kernel has ended the visit, so the browser never receives half of
a page's widgets (PreheatedPage holds the visit open while it builds: see
tests/test_dashboard_assets.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
from conftest import free_port, wait_for_port
from websockets.sync.client import connect

from titan_lib.dashboards.serve import ServeOptions, voila_command, voila_environment

BUILD_SECONDS = 2.0
NOTEBOOK = """
import json, pathlib, threading, time
from titan_lib.dashboards.request import visit

def follow():
    with visit() as request:
        time.sleep({seconds})  # the page in making; the kernel's main thread stays free
        pathlib.Path({made!r}).write_text(json.dumps([request.run, time.time()]))

threading.Thread(target=follow, daemon=True).start()
"""


def _notebook(folder: Path, made: Path) -> None:
    cells = [nbformat.v4.new_code_cell(NOTEBOOK.format(seconds=BUILD_SECONDS, made=str(made)))]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "titan",
        "display_name": "TITAN",
        "language": "python",
    }
    nbformat.write(notebook, folder / "slow_visit.ipynb")


def test_the_browser_connects_to_a_preheated_kernel_once_its_page_is_made(tmp_path: Path) -> None:
    folder = tmp_path / "dashboards"
    folder.mkdir()
    made = tmp_path / "made.json"
    _notebook(folder, made)
    port = free_port()
    options = ServeOptions(
        folder=folder, store=str(tmp_path / "store"), port=port, pool_size=1, refill_delay=600
    )
    log = tmp_path / "voila.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            voila_command(options),
            env=voila_environment(options),
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    try:
        wait_for_port(port, timeout=60)
        deadline = time.monotonic() + 120
        while "is filled with" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the preheated notebook has run and waits for its visit
        base = f"127.0.0.1:{port}"
        with urllib.request.urlopen(f"http://{base}/voila/render/slow_visit.ipynb?run=r9") as page:
            html = page.read().decode()
        asked = time.time()
        found = re.search(r'"kernelId":\s*"([0-9a-f-]+)"', html)
        assert found, html[:2000]
        assert not made.exists()  # the visit's page takes BUILD_SECONDS to make
        with connect(f"ws://{base}/api/kernels/{found.group(1)}/channels", open_timeout=90):
            connected = time.time()
            assert made.exists(), "the kernel connection opened before the page was made"
        run, finished = json.loads(made.read_text())
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert run == "r9"
    assert asked < finished <= connected
    assert connected - asked >= BUILD_SECONDS * 0.9
    assert "did not finish its page" not in log.read_text()
