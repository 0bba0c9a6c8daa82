"""HTML reports of executed notebooks, for readers without Jupyter (code hidden)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from titan_lib.runner.record import (
    OUTPUT_NOTEBOOK,
    REPORT_FILE,
    add_record_file,
    read_record,
    run_key,
)
from titan_lib.stores.objects import ObjectStore


def notebook_html(notebook_json: bytes) -> bytes:
    """Render an executed notebook as a standalone HTML page in report mode.

    Code cells' inputs and the ``In``/``Out`` prompts are hidden; markdown, tables and
    charts stay. Returns UTF-8 bytes.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.reads(notebook_json.decode("utf-8"), as_version=4)
    _render_plotly(nb)
    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_notebook_node(nb)
    return body.encode("utf-8")


PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"


def _render_plotly(nb: Any) -> None:
    """Give each plotly figure an HTML rendering; plotly.js is inlined once, so the page
    works offline (JupyterLab renders the JSON itself, HTML pages cannot)."""
    import plotly.io as pio

    include_js = True
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIMETYPE in data and "text/html" not in data:
                data["text/html"] = pio.to_html(
                    data[PLOTLY_MIMETYPE],
                    include_plotlyjs=include_js,
                    full_html=False,
                    validate=False,
                )
                include_js = False


def export_report(store: ObjectStore, run_id: str, output: Path | None = None) -> str:
    """Export a run's output notebook to HTML.

    The page is added to the record as ``runs/<run_id>/report.html`` (create-only: an
    existing report is reused) and, when ``output`` is given, also written there.

    Returns
    -------
    str
        Where the report is: ``output`` when given, else the store location.
    """
    read_record(store, run_id)
    key = run_key(run_id, REPORT_FILE)
    existing = store.read_versioned(key)
    if existing is not None:
        html = existing[0]
    else:
        html = notebook_html(store.read_bytes(run_key(run_id, OUTPUT_NOTEBOOK)))
        add_record_file(store, run_id, REPORT_FILE, html)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(html)
        return str(output)
    return record_location(store, key)


def record_location(store: ObjectStore, key: str) -> str:
    """A human-readable location of a key: a file path for local stores, else a URI."""
    local = store.local_path(key)
    return str(local) if local is not None else f"{store.uri}/{key}"
