"""Data of the live-signals dashboard: published models, their signals, the ledger.

Each served model is evaluated with :func:`titan_lib.core.evaluate` on the serving price
tails (``prices/latest/<SYMBOL>.json``), from the position the ledger holds for it (so the
action is what production would do next). Positions and P&L come from the order ledger:
mark-to-market P&L of a symbol is ``cash + quantity * last close``. Nothing is written:
a SQLite ledger that does not exist yet is reported as empty, not created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from titan_lib.core import PriceTail, SignalModel, evaluate, latest_prices, list_models
from titan_lib.core.execution import Ledger, Position, open_ledger
from titan_lib.exceptions import TitanError
from titan_lib.stores.objects import ObjectStore

LEDGER_FILE = "ledger.sqlite"


@dataclass(frozen=True)
class LiveSnapshot:
    """Everything the page shows, read at ``read_at``.

    Attributes
    ----------
    signals
        One row per served model: ``model``, ``pair``, ``as_of``, ``zscore``, ``action``,
        ``position`` (target), ``held`` (ledger), ``regime``, ``reason``.
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
    """

    signals: pl.DataFrame
    positions: pl.DataFrame
    pnl: pl.DataFrame
    models: dict[str, SignalModel]
    prices_updated: str | None
    ledger: str
    read_at: str


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
    (long ``y`` is long the spread)."""
    for p in positions:
        if p.model_id == model.model_id and p.symbol == model.y and abs(p.quantity) > 1e-12:
            return 1 if p.quantity > 0 else -1
    return 0


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

    rows = [_signal_row(model, positions, tail) for model in models.values()]
    open_rows = []
    pnl_by_model: dict[str, float] = {}
    for p in positions:
        last = tail(p.symbol)
        close = last.last_close if last is not None else None
        pnl = p.cash + p.quantity * close if close is not None else None
        if pnl is not None:
            pnl_by_model[p.model_id] = pnl_by_model.get(p.model_id, 0.0) + pnl
        if abs(p.quantity) > 1e-12:
            open_rows.append(
                {
                    "model": p.model_id[:12],
                    "symbol": p.symbol,
                    "quantity": p.quantity,
                    "last_close": close,
                    "market_value": p.quantity * close if close is not None else None,
                    "pnl": pnl,
                }
            )
    pnl_rows = [
        {
            "model": model_id[:12],
            "pair": pair_name(models[model_id]) if model_id in models else "(not served)",
            "pnl": value,
        }
        for model_id, value in sorted(pnl_by_model.items())
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
    )


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
}
_POSITION_SCHEMA = {
    "model": pl.String,
    "symbol": pl.String,
    "quantity": pl.Float64,
    "last_close": pl.Float64,
    "market_value": pl.Float64,
    "pnl": pl.Float64,
}


def _signal_row(model: SignalModel, positions: list[Position], tail: Any) -> dict[str, Any]:
    held = held_position(model, positions)
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
    }
    series = {s: tail(s) for s in model.symbols}
    missing = [s for s, t in series.items() if t is None]
    if missing:
        row["reason"] = f"no serving prices for {', '.join(missing)}"
        return row
    try:
        signal = evaluate(model, series, position=held)
    except TitanError as exc:
        row["reason"] = exc.message
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
    """The model's z-score and position over its serving price tails, via the
    vectorised rules (``date``, ``z``, ``position``)."""
    from titan_lib.signals import model_positions

    frames = []
    for symbol in model.symbols:
        t = latest_prices(store, symbol)
        frames.append(
            pl.DataFrame(
                {"date": list(t.dates), "symbol": symbol, "close": list(t.close)},
                schema={"date": pl.String, "symbol": pl.String, "close": pl.Float64},
            )
        )
    prices = pl.concat(frames).with_columns(pl.col("date").str.to_date())
    return model_positions(model, prices).select("date", "z", "position")
