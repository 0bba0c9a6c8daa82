"""Warm latency of the read API in process: GET /pairs and GET /symbols/{s}/prices.

The store holds the bundled sample (21 symbols, 1990-2022, real ingest) and a real scan of
all of them (210 pairs). Each route is called 1,000 times through the full handler
(middleware, scope check, rate-limit count in the SQLite ledger, warm document cache,
page, entity tag, JSON) after one warming call, each case as its own principal; p50 and
p99 are printed, with the ratio of each p50 to that of GET /health measured in the same
run (the reference: the middleware alone).

Run: NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/read_api.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CALLS = 1000


def _event(resource: str, path: str, query: dict[str, str] | None, params: dict[str, str]) -> dict:
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": None
        if query is None
        else {k: [v] for k, v in query.items()},
        "pathParameters": params or None,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "requestId": "bench",
            "stage": "api",
            # one principal per case: the rate limiter's window holds only that case's calls
            "authorizer": {"principalId": f"bench {path} {query}", "scopes": "research:read"},
        },
    }


def _warm(app: Any, event: dict) -> tuple[float, float, int]:
    """p50 and p99 (ms) over :data:`CALLS` calls, and the response size in bytes."""
    ctx = types.SimpleNamespace(aws_request_id=str(uuid.uuid4()), function_name="titan")
    first = app.app(json.loads(json.dumps(event)), ctx)
    assert first["statusCode"] == 200, first
    latencies = []
    for _ in range(CALLS):
        copy = json.loads(json.dumps(event))
        started = time.perf_counter()
        response = app.app(copy, ctx)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == 200
    latencies.sort()
    return statistics.median(latencies), latencies[int(0.99 * CALLS) - 1], len(first["body"])


def main() -> None:
    from titan_lib.data import ingest_frame, sample_prices
    from titan_lib.pairs.scan import scan

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        store = tmp / "store"
        ingest_frame(sample_prices(), store=str(store))
        result = scan(store=str(store), start="2015-01-01", progress=False)
        os.environ.update(
            {
                "TITAN_STORE": str(store),
                "TITAN_LEDGER": str(tmp / "ledger.sqlite"),
                "TITAN_JWT_SECRET": "b" * 40,
                "TITAN_RATE_LIMIT": "1000000",
            }
        )
        sys.path.insert(0, str(REPO / "lambdas"))
        import app
        from chalicelib.logs import logger

        logger().setLevel("WARNING")  # time the handler, not stdout
        cases = [
            ("GET /health", _event("/health", "/health", None, {})),
            ("GET /pairs", _event("/pairs", "/pairs", None, {})),
            (
                "GET /pairs?tradable=true&max_qvalue=0.5",
                _event("/pairs", "/pairs", {"tradable": "true", "max_qvalue": "0.5"}, {}),
            ),
            (
                "GET /symbols/KO/prices",
                _event("/symbols/{symbol}/prices", "/symbols/KO/prices", None, {"symbol": "KO"}),
            ),
            (
                "GET /symbols/KO/prices?start=2022-01-03",
                _event(
                    "/symbols/{symbol}/prices",
                    "/symbols/KO/prices",
                    {"start": "2022-01-03"},
                    {"symbol": "KO"},
                ),
            ),
            (
                "GET /symbols/KO/prices?limit=1000",
                _event(
                    "/symbols/{symbol}/prices",
                    "/symbols/KO/prices",
                    {"limit": "1000"},
                    {"symbol": "KO"},
                ),
            ),
        ]
        figures = {name: _warm(app, event) for name, event in cases}

    reference = figures["GET /health"][0]
    print(f"store: bundled sample, 21 symbols; scan {result.scan_id}: {result.pairs.height} pairs")
    print(f"warm in-process latency over {CALLS} calls (target: p50 <= 2 ms for the read API)")
    for name, (p50, p99, size) in figures.items():
        ratio = "reference" if name == "GET /health" else f"{p50 / reference:.2f} x /health"
        print(f"  {name:<42} p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  {size:>7} B  {ratio}")


if __name__ == "__main__":
    main()
