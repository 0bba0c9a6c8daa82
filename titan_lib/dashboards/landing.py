"""The landing page: what each dashboard is for, links to them, and what the store holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from titan_lib.dashboards.catalog import DASHBOARDS
from titan_lib.dashboards.layout import (
    empty_store_notice,
    escape,
    guarded,
    mark_ready,
    page,
)
from titan_lib.dashboards.request import PageRequest
from titan_lib.dashboards.runs import count_runs

if TYPE_CHECKING:
    import ipywidgets as widgets

TITLE = DASHBOARDS["index"].title
SUBTITLE = "Pairs-trading research and live signals, for reading: pick a dashboard below."
KIND_LABELS = {
    "scan": "pair scans",
    "analysis": "pair analyses",
    "regimes": "regime fits",
    "backtest": "backtests",
    "walk_forward": "walk-forward runs",
    "publish": "publish runs",
}


def prepare() -> None:
    """Load what the page needs (run by preheated kernels before a visitor arrives)."""
    import ipywidgets  # noqa: F401

    import titan_lib.core.model_registry
    import titan_lib.stores.objects  # noqa: F401


def build_landing(request: PageRequest) -> widgets.Widget:
    """The landing page widget tree (a friendly message when the store is empty)."""
    return guarded(lambda: _build(request), TITLE, SUBTITLE)


def _build(request: PageRequest) -> widgets.Widget:
    import ipywidgets as widgets

    from titan_lib.core.model_registry import list_model_ids
    from titan_lib.stores.objects import open_store

    store = open_store(request.store)
    counts = count_runs(store)
    models = len(list_model_ids(store))
    links = "".join(
        f"<li><a class='titan-link' href='{d.notebook}'>{escape(d.title)}</a>"
        f" &mdash; {escape(d.purpose)}</li>"
        for d in DASHBOARDS.values()
        if d.name != "index"
    )
    held = ", ".join(f"{n} {KIND_LABELS[k]}" for k, n in counts.items() if n)
    summary = (
        f"<p class='titan-muted'>Store <code>{escape(store.uri)}</code>: "
        f"{escape(held or 'no runs')}; {models} published model{'s' * (models != 1)}.</p>"
    )
    parts: list[widgets.Widget] = [widgets.HTML(f"<ul style='line-height:1.8'>{links}</ul>")]
    if not any(counts.values()) and models == 0:
        parts.append(empty_store_notice("research runs or published models", store.uri))
    parts.append(widgets.HTML(summary))
    return mark_ready(page(TITLE, SUBTITLE, [], widgets.VBox(parts)))
