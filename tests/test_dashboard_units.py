"""Dashboards without a browser: links, serving command, request parsing, readers."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import polars as pl
import pytest

from titan_lib.dashboards import DASHBOARDS, dashboard_for_notebook, dashboard_url, dashboards_dir
from titan_lib.dashboards.backtest_data import sweep_grid, with_drawdown
from titan_lib.dashboards.catalog import get_dashboard
from titan_lib.dashboards.layout import format_value, html_table
from titan_lib.dashboards.pair_data import regime_spans
from titan_lib.dashboards.request import parse_query
from titan_lib.dashboards.serve import (
    JUPYTER_DATA,
    TEMPLATE,
    ServeOptions,
    voila_command,
    voila_environment,
)
from titan_lib.exceptions import NotFoundError, ParameterError

REPO = Path(__file__).resolve().parents[1]


def test_every_dashboard_has_a_notebook_that_only_calls_the_library() -> None:
    import nbformat

    folder = dashboards_dir()
    assert folder == REPO / "notebooks" / "dashboards"
    for dashboard in DASHBOARDS.values():
        nb = nbformat.read(folder / dashboard.notebook, as_version=4)
        assert nb.metadata.kernelspec.name == "titan"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.get("outputs") for c in code), f"{dashboard.notebook} has outputs"
        source = "\n".join(c.source for c in code)
        assert "follow_requests()" in source and "titan_lib.dashboards" in source
        assert nb.metadata.get("titan", {}).get("plotly") in (
            None if dashboard.name == "index" else "basic",
            None if dashboard.name == "index" else "cartesian",
        )
        assert sum(len(c.source.splitlines()) for c in code) <= 8


def test_dashboard_url_preselects_the_run_on_the_dashboard_of_its_notebook() -> None:
    url = dashboard_url("20261125T212300123Z-1a2b3c", notebook="02_pair_scan", port=9001)
    parsed = urlparse(url)
    assert (parsed.hostname, parsed.port) == ("127.0.0.1", 9001)
    assert parsed.path == "/voila/render/pair_explorer.ipynb"
    assert parse_qs(parsed.query) == {"run": ["20261125T212300123Z-1a2b3c"]}
    assert "/backtest_report.ipynb?" in dashboard_url("r1", notebook="06_walk_forward")
    assert "/live_signals.ipynb" in dashboard_url(notebook="07_publish")
    assert dashboard_url().endswith("/voila/render/index.ipynb")
    with_pair = urlparse(dashboard_url("r1", dashboard="pair_explorer", pair="KO/PEP", token="t"))
    assert parse_qs(with_pair.query) == {"run": ["r1"], "pair": ["KO/PEP"], "token": ["t"]}
    assert dashboard_for_notebook("01_ingest") == "index"
    with pytest.raises(NotFoundError, match=r"no dashboard named .charts.*pair_explorer"):
        dashboard_url("r1", dashboard="charts")
    with pytest.raises(ParameterError, match="port"):
        dashboard_url(port=0)


def test_the_query_string_is_read_into_a_request() -> None:
    request = parse_query("run=abc&pair=KO%2FPEP&model=5af3&pair=XOM/CVX", store="/s")
    assert (request.run, request.pair, request.model, request.store) == (
        "abc",
        "KO/PEP",
        "5af3",
        "/s",
    )
    assert parse_query("").run is None
    assert parse_query("?run=").run is None


def test_voila_runs_locally_with_stripped_sources_preheat_and_culling(tmp_path: Path) -> None:
    options = ServeOptions(
        folder=tmp_path, store="/abs/store", dashboard="pair_explorer", port=9100, token="s3cret"
    )
    command = voila_command(options)
    assert command[:4] == [sys.executable, "-m", "voila", str(tmp_path)]
    for flag in (
        "--Voila.ip=127.0.0.1",
        "--port=9100",
        f"--template={TEMPLATE}",
        "--strip_sources=True",
        "--show_tracebacks=False",
        "--preheat_kernel=True",
        "--pool_size=1",
        "--MappingKernelManager.cull_idle_timeout=300",
        "--MappingKernelManager.cull_interval=30",
        "--token=s3cret",
    ):
        assert flag in command, flag
    denied = [c.split("=", 1)[1] for c in command if "preheat_denylist" in c]
    assert sorted(denied) == ["backtest_report.ipynb", "index.ipynb", "live_signals.ipynb"]
    every = voila_command(ServeOptions(folder=tmp_path, store="/s"))
    assert not any("preheat_denylist" in c for c in every)
    assert not any(c.startswith("--token") for c in every)

    env = voila_environment(options, base={"JUPYTER_PATH": "/other", "PATH": "/bin"})
    assert env["TITAN_STORE"] == "/abs/store"
    assert env["JUPYTER_PATH"].split(":") == [str(JUPYTER_DATA), "/other"]
    template = JUPYTER_DATA / "voila" / "templates" / TEMPLATE / "index.html.j2"
    assert "http" not in template.read_text(), "the page template must not load remote files"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"port": 70000}, "--port"),
        ({"token": "  "}, "--token"),
        ({"pool_size": -1}, "pool size"),
        ({"cull_interval": 0}, "cull"),
        ({"dashboard": "nope"}, "no dashboard named 'nope'"),
    ],
)
def test_bad_serve_options_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises((ParameterError, NotFoundError), match=message):
        ServeOptions(folder=tmp_path, store="/s", **change)


def test_cli_names_an_unknown_dashboard_without_a_traceback(tmp_path: Path) -> None:
    titan = Path(sys.executable).parent / "titan"
    done = subprocess.run(
        [str(titan), "dashboard", "charts", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "error: no dashboard named 'charts'" in done.stderr
    assert "Traceback" not in done.stderr
    assert get_dashboard("live_signals.ipynb").name == "live_signals"


def test_regime_spans_cover_each_stressed_stretch_once() -> None:
    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(10)]
    labels = [0, 1, 1, 0, 0, 2, 2, 2, 0, 1]
    frame = pl.DataFrame(
        {"date": days, "regime": labels}, schema={"date": pl.Date, "regime": pl.Int64}
    )
    spans = regime_spans(frame, days[0], days[-1])
    covered = {d for a, b, _ in spans for d in days if a <= d <= b}
    assert covered == {d for d, r in zip(days, labels, strict=True) if r > 0}
    assert [r for _, _, r in spans] == [1, 2, 1]
    assert regime_spans(frame, days[2], days[4])[0][0] == days[2]


def test_sweep_heatmap_holds_the_best_value_per_cell() -> None:
    grid = pl.DataFrame(
        {
            "entry": [1.5, 1.5, 2.0, 2.0, 1.5, 2.0],
            "exit": [0.0, 0.5, 0.0, 0.5, 0.0, 0.5],
            "window": [20, 20, 20, 20, 60, 60],
            "sharpe": [0.1, 0.4, -0.2, 0.3, 0.7, 0.2],
            "max_drawdown": [0.2, 0.1, 0.3, 0.25, 0.15, 0.05],
        }
    )
    xs, ys, z = sweep_grid(grid, "entry", "exit", "sharpe")
    for i, exit_value in enumerate(ys):
        for j, entry in enumerate(xs):
            cell = grid.filter((pl.col("entry") == entry) & (pl.col("exit") == exit_value))
            assert z[i][j] == cell["sharpe"].max()
    _, _, dd = sweep_grid(grid, "entry", "exit", "max_drawdown")
    assert (
        dd[1][1] == grid.filter(pl.col("entry") == 2.0, pl.col("exit") == 0.5)["max_drawdown"].min()
    )


def test_drawdown_is_the_fall_below_the_running_peak() -> None:
    equity = pl.DataFrame(
        {"date": [date(2021, 1, d) for d in range(1, 6)], "equity": [100.0, 110, 99, 121, 120]}
    )
    dd = with_drawdown(equity)["drawdown"].to_list()
    peaks = [100.0, 110, 110, 121, 121]
    values = equity["equity"].to_list()
    assert dd == pytest.approx([1 - v / p for v, p in zip(values, peaks, strict=True)])


def test_tables_escape_text_and_format_numbers() -> None:
    frame = pl.DataFrame({"pair": ["<b>KO</b>/PEP"], "pnl": [1234567.891], "q": [math.nan]})
    html = html_table(frame)
    assert "&lt;b&gt;KO&lt;/b&gt;/PEP" in html and "<b>KO" not in html
    assert "1,234,568" in html and "<td>-</td>" in html
    assert format_value(0.012345) == "0.01235"
    assert format_value(None) == "-"
