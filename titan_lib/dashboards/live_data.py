"""Data of the live-signals dashboard: published models, their signals, the ledger.

Each served model is evaluated with :func:`titan_lib.core.serving.evaluate_served` on the
serving price tails (``prices/latest/<SYMBOL>.json``), from the position the ledger holds
for it (so the action is what production would do next). Positions and P&L come from the
order ledger, marked at the last close (:mod:`titan_lib.core.serving.marks`: P&L of a
symbol is ``cash + quantity * last close``). Nothing is written:
a SQLite ledger that does not exist yet is reported as empty, not created.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from titan_lib.core import PriceTail, SignalModel, latest_prices, list_models, signal_path
from titan_lib.core.execution import Ledger, Position, open_ledger
from titan_lib.core.model_health import HealthRecord
from titan_lib.core.model_health_store import health_history
from titan_lib.core.serving import (
    ServedSignal,
    evaluate_served,
    held_side,
    is_open,
    mark_to_market,
    pair_quantities,
    pnl_by_model,
)
from titan_lib.exceptions import NotFoundError, TitanError
from titan_lib.stores.objects import ObjectStore

LEDGER_FILE = "ledger.sqlite"

HEALTH_HISTORY = 10
"""Health checks shown per model."""
_HEALTH_SCHEMA = {
    "model": pl.String,
    "pair": pl.String,
    "checked_at": pl.String,
    "as_of": pl.String,
    "state": pl.String,
    "reason": pl.String,
}


@dataclass(frozen=True)
class LiveSnapshot:
    """Everything the page shows, read at ``read_at``.

    Attributes
    ----------
    signals
        One row per served model: ``model``, ``pair``, ``as_of``, ``zscore``, ``action``,
        ``position`` (target), ``held`` (ledger), ``regime``, ``reason``, ``approval``
        (the publish gate's verdict, :func:`approval_label`), ``health`` (the latest
        health check: ``healthy``, ``warning: <reason>``, ``broken: <reason>`` or
        ``never checked``).
    positions
        Open positions per model and symbol: ``model``, ``symbol``, ``quantity``,
        ``last_close``, ``market_value``, ``pnl``.
    pnl
        P&L per model (open and closed positions): ``model``, ``pair``, ``pnl``.
    models
        The served models by id.
    prices_updated
        Latest ``updated_at`` of the price tails read (ISO), or ``None``.
    ledger
        The ledger's URI, or a sentence saying why there is none.
    read_at
        When this snapshot was read (ISO 8601 UTC, milliseconds: two Refresh clicks within
        a second still show different times).
    health
        The health checks of the served models, newest first (at most
        :data:`HEALTH_HISTORY` per model): ``model``, ``pair``, ``checked_at``, ``as_of``,
        ``state``, ``reason``.
    """

    signals: pl.DataFrame
    positions: pl.DataFrame
    pnl: pl.DataFrame
    models: dict[str, SignalModel]
    prices_updated: str | None
    ledger: str
    read_at: str
    health: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_HEALTH_SCHEMA))


def open_ledger_readonly(store: ObjectStore, uri: str | None = None) -> tuple[Ledger | None, str]:
    """The ledger to read, and its description.

    ``uri`` (or ``$TITAN_LEDGER``) when given; else ``ledger.sqlite`` in a local store,
    only if that file exists. ``(None, reason)`` when there is no ledger to read.
    """
    chosen = uri or os.environ.get("TITAN_LEDGER")
    if chosen:
        path = chosen.removeprefix("sqlite://")
        if not chosen.startswith("dynamodb://") and not os.path.isfile(path):
            return None, f"no ledger at {path} yet (no orders placed)"
        return open_ledger(chosen), chosen
    local = store.local_path(LEDGER_FILE)
    if local is None:
        return None, "no ledger configured for this S3 store (set TITAN_LEDGER)"
    if not local.is_file():
        return None, f"no ledger at {local} yet (no orders placed)"
    return open_ledger(str(local)), str(local)


def pair_name(model: SignalModel) -> str:
    """``"Y/X"`` of a model's legs."""
    return f"{model.y}/{model.x}"


def held_position(model: SignalModel, positions: list[Position]) -> int:
    """The spread position the ledger holds for ``model``: the sign of the ``y`` leg
    (long ``y`` is long the spread), :func:`titan_lib.core.serving.held_side`."""
    return held_side(model, pair_quantities(positions, model.model_id))


def read_snapshot(store: ObjectStore, ledger_uri: str | None = None) -> LiveSnapshot:
    """Evaluate every served model and read positions and P&L from the ledger."""
    models = {pm.model.model_id: pm.model for pm in list_models(store)}
    ledger, ledger_text = open_ledger_readonly(store, ledger_uri)
    positions = ledger.positions() if ledger is not None else []
    tails: dict[str, PriceTail | None] = {}

    def tail(symbol: str) -> PriceTail | None:
        if symbol not in tails:
            try:
                tails[symbol] = latest_prices(store, symbol)
            except TitanError:
                tails[symbol] = None
        return tails[symbol]

    def tail_of(symbol: str) -> PriceTail:
        found = tail(symbol)
        if found is None:
            raise NotFoundError(f"no serving prices for {symbol}", {"symbol": symbol})
        return found

    served = evaluate_served(
        models.values(), tail_of, position_of=lambda model: held_position(model, positions)
    )
    histories = {
        model_id: health_history(store, model_id, limit=HEALTH_HISTORY) for model_id in models
    }
    rows = [
        {
            **_signal_row(s, held_position(s.model, positions)),
            "health": health_label(histories[s.model.model_id]),
        }
        for s in served
    ]
    health_rows = [
        {
            "model": model_id[:12],
            "pair": pair_name(models[model_id]),
            "checked_at": record.checked_at[:19],
            "as_of": record.as_of,
            "state": record.state,
            "reason": record.reason,
        }
        for model_id, records in histories.items()
        for record in reversed(records)
    ]

    def last_close(symbol: str) -> float | None:
        last = tail(symbol)
        return last.last_close if last is not None else None

    marks = mark_to_market(positions, last_close)
    open_rows = [
        {
            "model": m.position.model_id[:12],
            "symbol": m.position.symbol,
            "quantity": m.position.quantity,
            "last_close": m.last_price,
            "market_value": m.market_value,
            "pnl": m.pnl,
        }
        for m in marks
        if is_open(m.position.quantity)
    ]
    pnl_rows = [
        {
            "model": model_id[:12],
            "pair": pair_name(models[model_id]) if model_id in models else "(not served)",
            "pnl": value,
        }
        for model_id, value in sorted(pnl_by_model(marks).items())
    ]
    updated = [t.updated_at for t in tails.values() if t is not None]
    return LiveSnapshot(
        signals=pl.DataFrame(rows, schema=_SIGNAL_SCHEMA),
        positions=pl.DataFrame(open_rows, schema=_POSITION_SCHEMA),
        pnl=pl.DataFrame(
            pnl_rows, schema={"model": pl.String, "pair": pl.String, "pnl": pl.Float64}
        ),
        models=models,
        prices_updated=max(updated) if updated else None,
        ledger=ledger_text,
        read_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        health=pl.DataFrame(health_rows, schema=_HEALTH_SCHEMA),
    )


def health_label(records: list[HealthRecord]) -> str:
    """The latest check as shown next to a model: ``healthy``, ``<state>: <reason>`` or
    ``never checked``."""
    if not records:
        return "never checked"
    latest = records[-1]
    return latest.state if not latest.reason else f"{latest.state}: {latest.reason}"


_SIGNAL_SCHEMA = {
    "model": pl.String,
    "pair": pl.String,
    "as_of": pl.String,
    "zscore": pl.Float64,
    "action": pl.String,
    "position": pl.Int64,
    "held": pl.Int64,
    "regime": pl.Int64,
    "reason": pl.String,
    "approval": pl.String,
    "health": pl.String,
}
_POSITION_SCHEMA = {
    "model": pl.String,
    "symbol": pl.String,
    "quantity": pl.Float64,
    "last_close": pl.Float64,
    "market_value": pl.Float64,
    "pnl": pl.Float64,
}


def approval_label(model: SignalModel) -> str:
    """The publish gate's verdict as shown next to a model: ``passed``, ``OVERRIDE: <reason>``
    (failed the gate, published under an override) or ``none recorded``."""
    approval = model.approval
    if approval is None:
        return "none recorded"
    if approval.passed:
        return "passed"
    if approval.override is not None:
        return f"OVERRIDE: {approval.override.reason}"
    return "FAILED"


def _signal_row(served: ServedSignal, held: int) -> dict[str, Any]:
    model = served.model
    row: dict[str, Any] = {
        "model": model.model_id[:12],
        "pair": pair_name(model),
        "as_of": None,
        "zscore": None,
        "action": None,
        "position": None,
        "held": held,
        "regime": None,
        "reason": None,
        "approval": approval_label(model),
    }
    if served.missing:
        row["reason"] = f"no serving prices for {', '.join(served.missing)}"
        return row
    signal = served.signal
    if signal is None:
        row["reason"] = served.error_message
        return row
    row.update(
        as_of=signal.as_of,
        zscore=signal.zscore,
        action=signal.action,
        position=signal.position,
        regime=signal.regime,
        reason=signal.explanation,
    )
    return row


def zscore_history(store: ObjectStore, model: SignalModel) -> pl.DataFrame:
    """The model's z-score and position over its serving price tails (``date``, ``z``,
    ``position``), replayed from flat by the serving evaluator
    (:func:`titan_lib.core.signal_path`, equal to the vectorised rules)."""
    path = signal_path(model, {symbol: latest_prices(store, symbol) for symbol in model.symbols})
    return pl.DataFrame(
        {
            "date": [date.fromisoformat(d) for d in path.dates],
            "z": [math.nan if z is None else z for z in path.zscores],
            "position": list(path.positions),
        },
        schema={"date": pl.Date, "z": pl.Float64, "position": pl.Int64},
    )
