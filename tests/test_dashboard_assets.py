"""The dashboards' plotly.js bundles, chart HTML and preheated pages, without a browser."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import polars as pl
import pytest

from titan_lib.dashboards import plotly_bundle
from titan_lib.dashboards.figures import figure_html
from titan_lib.dashboards.plotly_bundle import (
    BUNDLES,
    PLOTLY_JS_VERSION,
    check_installed,
    install_bundles,
    missing_bundles,
    static_folder,
    verify,
)
from titan_lib.dashboards.preheat import PreheatedPage
from titan_lib.dashboards.request import PageRequest
from titan_lib.dashboards.serve import ServeOptions, voila_command
from titan_lib.exceptions import StoreError, TitanError
from titan_lib.plots import chart_values


def test_bundles_are_the_plotly_js_of_the_pinned_plotly_package() -> None:
    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    head = bundled.read_text(encoding="utf-8", errors="replace")[:400]
    found = re.search(r"plotly\.js v(\d+\.\d+\.\d+)", head)
    assert found is not None and found.group(1) == PLOTLY_JS_VERSION


def test_set_up_installed_every_bundle_in_this_environment() -> None:
    assert missing_bundles() == []
    check_installed()
    for bundle in BUNDLES.values():
        text = (static_folder() / bundle.file_name).read_text(encoding="utf-8")[:300]
        assert f"plotly.js ({bundle.kind} - minified) v{PLOTLY_JS_VERSION}" in text


def _tarball(member: str, body: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_install_checks_the_pinned_hash_and_writes_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _tarball("package/plotly-basic.min.js", b"/* plotly basic */")
    bad = _tarball("package/plotly-basic.min.js", b"/* tampered */")
    served: dict[str, bytes] = {}
    pins = {
        "basic": plotly_bundle.PlotlyBundle("basic", _integrity(good)),
        "cartesian": plotly_bundle.PlotlyBundle("cartesian", _integrity(good)),
    }
    monkeypatch.setattr(plotly_bundle, "BUNDLES", pins)

    class Response(io.BytesIO):
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    def fake_urlopen(url: str, timeout: float) -> Response:
        return Response(served[url])

    monkeypatch.setattr(plotly_bundle.urllib.request, "urlopen", fake_urlopen)
    prefix = str(tmp_path / "env")
    registry = "http://registry.invalid"
    for kind in pins:
        served[pins[kind].tarball_url(registry)] = bad
    with pytest.raises(StoreError, match="does not match its pinned sha512"):
        install_bundles(prefix, registry)
    folder = static_folder(prefix)
    assert sorted(p.name for p in folder.iterdir()) == []  # nothing half-written
    with pytest.raises(TitanError, match=r"basic, cartesian are not installed.*make setup"):
        check_installed(prefix)

    served[pins["basic"].tarball_url(registry)] = good
    served[pins["cartesian"].tarball_url(registry)] = _tarball(
        "package/plotly-cartesian.min.js", b"/* plotly basic */"
    )
    pins["cartesian"] = plotly_bundle.PlotlyBundle(
        "cartesian", _integrity(served[pins["cartesian"].tarball_url(registry)])
    )
    installed = install_bundles(prefix, registry)
    assert [p.name for p in installed] == [b.file_name for b in pins.values()]
    assert installed[0].read_bytes() == b"/* plotly basic */"
    assert install_bundles(prefix, registry) == []  # already there: nothing downloaded
    check_installed(prefix)
    with pytest.raises(StoreError, match="unsupported integrity algorithm"):
        verify(b"x", "sha1-abc", "somewhere")


def test_dashboards_load_the_bundle_instead_of_the_plotly_extension(tmp_path: Path) -> None:
    command = voila_command(ServeOptions(folder=tmp_path, store="/s", refill_delay=7))
    denied = [c.split("=", 1)[1] for c in command if "extension_denylist" in c]
    assert "jupyterlab-plotly" in denied and "anywidget" in denied
    resources = next(c for c in command if c.startswith("--VoilaConfiguration.resources="))
    files = json.loads(resources.split("=", 1)[1])["titan_plotly"]
    assert files == {kind: b.file_name for kind, b in BUNDLES.items()}
    assert "--VoilaKernelManager.fill_delay=7" in command


def test_chart_html_carries_the_figure_and_cannot_end_its_script_early() -> None:
    fig = go.Figure(go.Scatter(x=["2024-01-02", "2024-01-03"], y=[1.0, 2.0], name="</script>"))
    html = figure_html(fig)
    assert html.count("</script>") == 1 and html.endswith("</script>")
    payload = html[html.index("var fig = ") + len("var fig = ") : html.index("; var drawn")]
    figure = json.loads(payload)
    assert figure["data"][0]["name"] == "</script>"
    assert figure["config"] == {"displaylogo": False}
    assert "window.titanPlotly()" in html and "IntersectionObserver" in html
    ids = re.findall(r'id="(titan-chart-[0-9a-f]+)"', html + figure_html(fig))
    assert len(set(ids)) == 2  # every chart gets its own element


def test_chart_values_are_plain_numbers_with_gaps_for_missing() -> None:
    values = chart_values(pl.Series([1.5, None, float("nan"), 3.0]))
    assert values == [1.5, None, None, 3.0]
    assert '"y":[1.5,null,null,3.0]' in go.Figure(go.Scatter(y=values)).to_json()


class _Builds:
    """A stand-in page builder that records the requests it was asked for."""

    def __init__(self) -> None:
        self.requests: list[PageRequest] = []

    def __call__(self, request: PageRequest) -> Any:
        import ipywidgets as widgets

        self.requests.append(request)
        page = widgets.VBox([widgets.HTML(request.run or "newest")])
        page.add_class("titan-dashboard")
        page.add_class("titan-ready")
        return page


def test_a_preheated_page_is_rebuilt_only_for_a_different_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    (store / "runs").mkdir(parents=True)
    monkeypatch.setenv("TITAN_STORE", str(store))
    monkeypatch.delenv("QUERY_STRING", raising=False)
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    build = _Builds()
    dashboard = PreheatedPage(build)
    first = dashboard.page
    assert [r.run for r in build.requests] == [None]

    dashboard.follow_requests()  # not preheated: the page was built for this request
    assert dashboard.thread is None and len(build.requests) == 1

    dashboard.apply(PageRequest(store=str(store)))
    assert dashboard.page is first and len(build.requests) == 1  # same request, same store

    dashboard.apply(PageRequest(run="r42", store=str(store)))
    assert build.requests[-1].run == "r42" and dashboard.page is not first
    assert "titan-ready" not in first._dom_classes  # the old page stops claiming readiness
    assert "titan-ready" in dashboard.page._dom_classes

    (store / "runs" / "new.json").write_text("{}")
    dashboard.apply(PageRequest(run="r42", store=str(store)))
    assert len(build.requests) == 3  # a new run in the store: rebuilt

    live = _Builds()
    fresh = PreheatedPage(live, fresh_on_visit=True)
    fresh.apply(fresh.request)
    assert len(live.requests) == 2  # live data: rebuilt on every visit


def test_a_preheated_kernel_follows_the_visit_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from titan_lib.dashboards import preheat

    monkeypatch.setenv("TITAN_STORE", str(tmp_path))
    monkeypatch.delenv("QUERY_STRING", raising=False)
    arrived = threading.Event()
    held_open_while_built: list[int] = []

    @contextlib.contextmanager
    def visit() -> Iterator[PageRequest]:
        arrived.wait(timeout=30)
        yield PageRequest(run="r7", store=str(tmp_path))
        held_open_while_built.append(len(build.requests))

    monkeypatch.setattr(preheat, "visit", visit)
    build = _Builds()
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    dashboard = PreheatedPage(build)
    preheated = dashboard.page
    assert "titan-ready" not in preheated._dom_classes  # nobody has asked for it yet
    dashboard.follow_requests()  # returns at once: the notebook finishes during preheat
    assert dashboard.thread is not None and dashboard.thread.is_alive()
    assert [r.run for r in build.requests] == [None]
    arrived.set()
    dashboard.thread.join(timeout=30)
    assert [r.run for r in build.requests] == [None, "r7"]
    assert held_open_while_built == [2]  # the visit ends once the page is made
    assert "titan-ready" in dashboard.page._dom_classes
    assert "titan-ready" not in preheated._dom_classes

    same = PreheatedPage(_Builds())  # a visit without parameters: the preheated view
    assert "titan-ready" not in same.page._dom_classes
    same.apply(PageRequest(store=str(tmp_path)))
    assert "titan-ready" in same.page._dom_classes


def test_a_visit_rebuilds_the_page_on_the_kernels_main_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The browser reads the widget table on the kernel's main thread: a page built in
    the request thread at the same time would change the table while it is read."""
    import threading
    import types

    import IPython
    from tornado.ioloop import IOLoop

    from titan_lib.dashboards.preheat import on_kernel_thread

    started = threading.Event()
    holder: dict[str, Any] = {}

    def kernel_main() -> None:
        holder["loop"] = IOLoop(make_current=False)
        holder["thread"] = threading.current_thread()
        holder["loop"].add_callback(started.set)
        holder["loop"].start()

    kernel = threading.Thread(target=kernel_main, daemon=True)
    kernel.start()
    assert started.wait(timeout=10)
    shell = types.SimpleNamespace(kernel=types.SimpleNamespace(io_loop=holder["loop"]))
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    ran_on: list[threading.Thread] = []
    requests: list[PageRequest] = []

    def apply(request: PageRequest) -> None:
        ran_on.append(threading.current_thread())
        requests.append(request)

    visitor = threading.Thread(target=lambda: on_kernel_thread(apply, PageRequest(run="r9")))
    visitor.start()
    visitor.join(timeout=10)
    assert not visitor.is_alive()  # it waited for the page to be built, then returned
    assert ran_on == [holder["thread"]] and requests == [PageRequest(run="r9")]
    holder["loop"].add_callback(holder["loop"].stop)
    kernel.join(timeout=10)

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # outside a kernel
    on_kernel_thread(apply, PageRequest(run="here"))
    assert ran_on[-1] is threading.current_thread()


def test_the_template_loads_only_a_local_bundle_named_by_the_notebook() -> None:
    from titan_lib.dashboards.serve import JUPYTER_DATA, TEMPLATE

    template = (JUPYTER_DATA / "voila" / "templates" / TEMPLATE / "index.html.j2").read_text()
    assert 'nb.metadata.get("titan")' in template and "titan_plotly" in template
    assert "http" not in template
