"""The read API over real HTTP (the local server of `titan lambdas local`): pagination,
stored prices, scans and pairs, backtest run records, entity tags, scopes and errors.

The store holds the bundled sample's prices (real ingest), two real scans (the second
written in several pieces) and run records finalised by the runner's own publisher.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import requests
from fixtures.cli_runs import run_titan
from fixtures.lambda_world import lambda_env, serve, token, world_store

REPO = Path(__file__).resolve().parents[1]
SCAN_SYMBOLS = ["KO", "PEP", "XOM", "CVX", "AAPL", "MSFT", "HD", "BAC", "JPM", "AMD", "SP500"]
READ = "research:read"
STATS = ("sharpe", "total_return", "max_drawdown", "n_trades")


def _run(store: Any, notebook: str, n: int, status: str = "succeeded") -> str:
    """Finalise one run record (with a results sidecar) through the runner's publisher."""
    from titan_lib.runner.record import RunError, RunRecord, new_run_id, publish_record

    run_id = new_run_id()
    stats = {name: round(0.1 * n + i, 6) for i, name in enumerate(STATS)}
    values: dict[str, Any] = {"stats": stats, "sample": "in-sample"}
    if notebook == "06_walk_forward":
        values["sample"] = "out-of-sample"
        values["degradation"] = {"objective": "sharpe", "in_sample": 1.5, "out_of_sample": 0.4 + n}
    results = {
        "schema_version": 1,
        "run_id": run_id,
        "notebook": notebook,
        "values": values,
        "summary": {"sharpe": stats["sharpe"]},
        "tables": {},
    }
    failed = status == "failed"
    record = RunRecord(
        run_id=run_id,
        notebook=notebook,
        status="failed" if failed else "succeeded",
        started_at="2026-11-30T07:00:00+00:00",
        ended_at="2026-11-30T07:00:02+00:00",
        duration_s=2.0,
        parameters={"entry": 2.0, "n": n},
        code_version="titan-lib==test",
        packages={},
        host="test",
        python="3.11",
        store=store.uri,
        error=RunError(message="cell 3 failed: ValueError") if failed else None,
        files=[] if failed else ["results.json"],
    )
    publish_record(store, record, {} if failed else {"results.json": json.dumps(results).encode()})
    return run_id


def _ohlcv_bars() -> pl.DataFrame:
    """Seeded daily bars with open, high, low and volume (one open missing)."""
    import random

    rng = random.Random(16)
    dates = pl.date_range(pl.date(2022, 1, 3), pl.date(2022, 6, 30), "1d", eager=True)
    dates = dates.filter(dates.dt.weekday() <= 5)
    close, rows = 50.0, []
    for i, day in enumerate(dates):
        open_ = close * (1 + rng.gauss(0, 0.005))
        close = open_ * (1 + rng.gauss(0, 0.01))
        high, low = max(open_, close) * 1.004, min(open_, close) * 0.996
        rows.append((day, "OHLC", close, None if i == 5 else open_, high, low, 1000.0 + i))
    columns = ["date", "symbol", "close", "open", "high", "low", "volume"]
    return pl.DataFrame(rows, schema=columns, orient="row")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(base URL, store path, scan ids oldest first, run ids by notebook, runtime)."""
    import titan_lib.data.serving_documents as documents
    from titan_lib.data import ingest_frame, sample_prices
    from titan_lib.pairs.scan import scan
    from titan_lib.stores import open_store

    tmp = tmp_path_factory.mktemp("read-api")
    store, _ = world_store(tmp)
    sample = sample_prices().filter(pl.col("symbol").is_in(SCAN_SYMBOLS))
    ingest_frame(sample, store=str(store))
    ingest_frame(_ohlcv_bars(), store=str(store))
    older = scan(SCAN_SYMBOLS[:4], "2019-01-01", store=str(store), progress=False)
    mp = pytest.MonkeyPatch()
    mp.setattr(documents, "PAIRS_PER_PIECE", 16)  # the latest scan is stored in 4 pieces
    latest = scan(SCAN_SYMBOLS, "2019-01-01", store=str(store), progress=False, min_obs=252)
    mp.undo()
    opened = open_store(str(store))
    runs: dict[str, list[str]] = {"05_backtest": [], "06_walk_forward": [], "02_pair_scan": []}
    for n in range(7):
        runs["05_backtest"].append(_run(opened, "05_backtest", n))
    for n in range(4):
        runs["06_walk_forward"].append(_run(opened, "06_walk_forward", n))
    runs["02_pair_scan"].append(_run(opened, "02_pair_scan", 0))
    runs["05_backtest"].append(_run(opened, "05_backtest", 99, status="failed"))
    with serve(lambda_env(str(store), str(tmp / "ledger.sqlite"))) as url:
        from chalicelib.runtime import runtime

        yield url, store, [older.scan_id, latest.scan_id], runs, runtime


def _get(
    url: str, scopes: str = READ, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, headers={**(headers or {})})
    if scopes is not None:
        request.add_header("Authorization", f"Bearer {token(scopes, sub='reader')}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, dict(exc.headers), json.loads(raw) if raw else None


def _walk(url: str, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list route, page by page; returns (items, pages)."""
    items: list[dict[str, Any]] = []
    query = {k: str(v) for k, v in params.items()}
    pages = 0
    while True:
        status, _, body = _get(f"{url}{path}?{urllib.parse.urlencode(query)}")
        assert status == 200, body
        pages += 1
        items.extend(body["items"])
        if "next_cursor" not in body:
            return items, pages
        assert body["items"], "a page before the last one is never empty here"
        query["cursor"] = body["next_cursor"]


def _error(status: int, body: Any, expected: int) -> dict[str, Any]:
    assert status == expected, (status, body)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_symbols_list_every_stored_symbol_once(world) -> None:
    from titan_lib.data import list_symbols, load_prices

    url, store, *_ = world
    items, pages = _walk(url, "/symbols", limit=4)
    stored = list_symbols(str(store))
    assert pages == -(-len(items) // 4) > 1
    assert [i["symbol"] for i in items] == sorted(stored.get_column("symbol").to_list())
    ko = next(i for i in items if i["symbol"] == "KO")
    prices = load_prices(["KO"], store=str(store)).sort("date")
    assert ko["first_date"] == str(prices["date"][0]) and ko["last_date"] == str(prices["date"][-1])
    assert ko["last_close"] == prices["close"][-1]


def test_prices_equal_the_stored_prices(world) -> None:
    from titan_lib.data import load_prices

    url, store, *_ = world
    items, pages = _walk(url, "/symbols/KO/prices", limit=1000)
    stored = load_prices(["KO"], store=str(store)).sort("date")
    assert pages == -(-stored.height // 1000) > 1
    assert [i["date"] for i in items] == stored["date"].cast(pl.String).to_list()
    assert [i["close"] for i in items] == stored["close"].to_list()
    assert set(items[0]) == {"date", "close"}  # the sample stores closes only
    bars, pages = _walk(url, "/symbols/OHLC/prices", limit=50)
    ohlc = load_prices(["OHLC"], store=str(store)).sort("date")
    assert pages == 3 and [b["date"] for b in bars] == ohlc["date"].cast(pl.String).to_list()
    for field in ("close", "open", "high", "low", "volume"):
        assert [b[field] for b in bars] == ohlc[field].to_list(), field
    assert bars[5]["open"] is None and bars[6]["open"] == ohlc["open"][6]
    window, _ = _walk(url, "/symbols/KO/prices", start="2020-03-02", end="2020-03-31", limit=7)
    expected = stored.filter(
        pl.col("date").cast(pl.String).is_between(pl.lit("2020-03-02"), pl.lit("2020-03-31"))
    )
    assert [i["close"] for i in window] == expected["close"].to_list() and len(window) == 22


def test_scans_newest_first_and_scan_documents(world) -> None:
    from titan_lib.pairs.scan import load_scan

    url, store, scan_ids, *_ = world
    items, pages = _walk(url, "/scans", limit=1)
    assert [i["scan_id"] for i in items] == scan_ids[::-1] and pages == 2
    status, headers, doc = _get(f"{url}/scans/{scan_ids[1]}")
    assert status == 200 and "max-age" in headers["Cache-Control"]
    meta = load_scan(scan_ids[1], str(store)).meta
    assert doc["counts"] == meta["counts"] and doc["universe"] == meta["universe"]
    assert doc["parameters"] == meta["parameters"]


def test_pairs_walk_the_latest_scan_exactly_once(world) -> None:
    from titan_lib.pairs.scan import load_scan

    url, store, scan_ids, *_ = world
    table = load_scan(scan_ids[1], str(store)).pairs.sort("rank")
    for limit in (7, 20):
        items, pages = _walk(url, "/pairs", limit=limit)
        assert pages == -(-table.height // limit) and pages > 1
        assert [(i["y"], i["x"]) for i in items] == list(zip(table["y"], table["x"], strict=True))
        assert [i["rank"] for i in items] == table["rank"].to_list()
    assert items[0]["qvalue"] == table["qvalue"][0]
    assert items[0]["half_life"] == table["half_life"][0]
    assert {"tradable", "reason", "hedge_ratio", "pvalue", "qvalue"} <= set(items[0])


def test_pair_filters(world) -> None:
    from titan_lib.pairs.scan import load_scan

    url, store, scan_ids, *_ = world
    table = load_scan(scan_ids[1], str(store)).pairs.sort("rank")
    cut = float(table["qvalue"].drop_nulls().median())
    items, _ = _walk(url, "/pairs", max_qvalue=cut, tradable="true", limit=5)
    expected = table.filter(pl.col("tradable") & (pl.col("qvalue") <= cut))
    assert expected.height > 5
    assert [i["rank"] for i in items] == expected["rank"].to_list()
    items, _ = _walk(url, "/pairs", tradable="false", limit=3)
    assert [i["rank"] for i in items] == table.filter(~pl.col("tradable"))["rank"].to_list()
    items, _ = _walk(url, "/pairs", symbol="KO", limit=4)
    ko = table.filter((pl.col("y") == "KO") | (pl.col("x") == "KO"))
    assert [i["rank"] for i in items] == ko["rank"].to_list() and ko.height == 10


def test_one_pair_in_either_order(world) -> None:
    from titan_lib.pairs.scan import load_scan

    url, store, scan_ids, *_ = world
    row = load_scan(scan_ids[1], str(store)).pairs.filter(
        (pl.col("y") == "KO") & (pl.col("x") == "PEP")
    )
    for path in ("/pairs/KO/PEP", "/pairs/PEP/KO"):
        status, _, pair = _get(f"{url}{path}")
        assert status == 200 and pair["scan_id"] == scan_ids[1]
        assert (pair["y"], pair["x"], pair["rank"]) == ("KO", "PEP", row["rank"][0])
        assert pair["pvalue"] == row["pvalue"][0] and pair["tradable"] == row["tradable"][0]


def test_a_cursor_keeps_to_its_scan_when_a_newer_scan_is_stored(world, tmp_path) -> None:
    from titan_lib.pairs.scan import load_scan, scan

    url, store, scan_ids, _, runtime = world
    status, _, first = _get(f"{url}/pairs?limit=20")
    assert status == 200 and first["scan_id"] == scan_ids[1]
    newest = scan(["KO", "PEP", "XOM"], "2019-01-01", store=str(store), progress=False)
    runtime().invalidate()
    try:
        query = urllib.parse.urlencode({"limit": 20, "cursor": first["next_cursor"]})
        status, _, second = _get(f"{url}/pairs?{query}")
        assert status == 200 and second["scan_id"] == scan_ids[1]
        ranks = [i["rank"] for i in first["items"] + second["items"]]
        assert ranks == load_scan(scan_ids[1], str(store)).pairs.sort("rank")["rank"][:40].to_list()
        status, _, fresh = _get(f"{url}/pairs")
        assert fresh["scan_id"] == newest.scan_id and len(fresh["items"]) == 3
    finally:
        for key in sorted(Path(store).glob(f"**/{newest.scan_id}/*")):
            key.unlink()
        index = Path(store) / "serving" / "scans.json"
        doc = json.loads(index.read_text())
        doc["items"] = [i for i in doc["items"] if i["scan_id"] != newest.scan_id]
        index.write_text(json.dumps(doc))
        runtime().invalidate()


def test_backtests_and_runs(world) -> None:
    from titan_lib.runner import load_results

    url, store, _, runs, _ = world
    backtests = runs["05_backtest"] + runs["06_walk_forward"]
    items, pages = _walk(url, "/backtests", limit=4)
    assert [i["run_id"] for i in items] == sorted(backtests, reverse=True) and pages == 3
    walk_forward, _ = _walk(url, "/backtests", kind="walk_forward", limit=3)
    assert [i["run_id"] for i in walk_forward] == sorted(runs["06_walk_forward"], reverse=True)
    run_id = runs["06_walk_forward"][2]
    status, _, doc = _get(f"{url}/backtests/{run_id}")
    results = load_results(run_id, str(store))
    assert status == 200 and doc["kind"] == "walk_forward" and doc["status"] == "succeeded"
    assert doc["metrics"] == results.values["stats"] and doc["sample"] == "out-of-sample"
    assert doc["degradation"]["in_sample"] == 1.5 and doc["degradation"]["out_of_sample"] == 2.4
    status, _, failed = _get(f"{url}/backtests/{runs['05_backtest'][-1]}")
    assert failed["status"] == "failed" and failed["metrics"] is None
    assert failed["error"]["message"] == "cell 3 failed: ValueError"
    scan_run = runs["02_pair_scan"][0]
    status, _, doc = _get(f"{url}/runs/{scan_run}")
    assert status == 200 and doc["notebook"] == "02_pair_scan" and doc["kind"] is None
    _error(*_get(f"{url}/backtests/{scan_run}")[::2], 404)
    status, _, doc = _get(f"{url}/runs/{run_id}")
    assert status == 200 and doc["metrics"] == results.values["stats"]


def test_a_run_ending_between_two_pages_is_neither_repeated_nor_skipping(world) -> None:
    from titan_lib.stores import open_store

    url, store, _, runs, runtime = world
    before = sorted(runs["05_backtest"] + runs["06_walk_forward"], reverse=True)
    status, _, first = _get(f"{url}/backtests?limit=5")
    assert status == 200 and [i["run_id"] for i in first["items"]] == before[:5]
    newer = _run(open_store(str(store)), "05_backtest", 50)
    runs["05_backtest"].insert(0, newer)  # still a backtest for the tests that follow
    runtime().invalidate()
    rest, _ = _walk(url, "/backtests", limit=5, cursor=first["next_cursor"])
    assert [i["run_id"] for i in rest] == before[5:]
    status, _, fresh = _get(f"{url}/backtests?limit=1")
    assert fresh["items"][0]["run_id"] == newer


def test_unchanged_entity_tag_answers_304(world) -> None:
    url, _, scan_ids, runs, _ = world
    for path in (
        "/symbols?limit=3",
        "/symbols/KO/prices?start=2022-01-03",
        "/scans",
        f"/scans/{scan_ids[1]}",
        "/pairs?tradable=true",
        "/pairs/KO/PEP",
        "/backtests",
        f"/runs/{runs['05_backtest'][0]}",
    ):
        status, headers, body = _get(f"{url}{path}")
        assert status == 200 and headers["ETag"].startswith('"'), path
        assert headers["Cache-Control"].startswith("private, max-age=")
        status, again, empty = _get(f"{url}{path}", headers={"If-None-Match": headers["ETag"]})
        assert status == 304 and empty is None and again["ETag"] == headers["ETag"], path
        status, _, same = _get(f"{url}{path}", headers={"If-None-Match": '"other", W/"x"'})
        assert status == 200 and same == body


def test_scope_is_enforced(world) -> None:
    url, _, scan_ids, runs, _ = world
    paths = (
        "/symbols",
        "/symbols/KO/prices",
        "/scans",
        f"/scans/{scan_ids[0]}",
        "/pairs",
        "/pairs/KO/PEP",
        "/backtests",
        f"/backtests/{runs['05_backtest'][0]}",
        f"/runs/{runs['05_backtest'][0]}",
    )
    for path in paths:
        error = _error(*_get(f"{url}{path}", scopes="signals:read orders:write")[::2], 403)
        assert error["code"] == "forbidden" and error["details"]["required"] == [READ]
        assert _error(*_get(f"{url}{path}", scopes=None)[::2], 401)["code"] == "unauthorized"


def test_unknown_things_are_404_and_bad_parameters_400(world) -> None:
    url, *_ = world
    for path, detail in (
        ("/symbols/NOPE/prices", "symbol"),
        ("/scans/20200101T000000Z-00000000", "scan_id"),
        ("/runs/20200101T000000000Z-000000", "run_id"),
        ("/backtests/20200101T000000000Z-000000", "run_id"),
        ("/pairs/KO/NOPE", "y"),
    ):
        error = _error(*_get(f"{url}{path}")[::2], 404)
        assert detail in error["details"], (path, error)
    for path, parameter in (
        ("/symbols?limit=0", "limit"),
        ("/symbols?limit=1001", "limit"),
        ("/symbols?limit=ten", "limit"),
        ("/symbols?cursor=not-a-cursor", "cursor"),
        ("/pairs?cursor=eyJyIjoic3ltYm9scyIsImsiOlsiS08iXX0", "cursor"),  # a /symbols cursor
        ("/symbols?cursor=eyJyIjoic3ltYm9scyIsImsiOlsxXX0", "cursor"),  # a forged key type
        ("/pairs?max_qvalue=2", "max_qvalue"),
        ("/pairs?max_qvalue=nan", "max_qvalue"),
        ("/pairs?tradable=yes", "tradable"),
        ("/symbols/KO/prices?start=2020-13-01", "start"),
        ("/symbols/KO/prices?start=2021-01-01&end=2020-01-01", "start"),
        ("/scans/not-a-scan", "scan_id"),
        ("/runs/not-a-run", "run_id"),
        ("/backtests?kind=other", "kind"),
    ):
        error = _error(*_get(f"{url}{path}")[::2], 400)
        assert error["details"].get("parameter") == parameter, (path, error)


def test_publish_documents_rebuilds_what_is_missing(world, tmp_path, capsys) -> None:
    import shutil

    from titan_lib.core.serving.research_documents import read_scan_pairs

    _, store, scan_ids, runs, _ = world
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)

    def documents() -> list[str]:  # the pieces of a scan depend on PAIRS_PER_PIECE
        found = (str(p.relative_to(copy)) for p in (copy / "serving").rglob("*.json"))
        return sorted(name for name in found if "/pairs-" not in name)

    before = documents()
    shutil.rmtree(copy / "serving")
    code, out, err = run_titan(["lambdas", "publish-documents", "--store", str(copy)], capsys)
    assert code == 0, err
    assert documents() == before
    from titan_lib.stores import open_store

    pairs = read_scan_pairs(open_store(str(copy)), scan_ids[1])
    assert pairs == read_scan_pairs(open_store(str(store)), scan_ids[1])
    assert f"{len(runs['05_backtest']) + len(runs['06_walk_forward']) + 1} runs" in out
    code, out, _ = run_titan(["lambdas", "publish-documents", "--store", str(copy)], capsys)
    assert code == 0 and "0 prices, 0 scans, 0 runs" in out
    indexes = {
        name: json.loads((copy / "serving" / name).read_text())["items"]
        for name in ("scans.json", "runs.json")
    }
    for name in indexes:  # an interrupted write: documents stored, index entries missing
        (copy / "serving" / name).unlink()
    ko = copy / "serving" / "prices" / "KO.json"
    ko_before = json.loads(ko.read_text())
    ko.unlink()  # a document lost, its index entry still there
    code, out, _ = run_titan(["lambdas", "publish-documents", "--store", str(copy)], capsys)
    assert code == 0 and "1 prices, 0 scans, 0 runs" in out
    for name, items in indexes.items():
        assert json.loads((copy / "serving" / name).read_text())["items"] == items, name
    ko_after = json.loads(ko.read_text())
    assert {**ko_after, "updated_at": None} == {**ko_before, "updated_at": None}


READ_PATHS = (
    "/symbols",
    "/symbols/{symbol}/prices",
    "/scans",
    "/scans/{scan_id}",
    "/pairs",
    "/pairs/{y}/{x}",
    "/backtests",
    "/backtests/{run_id}",
    "/runs/{run_id}",
)


def test_read_routes_conform_to_openapi_with_data(world) -> None:
    """schemathesis over every read route of lambdas/openapi.yaml against a store that
    holds prices, scans and runs: no 5xx, every answer conforms to the document. A list's
    cursor is only valid as handed out (a schema cannot say so): the positive-data check
    is left out for the list routes."""
    import schemathesis
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    url, *_ = world
    schema = schemathesis.openapi.from_path(str(REPO / "lambdas" / "openapi.yaml"))
    headers = {"Authorization": f"Bearer {token(READ, sub='fuzzer')}"}
    operations = [
        result.ok() for result in schema.get_all_operations() if result.ok().path in READ_PATHS
    ]
    assert sorted(o.path for o in operations) == sorted(READ_PATHS)
    for operation in operations:
        listed = "{" not in operation.path or operation.path.endswith("/prices")
        _conforms(operation, url, headers, [positive_data_acceptance] if listed else [])
    by_path = {o.path: o for o in operations}
    _, _, scan_ids, runs, _ = world
    for path, concrete in (
        ("/symbols/{symbol}/prices", "/symbols/OHLC/prices"),
        ("/symbols/{symbol}/prices", "/symbols/KO/prices?start=2022-01-03"),
        ("/scans/{scan_id}", f"/scans/{scan_ids[1]}"),
        ("/pairs/{y}/{x}", "/pairs/PEP/KO"),
        ("/backtests/{run_id}", f"/backtests/{runs['06_walk_forward'][0]}"),
        ("/backtests/{run_id}", f"/backtests/{runs['05_backtest'][-1]}"),
        ("/runs/{run_id}", f"/runs/{runs['02_pair_scan'][0]}"),
    ):
        response = requests.get(f"{url}{concrete}", headers=headers, timeout=60)
        assert response.status_code == 200, concrete
        by_path[path].validate_response(response)


def _conforms(operation: Any, url: str, headers: dict[str, str], excluded: list[Any]) -> None:
    from hypothesis import HealthCheck, given, settings

    @given(case=operation.as_strategy())
    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def conforms(case: Any) -> None:
        case.call_and_validate(base_url=url, headers=headers, excluded_checks=excluded)

    conforms()
