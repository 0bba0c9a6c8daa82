"""Cold start and warm latency of the Lambda app, measured on the packaged artefact.

Prints: the deployment zip size; the cold import time of the app in a fresh process
(median of 10); the first request in that fresh process; the warm in-process latency of
GET /signals/{id} (p50 and p99 over 1,000 calls, through the full handler: middleware,
scope check, rate-limit count in the SQLite ledger, cached signal); and the ratio of the
cold import to the same import with numpy imported as well (the reference).

Run: NUMBA_CACHE_DIR=.cache/numba .venv/bin/python benchmarks/lambda_coldstart.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = 10
CALLS = 1000

COLD = """
import sys, time, json, types, uuid
sys.path.insert(0, {unzipped!r})
started = time.perf_counter()
import app
imported = time.perf_counter() - started
event = json.loads({event!r})
ctx = types.SimpleNamespace(aws_request_id=str(uuid.uuid4()), function_name="titan")
started = time.perf_counter()
response = app.app(event, ctx)
first = time.perf_counter() - started
assert response["statusCode"] == 200, response
print(json.dumps({{"import": imported, "first": first}}))
"""


def _world(tmp: Path) -> tuple[Path, str]:
    spec = importlib.util.spec_from_file_location(
        "lambda_world", REPO / "tests" / "fixtures" / "lambda_world.py"
    )
    assert spec and spec.loader
    world = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(world)
    store, ids = world.world_store(tmp, tmp / "cache")
    return store, ids[0]


def _event(model_id: str) -> dict:
    return {
        "resource": "/signals/{model_id}",
        "path": f"/signals/{model_id}",
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"model_id": model_id},
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": "/signals/{model_id}",
            "httpMethod": "GET",
            "requestId": "bench",
            "stage": "api",
            "authorizer": {"principalId": "bench", "scopes": "signals:read"},
        },
    }


def main() -> None:
    from titan_lib.cli.lambdas import package

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        report = package(tmp / "dist", formats=("sam",))
        unzipped = tmp / "task"
        with zipfile.ZipFile(report.zip_path) as archive:
            archive.extractall(unzipped)
        store, model_id = _world(tmp)
        env = {
            **os.environ,
            "TITAN_STORE": str(store),
            "TITAN_LEDGER": str(tmp / "l.sqlite"),
            "TITAN_JWT_SECRET": "b" * 40,
            "TITAN_RATE_LIMIT": "1000000",
        }
        event = json.dumps(_event(model_id))

        def cold() -> tuple[float, float]:
            imports, firsts = [], []
            for _ in range(RUNS):
                code = COLD.format(unzipped=str(unzipped), event=event)
                done = subprocess.run(
                    [sys.executable, "-I", "-c", code],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=tmp,
                )
                result = json.loads(done.stdout.strip().splitlines()[-1])
                imports.append(result["import"])
                firsts.append(result["first"])
            return statistics.median(imports), statistics.median(firsts)

        app_import, first_request = cold()
        both = []
        for _ in range(RUNS):
            code = (
                f"import sys, time; sys.path.insert(0, {str(unzipped)!r}); "
                "t = time.perf_counter(); import numpy; import app; "
                "print(time.perf_counter() - t)"
            )
            done = subprocess.run(
                [sys.executable, "-I", "-c", code],
                env=env,
                check=True,
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            both.append(float(done.stdout.strip().splitlines()[-1]))
        with_numpy = statistics.median(both)

        for key, value in env.items():
            os.environ[key] = value
        sys.path.insert(0, str(unzipped))
        import app

        ctx = types.SimpleNamespace(aws_request_id=str(uuid.uuid4()), function_name="titan")
        warm_event = json.loads(event)
        assert app.app(warm_event, ctx)["statusCode"] == 200
        from chalicelib.logs import logger

        logger().setLevel("WARNING")  # time the handler, not stdout
        latencies = []
        for _ in range(CALLS):
            started = time.perf_counter()
            response = app.app(json.loads(event), ctx)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response["statusCode"] == 200
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[int(0.99 * len(latencies)) - 1]

    print(f"zip size:                         {report.zip_bytes / 1e6:.2f} MB (target <= 5 MB)")
    print(f"cold import of the app (median {RUNS}): {app_import * 1000:.1f} ms (target <= 150 ms)")
    print(
        f"first request in that process:    {first_request * 1000:.1f} ms "
        "(creates the powertools Logger, reads the model and prices, evaluates)"
    )
    print(f"warm GET /signals/{{id}} p50:       {p50:.3f} ms (target <= 2 ms)")
    print(f"warm GET /signals/{{id}} p99:       {p99:.3f} ms")
    print(f"cold import with numpy as well:   {with_numpy * 1000:.1f} ms (reference)")
    print(f"ratio app / app+numpy:            {app_import / with_numpy:.3f}")


if __name__ == "__main__":
    main()
