"""The shared charts: what each figure draws from the tables a run saves, and the labels."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from titan_lib.plots import (
    METRIC_LABELS,
    equity_figure,
    in_out_figure,
    metric_label,
    pair_figure,
    sweep_figure,
    zscore_figure,
)
from titan_lib.plots.labels import COST_PARTS

DAYS = [date(2021, 3, 1) + timedelta(days=i) for i in range(5)]


def test_metric_labels_follow_the_engines_statistics() -> None:
    from titan_lib.backtest.stats import STAT_NAMES

    assert set(COST_PARTS) <= set(STAT_NAMES)
    assert tuple(METRIC_LABELS) == tuple(n for n in STAT_NAMES if n not in COST_PARTS)
    assert metric_label("sharpe") == "Sharpe" and metric_label("is_sharpe") == "is_sharpe"


def test_equity_figure_draws_the_drawdown_below_the_running_peak() -> None:
    equity = pl.DataFrame({"date": DAYS, "equity": [100.0, 110, 99, 121, float("nan")]})
    fig = equity_figure(equity, "equity")
    top, bottom = fig.data
    assert list(top.x) == [d.isoformat() for d in DAYS]
    assert list(top.y) == [100.0, 110, 99, 121, None]
    assert list(bottom.y[:4]) == pytest.approx([0.0, 0.0, -10.0, 0.0])
    assert fig.layout.title.text == "equity" and fig.layout.height == 460


def test_zscore_figure_draws_bands_stop_and_entry_signals() -> None:
    history = pl.DataFrame({"date": DAYS, "z": [0.0, 1.2, 2.3, 0.4, -2.5]})
    plain = zscore_figure(history, "z", 2.0, 0.5)
    assert sorted(s.y0 for s in plain.layout.shapes) == [-2.0, -0.5, 0.5, 2.0]
    assert len(plain.data) == 1
    signals = history.filter(pl.col("z").abs() > 2.0)
    fig = zscore_figure(history, "z", 2.0, 0.5, stop=4.0, signals=signals)
    assert sorted(s.y0 for s in fig.layout.shapes) == [-4.0, -2.0, -0.5, 0.5, 2.0, 4.0]
    markers = fig.data[1]
    assert markers.mode == "markers" and list(markers.y) == [2.3, -2.5]


def test_sweep_and_window_figures_label_their_statistic() -> None:
    sweep = pl.DataFrame(
        {"entry": [1.5, 2.0, 1.5, 2.0], "exit": [0.0, 0.0, 0.5, 0.5], "max_drawdown": 0.1}
    )
    heat = sweep_figure(sweep, "entry", "exit", "max_drawdown")
    assert heat.data[0].colorbar.title.text == "max drawdown"
    assert heat.layout.title.text == "sweep: max drawdown by entry and exit"
    windows = pl.DataFrame(
        {"test_start": DAYS[:2], "is_sharpe": [1.0, 2.0], "oos_sharpe": [0.5, None]}
    )
    bars = in_out_figure(windows, "sharpe")
    assert [t.name for t in bars.data] == ["in-sample", "out-of-sample"]
    assert list(bars.data[1].y) == [0.5, None]
    assert "Sharpe per window" in bars.layout.title.text


def test_pair_figure_shades_only_the_given_regimes() -> None:
    series = pl.DataFrame(
        {
            "date": DAYS,
            "y": [10.0, 11, 12, 11, 10],
            "x": [20.0, 21, 22, 21, 20],
            "spread": [0.1, 0.2, 0.0, -0.1, 0.0],
            "zscore": [None, 1.0, 0.0, -1.0, 0.0],
            "beta_static": 1.0,
            "beta_kalman": [None, 0.9, 1.0, 1.1, 1.0],
        }
    )
    assert pair_figure(series, "KO", "PEP", 2.0, 0.5).layout.shapes == ()
    shaded = pair_figure(series, "KO", "PEP", 2.0, 0.5, [(DAYS[1], DAYS[2], 1)])
    (shape,) = shaded.layout.shapes
    assert (shape.x0, shape.x1) == (str(DAYS[1]), str(DAYS[2]))
    assert list(shaded.data[0].y) == pytest.approx([100.0, 110.0, 120.0, 110.0, 100.0])
