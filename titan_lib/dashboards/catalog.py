"""The dashboards TITAN serves, where their notebooks live, and links to them.

Voilà serves the folder ``notebooks/dashboards/``; each dashboard is one notebook there,
rendered at ``/voila/render/<name>.ipynb``. A run can be preselected through the query
string (``?run=<run id>``), which the dashboard reads from ``QUERY_STRING``. Standard
library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

from titan_lib.exceptions import NotFoundError, ParameterError

DashboardName = Literal["index", "pair_explorer", "backtest_report", "live_signals"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8866
NOTEBOOKS_ENV = "TITAN_DASHBOARDS"
"""Environment variable naming the dashboards folder (overrides the repository default)."""


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: its notebook name, title and what it is for."""

    name: DashboardName
    title: str
    purpose: str

    @property
    def notebook(self) -> str:
        """File name of the notebook in the dashboards folder."""
        return f"{self.name}.ipynb"

    @property
    def path(self) -> str:
        """URL path of the rendered dashboard on the Voilà server."""
        return f"/voila/render/{self.notebook}"


DASHBOARDS: dict[str, Dashboard] = {
    d.name: d
    for d in (
        Dashboard(
            "index",
            "TITAN dashboards",
            "The landing page: what each dashboard shows and links to them.",
        ),
        Dashboard(
            "pair_explorer",
            "Pair explorer",
            "Pick a pair scan and a pair: prices, spread and z-score with entry/exit bands, "
            "static vs Kalman hedge ratio, market regimes and the pair's statistics.",
        ),
        Dashboard(
            "backtest_report",
            "Backtest report",
            "Pick a backtest or walk-forward run: equity and drawdown, metrics, the trade "
            "list, the parameter-sweep heatmap and in-sample vs out-of-sample results.",
        ),
        Dashboard(
            "live_signals",
            "Live signals",
            "Published models and each one's current signal (z-score, action, regime), "
            "with open positions and P&L from the order ledger.",
        ),
    )
}

_NOTEBOOK_DASHBOARD = (
    ("pair_scan", "pair_explorer"),
    ("pair_analysis", "pair_explorer"),
    ("backtest", "backtest_report"),
    ("walk_forward", "backtest_report"),
    ("publish", "live_signals"),
)


def dashboard_for_notebook(notebook: str | None) -> DashboardName:
    """The dashboard that shows runs of ``notebook`` (e.g. ``02_pair_scan`` -> pair explorer).

    Notebooks without a dashboard of their own map to the landing page.
    """
    for fragment, name in _NOTEBOOK_DASHBOARD:
        if notebook and fragment in notebook:
            return DASHBOARDS[name].name
    return "index"


def get_dashboard(name: str) -> Dashboard:
    """The dashboard called ``name`` (with or without ``.ipynb``).

    Raises
    ------
    NotFoundError
        No such dashboard; the message lists the dashboards.
    """
    key = name.removesuffix(".ipynb")
    if key not in DASHBOARDS:
        raise NotFoundError(
            f"no dashboard named {name!r}; dashboards: {', '.join(DASHBOARDS)}",
            {"dashboard": name, "available": list(DASHBOARDS)},
        )
    return DASHBOARDS[key]


def dashboard_url(
    run_id: str | None = None,
    *,
    dashboard: str | None = None,
    notebook: str | None = None,
    pair: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
) -> str:
    """The URL of a dashboard, optionally with a run (and pair) preselected.

    Parameters
    ----------
    run_id
        Run to preselect (``?run=<run_id>``).
    dashboard
        Dashboard name; when ``None`` it is chosen from ``notebook`` (the run's notebook,
        e.g. ``02_pair_scan`` -> ``pair_explorer``), else the landing page.
    notebook
        The run's notebook name, used to choose the dashboard.
    pair
        Pair to preselect in the pair explorer, ``"Y/X"`` (``?pair=Y/X``).
    host, port
        Where ``titan dashboard`` serves (default ``127.0.0.1:8866``).
    token
        The server's token, when it was started with ``--token``.

    Returns
    -------
    str
        E.g. ``http://127.0.0.1:8866/voila/render/pair_explorer.ipynb?run=2026...``.
    """
    if not 0 < port < 65536:
        raise ParameterError(f"port must be in 1..65535, got {port}", {"port": port})
    chosen = get_dashboard(dashboard) if dashboard else DASHBOARDS[dashboard_for_notebook(notebook)]
    query = {
        key: value
        for key, value in (("run", run_id), ("pair", pair), ("token", token))
        if value is not None
    }
    suffix = f"?{urlencode(query)}" if query else ""
    return f"http://{host}:{port}{chosen.path}{suffix}"


def dashboards_dir() -> Path:
    """The folder of dashboard notebooks.

    ``$TITAN_DASHBOARDS`` when set, else ``notebooks/dashboards`` of the source tree
    this package belongs to, else of the working directory.

    Raises
    ------
    NotFoundError
        None of these holds the landing notebook.
    """
    candidates = []
    if os.environ.get(NOTEBOOKS_ENV):
        candidates.append(Path(os.environ[NOTEBOOKS_ENV]))
    candidates.append(Path(__file__).resolve().parents[2] / "notebooks" / "dashboards")
    candidates.append(Path.cwd() / "notebooks" / "dashboards")
    for folder in candidates:
        if (folder / DASHBOARDS["index"].notebook).is_file():
            return folder.resolve()
    raise NotFoundError(
        "dashboard notebooks not found (looked in "
        f"{', '.join(str(c) for c in candidates)}); run from the TITAN repository or set "
        f"{NOTEBOOKS_ENV}",
        {"looked_in": [str(c) for c in candidates]},
    )
