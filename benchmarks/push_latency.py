"""Push latency on the local server: from a recorded fill to the message on the client.

Usage: python benchmarks/push_latency.py [--pushes N]

Starts ``titan lambdas local`` in this process (a temporary store and SQLite ledger),
connects a WebSocket client to ``ws://127.0.0.1:PORT/ws`` with a token and subscribes it
to ``fills``. Each push is timed from the call the API makes once a fill is recorded
(:func:`chalicelib.live.notify_fills`: subscribers read from the ledger, the message
written to the socket) until the client has received and parsed it. Measured in the same
run:

- ``fill push``: the API's push of a fill (in-process sender);
- ``via management API``: the same push from another process's point of view (``titan
  worker``): ``POST /@connections/{id}`` over HTTP through boto3;
- ``raw frame`` (reference): one frame written to the socket and received, no store.

Prints the median and 95th percentile in milliseconds and each path's ratio to the raw
frame.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECRET = "benchmark-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=300)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="titan-push-"))
    os.environ.update(
        {
            "TITAN_STORE": str(tmp / "store"),
            "TITAN_LEDGER": str(tmp / "ledger.sqlite"),
            "TITAN_JWT_SECRET": SECRET,
            "TITAN_RATE_LIMIT": "1000000",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    sys.path.insert(0, str(REPO / "lambdas"))
    import jwt
    from chalicelib.live import notify_fills
    from chalicelib.runtime import runtime
    from websockets.sync.client import connect

    from titan_lib.cli.lambdas import local_server
    from titan_lib.core.execution.models import Order, OrderRequest
    from titan_lib.core.push.gateway import ManagementApiSender

    port = free_port()
    server = local_server("127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    wait_for_port(port)
    now = int(time.time())
    claims = {"sub": "bench", "iss": "titan", "aud": "titan-api", "iat": now, "exp": now + 3600}
    bearer = jwt.encode({**claims, "scope": "orders:write"}, SECRET, algorithm="HS256")
    order = Order(
        order_id="ord_benchmark",
        client_order_id="titan-benchmark",
        principal="bench",
        request=OrderRequest(model_id="m" * 64, notional=10_000.0, target_position=1),
        request_hash="0" * 64,
        status="filled",
        created_at="2026-01-02T00:00:00+00:00",
        updated_at="2026-01-02T00:00:00+00:00",
        fill_id="fill_benchmark",
    )
    rt = runtime()
    with connect(f"ws://127.0.0.1:{port}/ws?token={bearer}") as ws:
        ws.send(json.dumps({"action": "subscribe", "channels": ["fills"]}))
        json.loads(ws.recv(timeout=5))
        from chalicelib.live import live

        (subscriber,) = live(rt).connections.subscribers("fills")
        gateway = live(rt).sender()
        remote = ManagementApiSender(f"http://127.0.0.1:{port}")
        payload = json.dumps({"channel": "fills", "event": "fill", "data": {}}).encode()

        def timed(push: object) -> list[float]:
            samples = []
            for _ in range(args.pushes):
                started = time.perf_counter()
                push()  # type: ignore[operator]
                json.loads(ws.recv(timeout=5))
                samples.append((time.perf_counter() - started) * 1000.0)
            return samples

        timed(lambda: notify_fills(rt, [order]))  # warm-up
        paths = {
            "raw frame (reference)": timed(
                lambda: gateway.send(subscriber.connection_id, payload)  # type: ignore[union-attr]
            ),
            "fill push": timed(lambda: notify_fills(rt, [order])),
            "via management API": timed(lambda: remote.send(subscriber.connection_id, payload)),
        }
    server.shutdown()
    reference = percentiles(paths["raw frame (reference)"])[0]
    print(f"push latency on the local server, {args.pushes} pushes per path (ms)")
    for name, samples in paths.items():
        p50, p95 = percentiles(samples)
        print(f"  {name:<24} p50 {p50:7.3f}  p95 {p95:7.3f}  x{p50 / reference:6.1f} of raw")


if __name__ == "__main__":
    main()
