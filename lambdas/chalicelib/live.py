"""Jobs, queue, WebSocket connections and pushes of the app, built lazily per runtime.

Settings (besides those of :mod:`chalicelib.runtime`):

``TITAN_QUEUE``              ``sqs://<queue>`` or a SQLite path (default: in the store folder)
``TITAN_WS_ENDPOINT``        the WebSocket API's management endpoint, for pushes from
                             functions that are not WebSocket handlers
``TITAN_NOTEBOOK_CATALOG``   the notebook catalog file (default: the packaged
                             ``chalicelib/notebook_catalog.json``)

Jobs, connections and subscriptions live in the ledger store (``TITAN_LEDGER``).
"""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from chalicelib.logs import logger
from chalicelib.runtime import Runtime
from titan_lib.core.execution.models import Order
from titan_lib.core.jobs.catalog import NotebookCatalog
from titan_lib.core.jobs.models import Job
from titan_lib.core.jobs.queue import JobQueue
from titan_lib.core.jobs.queues import open_queue
from titan_lib.core.jobs.store import JobStore
from titan_lib.core.jobs.stores import open_job_store
from titan_lib.core.push.channels import signal_channel
from titan_lib.core.push.connection_stores import open_connections
from titan_lib.core.push.connections import ConnectionStore
from titan_lib.core.push.gateway import Sender, default_sender, local_sender
from titan_lib.core.push.publisher import Delivery, publish

NOTEBOOK_CATALOG = Path(__file__).resolve().parent / "notebook_catalog.json"


@dataclass
class Live:
    """The job store, queue, connection store and notebook catalog of one runtime."""

    runtime: Runtime
    _cache: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def jobs(self) -> JobStore:
        return open_job_store(self.runtime.ledger.uri)

    @cached_property
    def queue(self) -> JobQueue:
        return open_queue()

    @cached_property
    def connections(self) -> ConnectionStore:
        return open_connections(self.runtime.ledger.uri)

    @cached_property
    def notebooks(self) -> NotebookCatalog:
        path = Path(os.environ.get("TITAN_NOTEBOOK_CATALOG") or NOTEBOOK_CATALOG)
        return NotebookCatalog.from_json(path.read_bytes())

    def sender(self, endpoint: str | None = None) -> Sender | None:
        """The process's sender (see :func:`titan_lib.core.push.gateway.default_sender`)."""
        local = local_sender()
        if local is not None:
            return local
        key = f"sender:{endpoint}"
        if key not in self._cache:
            self._cache[key] = default_sender(endpoint)
        return self._cache[key]  # type: ignore[no-any-return]


_live: weakref.WeakKeyDictionary[Runtime, Live] = weakref.WeakKeyDictionary()


def live(rt: Runtime) -> Live:
    """The :class:`Live` services of ``rt`` (made on first use, dropped with ``rt``)."""
    found = _live.get(rt)
    if found is None:
        found = _live[rt] = Live(rt)
    return found


def _contained(channel: str, push: Any) -> Delivery:
    """Run a push; a failure is logged, never raised (the request it follows succeeded)."""
    try:
        delivery: Delivery = push()
    except Exception:
        logger().exception("push failed", channel=channel)
        return Delivery(failed=1)
    return delivery


def notify_job(rt: Runtime, job: Job) -> Delivery:
    """Push a job's state to ``jobs:<job_id>`` (its owner's connections only)."""
    services = live(rt)
    channel = f"jobs:{job.job_id}"
    return _contained(
        channel,
        lambda: publish(
            services.connections,
            services.sender(),
            channel,
            "job",
            job.public_dict(),
            principal=job.principal,
        ),
    )


def notify_fills(rt: Runtime, orders: Iterable[Order]) -> int:
    """Push each filled order to ``fills``, to its owner's connections only."""
    services = live(rt)
    sent = 0
    for order in orders:
        if order.status != "filled":
            continue
        sent += _contained(
            "fills",
            lambda order=order: publish(
                services.connections,
                services.sender(),
                "fills",
                "fill",
                order.public_dict(),
                principal=order.principal,
            ),
        ).sent
    return sent


def signal_fingerprint(doc: dict[str, Any]) -> str:
    """What makes a signal different for a subscriber: everything but read times."""
    stable = {k: v for k, v in doc.items() if k not in ("generated_at", "read_at")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


def push_changed_signals(rt: Runtime) -> dict[str, int]:
    """Evaluate every served model; push each signal that changed since its last push."""
    from chalicelib.signals import current_signal

    services = live(rt)
    rt.invalidate()
    changed = sent = 0
    for model in rt.catalog.served_models():
        try:
            doc = current_signal(rt, model.model_id)
        except Exception as exc:  # one model without prices must not stop the others
            logger().warning("signal not evaluated", model_id=model.model_id, error=str(exc))
            continue
        if not services.connections.swap_mark(f"signal:{model.model_id}", signal_fingerprint(doc)):
            continue
        changed += 1
        channel = signal_channel(model.model_id)
        sent += _contained(
            channel,
            lambda channel=channel, doc=doc: publish(
                services.connections, services.sender(), channel, "signal", doc
            ),
        ).sent
    return {"changed": changed, "sent": sent}
