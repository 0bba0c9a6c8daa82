"""HTML reports of executed notebooks, for readers without Jupyter (code hidden)."""

from __future__ import annotations

import html
import re
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

REPORT_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block extra_css -%}
<style>
table.dataframe { border-collapse: collapse; font-size: 0.9em; margin: 6px 0; }
table.dataframe th, table.dataframe td { padding: 3px 10px; border-bottom: 1px solid #ddd;
  text-align: right; white-space: nowrap; }
table.dataframe th { background: #f3f5f8; }
table.dataframe td:first-child, table.dataframe th:first-child { text-align: left; }
</style>
{%- endblock extra_css -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
"""nbconvert's lab page, with plain table styles, without the scripts it loads from a CDN
(require.js, MathJax, mermaid): a report opens offline and sends its reader to no third
party. Plotly charts carry their own plotly.js; the notebooks write no formulas or
diagrams."""


def notebook_html(notebook_json: bytes) -> bytes:
    """Render an executed notebook as a standalone HTML page in report mode.

    Code cells' inputs and the ``In``/``Out`` prompts are hidden; markdown, tables and
    charts stay. Returns UTF-8 bytes.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.reads(notebook_json.decode("utf-8"), as_version=4)
    _render_plotly(nb)
    _readable_outputs(nb)
    nb.metadata.setdefault("title", report_title(nb))
    exporter = HTMLExporter(
        template_name="lab",
        raw_template=REPORT_TEMPLATE,
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
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


CONFIG_REPR = "<polars.config.Config"
"""How a notebook's ``pl.Config(...)`` call prints when it is a cell's last line."""
POLARS_TABLE = re.compile(
    r"<small>shape: \([^)]*\)</small>\s*(<table[^>]*class=\"dataframe\".*?</table>)", re.S
)
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<t[hd]>(.*?)</t[hd]>", re.S)


def report_title(nb: Any) -> str:
    """The notebook's first heading (``# ...`` in a markdown cell), else "TITAN report"."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return "TITAN report"


def _readable_outputs(nb: Any) -> None:
    """Drop configuration echoes and write polars tables for people.

    A ``pl.Config(...)`` echo is removed. A polars table loses its ``shape:`` line and
    its row of data types; its headers are put in words and its numbers written as each
    column reads (:mod:`titan_lib.plots.formatting`).
    """
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        kept = []
        for output in outputs:
            data = output.get("data", {})
            plain = data.get("text/plain", "")
            text = "".join(plain) if isinstance(plain, list) else plain
            if set(data) == {"text/plain"} and text.startswith(CONFIG_REPR):
                continue
            html = data.get("text/html")
            if html is not None:
                joined = "".join(html) if isinstance(html, list) else html
                data["text/html"] = POLARS_TABLE.sub(lambda m: readable_table(m.group(1)), joined)
            kept.append(output)
        if outputs:
            cell["outputs"] = kept


def readable_table(table: str) -> str:
    """A polars HTML table (``class="dataframe"``) without its data-type row, with headers
    in words and numbers formatted per column."""
    from titan_lib.plots.formatting import column_label, format_column_value

    head, found, body = table.partition("</thead>")
    head_rows = ROW.findall(head)
    if not found or not head_rows:
        return table
    names = [html.unescape(c) for c in CELL.findall(head_rows[0])]
    header = "".join(f"<th>{html.escape(column_label(n))}</th>" for n in names)
    rows = []
    for row in ROW.findall(body):
        cells = [html.unescape(c) for c in CELL.findall(row)]
        written = (
            _readable_cell(name, value, format_column_value)
            for name, value in zip(names, cells, strict=False)
        )
        rows.append("<tr>" + "".join(f"<td>{html.escape(w)}</td>" for w in written) + "</tr>")
    return (
        f'<table class="dataframe"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _readable_cell(name: str, value: str, write: Any) -> str:
    """One cell: quoted strings unquoted, numbers written as the column reads."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if value == "null":
        return "-"
    try:
        number = float(value.replace("_", ""))
    except ValueError:
        return value
    if value.strip().lower() in {"nan", "inf", "-inf", "null"}:
        return "-"
    return str(write(name, int(number) if number.is_integer() and "." not in value else number))
