"""The read API (scope ``research:read``): symbols, prices, scans, pairs, backtests, runs.

Every route reads the research serving documents
(:mod:`titan_lib.core.serving.research_documents`) through the runtime's warm cache (a
scan's pairs, immutable, stay encoded while the scan is served); no Parquet is read. List
routes answer ``{"items": [...], "next_cursor": "..."}`` with ``limit`` and ``cursor``
(:mod:`titan_lib.core.serving.pages`). Every 200 carries an ``ETag`` (``If-None-Match``
with it answers 304) and a ``Cache-Control``.

The routes live in a blueprint built by :func:`read_api_routes` with the app's
authorizer, and every view is wrapped in :func:`chalicelib.http.endpoint` (scope check,
rate limit, the one error shape), so they behave like the app's own routes.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections import OrderedDict
from datetime import date
from typing import Any

from chalice import Blueprint, Response

from chalicelib.http import JSON, endpoint
from chalicelib.runtime import runtime
from chalicelib.validation import ISO_DATE, SYMBOL
from titan_lib.core.auth import Scope
from titan_lib.core.serving.pages import (
    PageRequest,
    dumps_body,
    encoded_body,
    entity_tag,
    not_modified,
    page_of,
    page_request,
)
from titan_lib.core.serving.research_documents import (
    BACKTEST_KINDS,
    RUN_ID,
    RUNS_INDEX_KEY,
    SCAN_ID,
    SCANS_INDEX_KEY,
    read_index,
    read_prices,
    read_run,
    read_scan,
    read_scan_pairs,
    read_symbols,
)
from titan_lib.exceptions import NotFoundError, ParameterError

SCOPES: tuple[Scope, ...] = ("research:read",)
LIST_CACHE_CONTROL = "private, max-age=30"
"""Lists change when prices are ingested, a scan is stored or a run ends."""
RECORD_CACHE_CONTROL = "private, max-age=3600"
"""Scans and runs are immutable once stored."""


def _params(request: Any) -> dict[str, str]:
    return dict(request.query_params or {})


def _respond(request: Any, body: Any, cache_control: str) -> Response:
    """A cacheable JSON response, or 304 when ``If-None-Match`` names its entity tag.

    ``body`` is JSON-ready, or its JSON bytes already."""
    raw = body if isinstance(body, bytes) else dumps_body(body)
    tag = entity_tag(raw)
    headers: dict[str, str | list[str]] = {"ETag": tag, "Cache-Control": cache_control}
    if not_modified(request.headers.get("if-none-match"), tag):
        return Response(body="", status_code=304, headers=headers)
    return Response(body=raw.decode(), status_code=200, headers={**JSON, **headers})


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("schema_version", "data_sha256")}


def _cached(key: str, build: Any) -> Any:
    return runtime().cached(f"research:{key}", build)


def _symbol(value: str, name: str = "symbol") -> str:
    if not SYMBOL.fullmatch(value):
        raise ParameterError(
            f"{name} must be 1 to 32 characters of A-Z a-z 0-9 _ . -", {"parameter": name}
        )
    return value


def _date(params: dict[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        if not ISO_DATE.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise ParameterError(
            f"{name} must be a date YYYY-MM-DD, got {value[:40]!r}", {"parameter": name}
        ) from None
    return value


def _identifier(value: str, pattern: re.Pattern[str], name: str, example: str) -> str:
    if not pattern.fullmatch(value):
        raise ParameterError(f"{name} must look like {example}", {"parameter": name})
    return value


# -- documents, warm -----------------------------------------------------------------------


PricedRow = tuple[str, str]
"""A price row's date and its JSON text."""
RankedPair = tuple[dict[str, Any], str]
"""A scan's pair and its JSON text."""
SCANS_KEPT = 4
_scan_pairs: OrderedDict[str, tuple[list[RankedPair], dict[tuple[str, str], dict[str, Any]]]]
_scan_pairs = OrderedDict()
"""Pairs of the scans served last: a scan is immutable, so they are kept while used."""
_scan_pairs_lock = threading.Lock()


def _price_rows(symbol: str) -> tuple[list[str], list[PricedRow]]:
    """A symbol's dates and rows (``date``, ``close`` and its stored fields), cached."""

    def build() -> tuple[list[str], list[PricedRow]]:
        doc = read_prices(runtime().store, symbol)
        fields = doc["fields"]
        columns = [doc[f] for f in fields]
        rows = [
            (d, dumps_body({"date": d, **dict(zip(fields, values, strict=True))}).decode())
            for d, values in zip(doc["date"], zip(*columns, strict=True), strict=True)
        ]
        return doc["date"], rows

    result: tuple[list[str], list[PricedRow]] = _cached(f"prices:{symbol}", build)
    return result


def _scans() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _cached(
        "scans", lambda: read_index(runtime().store, SCANS_INDEX_KEY)
    )
    return items


def _pairs(scan_id: str) -> tuple[list[RankedPair], dict[tuple[str, str], dict[str, Any]]]:
    """A scan's ranked pairs (with their JSON texts) and the pairs by ``(y, x)``."""
    with _scan_pairs_lock:
        found = _scan_pairs.get(scan_id)
        if found is not None:
            _scan_pairs.move_to_end(scan_id)
            return found
    pairs = read_scan_pairs(runtime().store, scan_id)
    found = ([(p, dumps_body(p).decode()) for p in pairs], {(p["y"], p["x"]): p for p in pairs})
    with _scan_pairs_lock:
        _scan_pairs[scan_id] = found
        while len(_scan_pairs) > SCANS_KEPT:
            _scan_pairs.popitem(last=False)
    return found


def _runs() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = _cached(
        "runs", lambda: read_index(runtime().store, RUNS_INDEX_KEY)
    )
    return items


def _latest_scan_id() -> str | None:
    scans = _scans()
    return str(scans[0]["scan_id"]) if scans else None


# -- routes --------------------------------------------------------------------------------


def read_api_routes(authorizer: Any) -> Blueprint:
    """The read API's routes, each behind ``authorizer`` and scope ``research:read``."""
    bp = Blueprint(__name__)

    @bp.route("/symbols", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def list_symbols() -> Response:
        request = page_request("symbols", _params(bp.current_request))
        items = _cached("symbols", lambda: read_symbols(runtime().store))
        page = page_of(items, request, lambda s: (s["symbol"],), _public)
        return _respond(bp.current_request, page.body(), LIST_CACHE_CONTROL)

    @bp.route("/symbols/{symbol}/prices", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def symbol_prices(symbol: str) -> Response:
        _symbol(symbol)
        params = _params(bp.current_request)
        start, end = _date(params, "start"), _date(params, "end")
        if start is not None and end is not None and start > end:
            raise ParameterError(f"start {start} is after end {end}", {"parameter": "start"})
        request = page_request(f"prices:{symbol}", params)
        dates, rows = _price_rows(symbol)
        lo = 0 if start is None else bisect.bisect_left(dates, start)
        hi = len(dates) if end is None else bisect.bisect_right(dates, end)
        page = page_of(rows[lo:hi], request, lambda r: (r[0],), lambda r: r[1])
        return _respond(
            bp.current_request, encoded_body(page, {"symbol": symbol}), LIST_CACHE_CONTROL
        )

    @bp.route("/scans", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def list_scans() -> Response:
        request = page_request("scans", _params(bp.current_request))
        page = page_of(
            _scans(), request, lambda s: (s["created_at"], s["scan_id"]), dict, descending=True
        )
        return _respond(bp.current_request, page.body(), LIST_CACHE_CONTROL)

    @bp.route("/scans/{scan_id}", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def get_scan(scan_id: str) -> Response:
        _identifier(scan_id, SCAN_ID, "scan_id", "20261125T212300Z-1a2b3c4d")
        doc = _cached(f"scan:{scan_id}", lambda: read_scan(runtime().store, scan_id))
        body = {k: v for k, v in _public(doc).items() if k != "pieces"}
        return _respond(bp.current_request, body, RECORD_CACHE_CONTROL)

    @bp.route("/pairs", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def list_pairs() -> Response:
        params = _params(bp.current_request)
        max_q = _max_qvalue(params.get("max_qvalue"))
        tradable = _boolean(params.get("tradable"), "tradable")
        symbol = None if params.get("symbol") is None else _symbol(params["symbol"])
        request = page_request("pairs", params)
        if request.pinned is not None and not SCAN_ID.fullmatch(request.pinned):
            raise ParameterError("cursor is not valid here", {"parameter": "cursor"})
        scan_id = request.pinned or _latest_scan_id()
        if scan_id is None:
            return _respond(bp.current_request, {"scan_id": None, "items": []}, LIST_CACHE_CONTROL)
        pinned = PageRequest(request.route, request.limit, request.after, scan_id)

        def accept(item: RankedPair) -> bool:
            pair = item[0]
            if tradable is not None and bool(pair.get("tradable")) != tradable:
                return False
            if symbol is not None and symbol not in (pair["y"], pair["x"]):
                return False
            if max_q is not None:
                q = pair.get("qvalue")
                return q is not None and q <= max_q
            return True

        pairs, _ = _pairs(scan_id)
        page = page_of(pairs, pinned, lambda p: (p[0]["rank"],), lambda p: p[1], accept)
        return _respond(
            bp.current_request, encoded_body(page, {"scan_id": scan_id}), LIST_CACHE_CONTROL
        )

    @bp.route("/pairs/{y}/{x}", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def get_pair(y: str, x: str) -> Response:
        _symbol(y, "y")
        _symbol(x, "x")
        scan_id = _latest_scan_id()
        if scan_id is None:
            raise NotFoundError("no scan is stored yet", {"y": y, "x": x})
        _, by_legs = _pairs(scan_id)
        pair = by_legs.get((y, x)) or by_legs.get((x, y))
        if pair is None:
            raise NotFoundError(
                f"no pair {y}/{x} in the latest scan {scan_id}",
                {"y": y, "x": x, "scan_id": scan_id},
            )
        return _respond(bp.current_request, {"scan_id": scan_id, **pair}, LIST_CACHE_CONTROL)

    @bp.route("/backtests", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def list_backtests() -> Response:
        params = _params(bp.current_request)
        kind = params.get("kind")
        kinds = sorted(set(BACKTEST_KINDS.values()))
        if kind is not None and kind not in kinds:
            raise ParameterError(f"kind must be one of {', '.join(kinds)}", {"parameter": "kind"})
        request = page_request("backtests", params)
        page = page_of(
            _runs(),
            request,
            lambda r: (r["run_id"],),
            dict,
            lambda r: r["kind"] is not None and (kind is None or r["kind"] == kind),
            descending=True,
        )
        return _respond(bp.current_request, page.body(), LIST_CACHE_CONTROL)

    @bp.route("/backtests/{run_id}", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def get_backtest(run_id: str) -> Response:
        doc = _run(run_id)
        if doc["kind"] is None:
            raise NotFoundError(
                f"run {run_id} is a {doc['notebook']} run, not a backtest", {"run_id": run_id}
            )
        return _respond(bp.current_request, _public(doc), RECORD_CACHE_CONTROL)

    @bp.route("/runs/{run_id}", methods=["GET"], authorizer=authorizer)
    @endpoint(bp, SCOPES)
    def get_run(run_id: str) -> Response:
        return _respond(bp.current_request, _public(_run(run_id)), RECORD_CACHE_CONTROL)

    return bp


def _run(run_id: str) -> dict[str, Any]:
    _identifier(run_id, RUN_ID, "run_id", "20261125T212300123Z-1a2b3c")
    doc: dict[str, Any] = _cached(f"run:{run_id}", lambda: read_run(runtime().store, run_id))
    return doc


def _max_qvalue(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value) if len(value) <= 40 else math.nan
    except ValueError:
        number = math.nan
    if not 0.0 <= number <= 1.0:
        raise ParameterError(
            f"max_qvalue must be a number from 0 to 1, got {value[:40]!r}",
            {"parameter": "max_qvalue"},
        )
    return number


def _boolean(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value not in ("true", "false"):
        raise ParameterError(f"{name} must be true or false", {"parameter": name})
    return value == "true"
