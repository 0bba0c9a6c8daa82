"""Page furniture shared by the dashboards: title bar, controls row, notices, tables, cards.

Every dashboard is one ipywidgets tree: a title, the controls in a row on top, then the
body. CSS classes give the browser tests stable hooks: ``titan-dashboard`` on the page,
``titan-ready`` once it is interactive, ``titan-notice`` on friendly messages,
``titan-table`` on tables, ``titan-card`` on statistic cards and ``titan-<name>`` on
each control.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from titan_lib.dashboards.catalog import DASHBOARDS
from titan_lib.exceptions import TitanError
from titan_lib.plots.formatting import column_label, format_column_value

if TYPE_CHECKING:
    import ipywidgets as widgets
    import polars as pl

MAIN_JOB_COMMAND = "titan pipeline parameters/pipelines/demo.yaml"
"""The command that fills an empty store with runs (the README's main job)."""

_STYLE = """
<style>
.titan-dashboard { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
  max-width: 1400px; margin: 0 auto; }
.titan-title h1 { font-size: 1.6em; margin: 8px 0 2px 0; }
.titan-title p { color: #555; margin: 0 0 8px 0; }
.titan-title .titan-home { font-size: 0.85em; color: #2f6fb0; text-decoration: none; }
.titan-notice { border-left: 4px solid #2f6fb0; background: #eef4fb; padding: 10px 14px;
  margin: 8px 0; }
.titan-notice code { background: #dde8f5; padding: 1px 4px; }
.titan-table { border-collapse: collapse; font-size: 0.9em; width: 100%; }
.titan-table th, .titan-table td { padding: 3px 8px; border-bottom: 1px solid #ddd;
  text-align: right; white-space: nowrap; }
.titan-table th { background: #f3f5f8; }
.titan-table-box { overflow-x: auto; }
@media print { .titan-table-box { overflow: visible; } }
.titan-table td:first-child, .titan-table th:first-child { text-align: left; }
.titan-cards { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
.titan-card { border: 1px solid #d8dde6; border-radius: 6px; padding: 6px 12px;
  min-width: 110px; background: #fafbfc; }
.titan-card .label { color: #666; font-size: 0.8em; }
.titan-card .value { font-size: 1.25em; font-weight: 600; }
.titan-muted { color: #666; font-size: 0.85em; }
</style>
"""


def escape(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value))


def format_value(value: Any, column: str = "") -> str:
    """``value`` written for a reader as column ``column`` reads (percent, money, ...; see
    :mod:`titan_lib.plots.formatting`); ``-`` for missing or non-finite."""
    return format_column_value(column, value)


LANDING_HREF = DASHBOARDS["index"].notebook
"""The landing page, relative to a dashboard's own URL (``/voila/render/<name>.ipynb``)."""


def title_bar(title: str, subtitle: str) -> widgets.HTML:
    """The page heading: a link back to the landing page, the title and one line saying
    what the page shows."""
    import ipywidgets as widgets

    home = (
        ""
        if title == DASHBOARDS["index"].title
        else f"<a class='titan-home' href='{LANDING_HREF}'>&larr; All dashboards</a>"
    )
    return widgets.HTML(
        f"{_STYLE}<div class='titan-title'>{home}<h1>{escape(title)}</h1>"
        f"<p>{escape(subtitle)}</p></div>"
    )


def notice(message: str, command: str | None = None) -> widgets.HTML:
    """A friendly message box, optionally naming the command that fixes the situation."""
    import ipywidgets as widgets

    body = f"<div>{escape(message)}</div>"
    if command:
        body += f"<div>Run: <code>{escape(command)}</code></div>"
    box = widgets.HTML(body)
    box.add_class("titan-notice")
    return box


def main_job_command(store: str) -> str:
    """The main job's full command line for ``store`` (``--store`` unless the default)."""
    from titan_lib.config import store_option

    return MAIN_JOB_COMMAND + store_option(store)


def empty_store_notice(what: str, store: str) -> widgets.HTML:
    """The message for a store without the runs a dashboard needs, with the command that
    fills this store."""
    return notice(
        f"No {what} in the store {store} yet. Fill it with the main job "
        "(ingest, scan, analysis, regimes, backtest, walk-forward, publish), then reload "
        "this page.",
        main_job_command(store),
    )


def control(widget: widgets.Widget, name: str) -> widgets.Widget:
    """Tag a control with ``titan-<name>`` (a stable hook for tests) and return it."""
    widget.add_class(f"titan-{name}")
    return widget


def page(
    title: str, subtitle: str, controls: Sequence[widgets.Widget], body: widgets.Widget
) -> widgets.VBox:
    """A dashboard page: title, the controls in a wrapping row, then ``body``."""
    import ipywidgets as widgets

    row = widgets.HBox(list(controls), layout=widgets.Layout(flex_flow="row wrap", gap="8px 16px"))
    root = widgets.VBox(
        [title_bar(title, subtitle), row, body], layout=widgets.Layout(width="100%")
    )
    root.add_class("titan-dashboard")
    return root


def mark_ready(root: widgets.Widget) -> widgets.Widget:
    """Flag the page as interactive (``titan-ready``): data loaded, controls wired."""
    root.add_class("titan-ready")
    return root


def guarded(build: Callable[[], widgets.Widget], title: str, subtitle: str) -> widgets.Widget:
    """Build a page; a failure becomes a friendly message on the page, never a traceback.

    A :class:`TitanError` shows its message; anything else shows its type and text.
    """
    import ipywidgets as widgets

    try:
        return build()
    except TitanError as exc:
        message = exc.message
    except Exception as exc:  # the page must stay readable whatever went wrong
        message = f"This dashboard could not load: {type(exc).__name__}: {exc}"
    return mark_ready(page(title, subtitle, [], widgets.VBox([notice(message)])))


def guard_callback(output: widgets.Output, action: Callable[[], None]) -> None:
    """Run a control's callback; on failure show a notice in ``output`` instead."""
    from IPython.display import display

    try:
        action()
    except Exception as exc:
        message = exc.message if isinstance(exc, TitanError) else f"{type(exc).__name__}: {exc}"
        output.clear_output(wait=True)
        with output:
            display(notice(message))


def html_table(
    frame: pl.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    max_rows: int = 500,
) -> str:
    """An HTML table (``titan-table``) of ``frame``'s rows.

    Headers are the columns' names in words (``labels`` overrides them), values are
    written as each column reads (:func:`format_value`). Only the first ``max_rows`` rows
    are shown; a note says how many were left out. The table is never in a scrolling box
    of its own, so the page prints and screenshots whole.
    """
    labels = labels or {}
    head = "".join(f"<th>{escape(labels.get(c, column_label(c)))}</th>" for c in frame.columns)
    rows = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(
            f"<td>{escape(format_value(v, c))}</td>"
            for c, v in zip(frame.columns, row, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    more = frame.height - max_rows
    note = f"<div class='titan-muted'>{more} more rows not shown</div>" if more > 0 else ""
    return (
        f"<div class='titan-table-box'><table class='titan-table'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{note}"
    )


def cards(items: Mapping[str, Any]) -> str:
    """A row of statistic cards (``titan-card``): each statistic's name in words over its
    value, written as the statistic reads."""
    body = "".join(
        f"<div class='titan-card'><div class='label'>{escape(column_label(name))}</div>"
        f"<div class='value'>{escape(format_value(value, name))}</div></div>"
        for name, value in items.items()
    )
    return f"<div class='titan-cards'>{body}</div>"
