"""Voilà dashboards for stakeholders: read-only views of the store.

Each dashboard is a thin notebook in ``notebooks/dashboards/`` that calls one builder here
(:mod:`~titan_lib.dashboards.landing`, :mod:`~titan_lib.dashboards.pair_explorer`,
:mod:`~titan_lib.dashboards.backtest_report`, :mod:`~titan_lib.dashboards.live_signals`);
``titan dashboard`` serves them (:mod:`~titan_lib.dashboards.serve`). Dashboards read run
sidecars, published models and the order ledger; they never write.

:func:`dashboard_url` links a run record to its dashboard with the run preselected.
Importing this package is cheap (standard library only).
"""

from titan_lib.dashboards.catalog import (
    DASHBOARDS,
    Dashboard,
    dashboard_for_notebook,
    dashboard_url,
    dashboards_dir,
)

__all__ = [
    "DASHBOARDS",
    "Dashboard",
    "dashboard_for_notebook",
    "dashboard_url",
    "dashboards_dir",
]
