"""Dashboards without a browser: links, serving command, request parsing, readers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import polars as pl
import pytest

from titan_lib.dashboards import DASHBOARDS, dashboard_for_notebook, dashboard_url, dashboards_dir
from titan_lib.dashboards.catalog import get_dashboard
from titan_lib.dashboards.layout import format_value, html_table
from titan_lib.dashboards.pair_data import regime_spans
from titan_lib.dashboards.request import parse_query
from titan_lib.dashboards.serve import (
    JUPYTER_DATA,
    TEAM_POOL,
    TEMPLATE,
    VOILA_APP,
    ServeOptions,
    voila_command,
    voila_environment,
)
from titan_lib.exceptions import NotFoundError, ParameterError
from titan_lib.plots import sweep_grid, with_drawdown

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


def test_a_preheated_kernel_holds_its_visit_open_until_the_page_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The visit arrives as one JSON message on ``voila/query/<kernel id>`` (a real
    websocket server here); the kernel closes the socket only when its ``with`` block
    ends, and never imports the Jupyter server stack."""
    import threading

    from websockets.exceptions import ConnectionClosed
    from websockets.sync.server import ServerConnection, serve

    seen: dict[str, str] = {}

    def handler(connection: ServerConnection) -> None:
        seen["path"] = connection.request.path if connection.request else ""
        connection.send(json.dumps({"QUERY_STRING": "model=5af3&pair=KO/PEP"}))
        try:
            connection.recv(timeout=30)
        except ConnectionClosed:
            seen["closed_after"] = Path(marker).read_text() if Path(marker).exists() else ""

    with tempfile.TemporaryDirectory() as folder, serve(handler, "127.0.0.1", 0) as server:
        marker = str(Path(folder) / "page")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        for name, value in {
            "VOILA_PREHEAT": "True",
            "VOILA_APP_PORT": str(server.socket.getsockname()[1]),
            "VOILA_KERNEL_ID": "k-1",
            "VOILA_SERVER_URL": "/base/",
            "QUERY_STRING": "",
            "TITAN_STORE": "/s",
        }.items():
            monkeypatch.setenv(name, value)
        code = (
            "import sys, time, pathlib\n"
            "from titan_lib.dashboards.request import visit\n"
            "with visit() as r:\n"
            "    time.sleep(0.3)\n"
            f"    pathlib.Path({marker!r}).write_text('made')\n"
            "print(r.model, r.pair, r.store, 'voila' in sys.modules)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        ).stdout.split()
        server.shutdown()
    assert out == ["5af3", "KO/PEP", "/s", "False"]
    assert seen == {"path": "/base/voila/query/k-1", "closed_after": "made"}


def test_a_kernel_whose_server_is_gone_keeps_its_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import free_port

    from titan_lib.dashboards.request import visit

    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setenv("VOILA_APP_PORT", str(free_port()))
    monkeypatch.setenv("QUERY_STRING", "run=abc")
    with visit() as request:
        assert request.run == "abc"


def test_voila_runs_locally_with_stripped_sources_preheat_and_culling(tmp_path: Path) -> None:
    options = ServeOptions(
        folder=tmp_path, store="/abs/store", dashboard="pair_explorer", port=9100, token="s3cret"
    )
    command = voila_command(options)
    assert command[:4] == [sys.executable, "-m", VOILA_APP, str(tmp_path)]
    for flag in (
        "--Voila.ip=127.0.0.1",
        "--port=9100",
        f"--template={TEMPLATE}",
        "--strip_sources=True",
        "--show_tracebacks=False",
        "--preheat_kernel=True",
        f"--pool_size={TEAM_POOL}",
        "--MappingKernelManager.cull_idle_timeout=300",
        "--MappingKernelManager.cull_interval=30",
        "--token=s3cret",
        "--Voila.identity_provider_class=titan_lib.dashboards.login.TitanIdentityProvider",
    ):
        assert flag in command, flag
    assert TEAM_POOL >= 3  # three visitors within seconds each get a preheated page
    public = voila_command(ServeOptions(folder=tmp_path, store="/s", host="0.0.0.0"))
    assert "--Voila.ip=0.0.0.0" in public
    denied = [c.split("=", 1)[1] for c in command if "preheat_denylist" in c]
    assert sorted(denied) == ["backtest_report.ipynb", "index.ipynb", "live_signals.ipynb"]
    every = voila_command(ServeOptions(folder=tmp_path, store="/s"))
    assert not any("preheat_denylist" in c for c in every)
    assert not any(c.startswith("--token") for c in every)

    env = voila_environment(options, base={"JUPYTER_PATH": "/other", "PATH": "/bin"})
    assert env["TITAN_STORE"] == "/abs/store"
    assert env["JUPYTER_PATH"].split(":") == [str(JUPYTER_DATA), "/other"]
    for page in (JUPYTER_DATA / "voila" / "templates" / TEMPLATE).iterdir():  # nothing remote
        assert "http:" not in page.read_text() and "https:" not in page.read_text(), page.name


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
    assert "<td>$1,234,567.89</td>" in html and "<td>-</td>" in html
    assert "<th>P&amp;L</th>" in html  # column names in words
    assert "max-height" not in html  # no scrolling box: the page prints whole
    assert format_value(0.012345) == "0.0123"
    assert format_value(None) == "-"


@pytest.mark.parametrize(
    ("column", "value", "written"),
    [
        ("total_return", 0.123456, "12.35%"),
        ("max_drawdown", -0.0871, "-8.71%"),
        ("oos_total_return", 0.5, "50.00%"),
        ("final_equity", 1234567.891, "$1,234,567.89"),
        ("pnl", -2500.5, "-$2,500.50"),
        ("sharpe", 1.23456, "1.23"),
        ("n_trades", 1234, "1,234"),
        ("avg_holding_days", 12.345, "12.3"),
        ("pvalue", 3.2e-9, "<0.0001"),
        ("qvalue", 0.04567, "0.0457"),
        ("hedge_ratio", 1e-7, "0.0000"),
        ("last_close", 123456.789, "123,456.79"),
        ("anything_else", 2.5e10, "25,000,000,000.0000"),
        ("pair", "KO/PEP", "KO/PEP"),
        ("sharpe", math.inf, "-"),
    ],
)
def test_numbers_are_written_for_people(column: str, value: object, written: str) -> None:
    from titan_lib.plots.formatting import format_column_value

    text = format_column_value(column, value)
    assert text == written
    assert "e+" not in text and "e-" not in text  # never scientific notation


def test_column_names_are_words() -> None:
    from titan_lib.plots.formatting import column_label
    from titan_lib.plots.labels import METRIC_LABELS

    assert column_label("max_drawdown") == METRIC_LABELS["max_drawdown"]
    assert column_label("oos_sharpe") == "out-of-sample Sharpe"
    assert column_label("is_total_return") == "in-sample total return"
    assert column_label("exit_reason") == "exit reason"
    assert column_label("pvalue") == "p-value" and column_label("pnl") == "P&L"


def test_live_signals_say_plainly_when_prices_are_stale() -> None:
    from titan_lib.dashboards.live_data import LiveSnapshot
    from titan_lib.dashboards.live_signals import freshness_html

    def snapshot(as_of: str, ledger: str) -> LiveSnapshot:
        return LiveSnapshot(
            signals=pl.DataFrame({"model": ["abc"], "as_of": [as_of]}),
            positions=pl.DataFrame(),
            pnl=pl.DataFrame(),
            models={},
            prices_updated=None,
            ledger=ledger,
            read_at="2026-11-30T08:00:00.123+00:00",
        )

    today = date(2026, 11, 30)
    stale = freshness_html(snapshot("2022-12-30", "/srv/titan/ledger.sqlite"), today)
    assert "stale" in stale and "2022-12-30" in stale and "1,431 days ago" in stale
    assert "/srv/titan" not in stale  # never a server path
    fresh = freshness_html(snapshot("2026-11-27", "no ledger at /srv/x.sqlite yet"), today)
    assert "stale" not in fresh and "no orders placed yet" in fresh and "/srv" not in fresh


def test_a_live_signals_kernel_draws_its_page_with_the_serving_evaluator_only(
    tmp_path: Path,
) -> None:
    """The page (table and z-score chart) is drawn without numba, scipy or the research
    layer: a kernel preheated for it loads in a fraction of the time. The chart's z-scores
    are the serving evaluator's replay of the model over the serving tails."""
    from fixtures.lambda_world import world_store

    store, ids = world_store(tmp_path)
    code = (
        "import json, sys\n"
        "from titan_lib.dashboards.live_signals import build_live_signals, prepare\n"
        "from titan_lib.dashboards.live_data import zscore_history\n"
        "from titan_lib.dashboards.request import PageRequest\n"
        "from titan_lib.core import get_model\n"
        "from titan_lib.stores import open_store\n"
        f"store = {str(store)!r}\n"
        "prepare()\n"
        "page = build_live_signals(PageRequest(store=store))\n"
        f"model = get_model({ids[0]!r}, store)\n"
        "h = zscore_history(open_store(store), model)\n"
        "heavy = [m for m in ('numba', 'scipy', 'statsmodels', 'pandas', 'vectorbt',\n"
        "         'titan_lib.signals', 'titan_lib.regimes') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'ready': 'titan-ready' in page._dom_classes,\n"
        "                  'rows': h.height, 'defined': int(h['z'].is_not_nan().sum())}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["ready"]
    assert result["rows"] > 50 and result["defined"] > 0


def test_pair_chart_names_units_and_puts_regimes_in_the_legend() -> None:
    from titan_lib.plots.pairs import AXIS_TITLES, REGIME_NAMES, pair_figure

    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(5)]
    series = pl.DataFrame(
        {
            "date": days,
            "y": [10.0, 11, 12, 11, 10],
            "x": [20.0, 21, 22, 21, 20],
            "spread": [0.1, 0.2, -0.1, 0.0, 0.1],
            "zscore": [None, 1.0, -1.0, 0.5, 0.2],
            "beta_static": [0.5] * 5,
            "beta_kalman": [None, 0.4, 0.5, 0.6, 0.5],
        }
    )
    fig = pair_figure(series, "KO", "PEP", 2.0, 0.5, [(days[1], days[2], 1), (days[3], days[4], 2)])
    titles = [fig.layout[f"yaxis{'' if i == 1 else i}"].title.text for i in range(1, 5)]
    assert titles == list(AXIS_TITLES)
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert REGIME_NAMES[1] in legend and REGIME_NAMES[2] in legend
    calm = pair_figure(series, "KO", "PEP", 2.0, 0.5)
    assert not any(t.name in REGIME_NAMES for t in calm.data)


def test_walk_forward_windows_without_trades_are_explained() -> None:
    from titan_lib.dashboards.backtest_report import idle_windows_note

    windows = pl.DataFrame({"test_start": ["2020-01-01", "2020-07-01"], "oos_n_trades": [3, 0]})
    assert "1 of 2 test windows had no trades" in idle_windows_note(windows)
    assert idle_windows_note(windows.with_columns(oos_n_trades=pl.lit(2))) == ""
    assert idle_windows_note(None) == ""


def test_sweep_runs_are_labelled_with_their_parameters_and_the_pipeline_run_preselected() -> None:
    import dataclasses

    from titan_lib.dashboards.runs import RunChoice, preselect, run_label, swept_parameters
    from titan_lib.runner.record import RunRecord

    base = RunRecord(
        run_id="20261130T080000Z-aaaaaa",
        notebook="05_backtest",
        status="succeeded",
        started_at="2026-11-30T08:00:00Z",
        ended_at="2026-11-30T08:01:00Z",
        duration_s=60.0,
        parameters={"entry_z": 2.0, "exit_z": 0.5, "start": "2020-01-01"},
        code_version="x",
        packages={},
        host="h",
        python="3.11",
        store="s",
        parent_id="sweep-123456",
    )
    other = dataclasses.replace(
        base, run_id="r-bbbbbb", parameters={**base.parameters, "entry_z": 1.5}
    )
    assert swept_parameters([base, other]) == ("entry_z",)
    assert run_label(other, ("entry_z",)).endswith(
        "05_backtest · sweep 123456: entry_z=1.5 · bbbbbb"
    )
    step = dataclasses.replace(base, run_id="r-cccccc", step="backtest", parent_id="pipe")
    assert "pipeline step backtest" in run_label(step)
    choices = [
        RunChoice("r-bbbbbb", "backtest", "05_backtest", "sweep"),
        RunChoice("r-dddddd", "walk_forward", "06_walk_forward", "wf", pipeline=True),
        RunChoice("r-cccccc", "backtest", "05_backtest", "step", pipeline=True),
    ]
    assert preselect(choices, None, kind="backtest").run_id == "r-cccccc"  # type: ignore[union-attr]
    assert preselect(choices, None).run_id == "r-dddddd"  # type: ignore[union-attr]
    assert preselect(choices, "r-bbb").run_id == "r-bbbbbb"  # type: ignore[union-attr]


def test_walk_forward_degradation_is_labelled_in_words() -> None:
    import types

    from titan_lib.dashboards.backtest_report import _degradation

    view = types.SimpleNamespace(
        degradation={
            "objective": "sharpe",
            "in_sample": 1.23456,
            "out_of_sample": 0.5,
            "is_minus_oos": 0.73456,
            "oos_over_is": 0.405,
            "windows": 7,
        }
    )
    cards = _degradation(view)  # type: ignore[arg-type]
    assert cards == {
        "in-sample Sharpe": "1.23",
        "out-of-sample Sharpe": "0.50",
        "in-sample minus out-of-sample Sharpe": "0.73",
        "out-of-sample / in-sample Sharpe": "0.41",
        "windows that traded": "7",
    }
