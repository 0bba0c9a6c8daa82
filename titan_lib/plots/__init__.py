"""TITAN's charts, drawn once for the notebooks, the dashboards and the HTML reports.

Each function takes the tables a run saves (:mod:`titan_lib.runner.result_schemas`) and
returns a styled ``plotly.graph_objects.Figure``. A notebook shows it with ``fig.show()``
(and the run's HTML report keeps it); a dashboard draws it with
:func:`titan_lib.dashboards.figures.show_figure`. Statistics are labelled from
:data:`~titan_lib.plots.labels.METRIC_LABELS`.

- :mod:`~titan_lib.plots.backtest`: equity and drawdown, the sweep heatmap, in- vs
  out-of-sample per walk-forward window, a z-score with its bands;
- :mod:`~titan_lib.plots.pairs`: one pair's prices, spread, z-score and hedge ratios;
- :mod:`~titan_lib.plots.style`: the common look.
"""

from titan_lib.plots.backtest import (
    equity_figure,
    heatmap_figure,
    in_out_figure,
    sweep_figure,
    sweep_grid,
    with_drawdown,
    zscore_figure,
)
from titan_lib.plots.labels import METRIC_LABELS, metric_label
from titan_lib.plots.pairs import pair_figure
from titan_lib.plots.style import chart_values, style_figure

__all__ = [
    "METRIC_LABELS",
    "chart_values",
    "equity_figure",
    "heatmap_figure",
    "in_out_figure",
    "metric_label",
    "pair_figure",
    "style_figure",
    "sweep_figure",
    "sweep_grid",
    "with_drawdown",
    "zscore_figure",
]
