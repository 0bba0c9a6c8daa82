"""HTML reports of runs: a title, tables written for people, nothing loaded from a CDN."""

from __future__ import annotations

import re

import nbformat
import plotly.graph_objects as go
import polars as pl

from titan_lib.runner.report import notebook_html, readable_table


def executed_notebook() -> bytes:
    """A small executed notebook: a heading, a config echo, a polars table and a chart."""
    trades = pl.DataFrame(
        {
            "pair": ["KO/PEP", "XOM/CVX"],
            "pnl": [12345.67, -2500.5],
            "net_return": [0.0123, -0.25],
            "pvalue": [3.2e-7, 0.0456],
            "exit_reason": ["exit", None],
        }
    )
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Backtest of the chosen pairs\n\nText."),
        nbformat.v4.new_code_cell(
            "pl.Config(tbl_rows=50)",
            outputs=[
                nbformat.v4.new_output(
                    "execute_result",
                    data={"text/plain": "<polars.config.Config at 0x7f00deadbeef>"},
                    execution_count=1,
                )
            ],
        ),
        nbformat.v4.new_code_cell(
            "trades",
            outputs=[
                nbformat.v4.new_output(
                    "execute_result",
                    data={"text/html": trades._repr_html_(), "text/plain": str(trades)},
                    execution_count=2,
                )
            ],
        ),
        nbformat.v4.new_code_cell(
            "fig.show()",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    data={"application/vnd.plotly.v1+json": fig.to_plotly_json()},
                )
            ],
        ),
    ]
    return nbformat.writes(nb).encode("utf-8")


def test_a_report_has_a_title_readable_tables_and_no_cdn() -> None:
    page = notebook_html(executed_notebook()).decode("utf-8")
    assert "<title>Backtest of the chosen pairs</title>" in page
    assert "polars.config.Config" not in page
    assert "<small>shape:" not in page
    assert not re.search(r"<td>(f64|str|i64)</td>", page)  # no row of data types
    assert "<th>P&amp;L</th>" in page and "<th>net return</th>" in page
    assert "<th>p-value</th>" in page
    assert "<td>$12,345.67</td>" in page and "<td>-$2,500.50</td>" in page
    assert "<td>1.23%</td>" in page and "<td>-25.00%</td>" in page
    assert "<td>&lt;0.0001</td>" in page and "<td>0.0456</td>" in page
    assert "<td>KO/PEP</td>" in page and "&quot;KO/PEP&quot;" not in page
    assert "<td>-</td>" in page  # a missing value
    assert "e-07" not in page
    loaded = re.findall(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)\s*=\s*["']([^"']+)""", page)
    assert not [url for url in loaded if "//" in url], loaded  # nothing from another host
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S)  # inline code aside
    for cdn in ("cdnjs.cloudflare.com", "cdn.jsdelivr.net", "unpkg.com", "require.js"):
        assert cdn not in markup, cdn
    assert "Plotly.newPlot" in page  # the chart carries its own plotly.js


def test_a_table_without_a_header_row_is_left_as_it_is() -> None:
    odd = '<table border="1" class="dataframe"><tbody><tr><td>1</td></tr></tbody></table>'
    assert readable_table(odd) == odd
