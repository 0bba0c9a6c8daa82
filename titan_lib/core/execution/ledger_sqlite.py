"""The order ledger in a SQLite file (the embedded default).

Each thread has its own connection; writes run in ``BEGIN IMMEDIATE`` transactions, so
SQLite's file lock makes every check-then-write below atomic across threads and
processes. WAL journaling lets readers proceed while one writer commits.
"""

from __future__ import annotations

import json
import os
import sqlite3

from titan_lib.core.execution.ledger import utc_now_iso
from titan_lib.core.execution.models import Fill, KillSwitch, Order, OrderStatus, Position
from titan_lib.core.execution.principals import (
    PrincipalLimits,
    PrincipalOrder,
    PrincipalProfile,
    PrincipalUsage,
    Refusal,
    apply_order,
)
from titan_lib.core.execution.sliding_window import Admission, admit
from titan_lib.core.sqlite_tables import SQLiteTables
from titan_lib.exceptions import ConflictError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, status TEXT NOT NULL, created_at TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, filled_at TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    model_id TEXT NOT NULL, symbol TEXT NOT NULL, quantity REAL NOT NULL, cash REAL NOT NULL,
    PRIMARY KEY (model_id, symbol));
CREATE TABLE IF NOT EXISTS pair_locks (
    model_id TEXT PRIMARY KEY, holder TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rate_admissions (principal TEXT PRIMARY KEY, stamps TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS principals (principal TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS principal_usage (principal TEXT PRIMARY KEY, doc TEXT NOT NULL);
"""


class SQLiteLedger:
    """Ledger in one SQLite file.

    Parameters
    ----------
    path
        The database file; its folder is created if needed.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._tables = SQLiteTables(path, _SCHEMA, "the ledger")
        self.path = self._tables.path
        self.uri = self._tables.uri
        self._conn = self._tables.read
        self._write = self._tables.write

    def _order_row(self, conn: sqlite3.Connection, order_id: str) -> Order | None:
        row = conn.execute("SELECT doc FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else Order.from_dict(json.loads(row[0]))

    def claim_order(self, order: Order) -> tuple[Order, bool]:
        with self._write() as conn:
            existing = self._order_row(conn, order.order_id)
            if existing is not None:
                return existing, False
            conn.execute(
                "INSERT INTO orders (order_id, status, created_at, doc) VALUES (?, ?, ?, ?)",
                (order.order_id, order.status, order.created_at, json.dumps(order.to_dict())),
            )
        return order, True

    def get_order(self, order_id: str) -> Order | None:
        return self._order_row(self._conn(), order_id)

    def list_orders(self, status: OrderStatus | None = None) -> list[Order]:
        sql = "SELECT doc FROM orders"
        args: tuple[str, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        rows = self._conn().execute(sql + " ORDER BY created_at, order_id", args).fetchall()
        return [Order.from_dict(json.loads(row[0])) for row in rows]

    def update_order(self, order: Order) -> Order:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE orders SET status = ?, doc = ? WHERE order_id = ? AND status = 'pending'",
                (order.status, json.dumps(order.to_dict()), order.order_id),
            )
            if cursor.rowcount != 1:
                raise ConflictError(
                    f"order {order.order_id} is no longer pending; it was not changed",
                    {"order_id": order.order_id},
                )
        return order

    def record_fill(self, fill: Fill) -> Order:
        with self._write() as conn:
            order = self._order_row(conn, fill.order_id)
            if order is None:
                raise ConflictError(
                    f"fill {fill.fill_id} refers to unknown order {fill.order_id}",
                    {"order_id": fill.order_id},
                )
            if order.fill_id == fill.fill_id:
                return order
            if order.status != "pending":
                raise ConflictError(
                    f"order {order.order_id} is {order.status}; fill {fill.fill_id} refused",
                    {"order_id": order.order_id, "status": order.status},
                )
            conn.execute(
                "INSERT INTO fills (fill_id, order_id, filled_at, doc) VALUES (?, ?, ?, ?)",
                (fill.fill_id, fill.order_id, fill.filled_at, json.dumps(fill.to_dict())),
            )
            for leg in fill.legs:
                conn.execute(
                    "INSERT INTO positions (model_id, symbol, quantity, cash) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (model_id, symbol) DO UPDATE SET"
                    " quantity = quantity + excluded.quantity, cash = cash + excluded.cash",
                    (fill.model_id, leg.symbol, leg.quantity, -leg.quantity * leg.price),
                )
            filled = order.with_changes(
                status="filled", fill_id=fill.fill_id, updated_at=utc_now_iso(), submitted=True
            )
            conn.execute(
                "UPDATE orders SET status = ?, doc = ? WHERE order_id = ?",
                (filled.status, json.dumps(filled.to_dict()), filled.order_id),
            )
        return filled

    def list_fills(self) -> list[Fill]:
        rows = self._conn().execute("SELECT doc FROM fills ORDER BY filled_at, fill_id").fetchall()
        return [Fill.from_dict(json.loads(row[0])) for row in rows]

    def positions(self) -> list[Position]:
        rows = (
            self._conn()
            .execute(
                "SELECT model_id, symbol, quantity, cash FROM positions ORDER BY model_id, symbol"
            )
            .fetchall()
        )
        return [Position(model_id=r[0], symbol=r[1], quantity=r[2], cash=r[3]) for r in rows]

    def acquire_pair(
        self, model_id: str, order_id: str, now: float, lease_seconds: float
    ) -> str | None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT holder, expires FROM pair_locks WHERE model_id = ?", (model_id,)
            ).fetchone()
            if row is not None and row[0] != order_id and row[1] >= now:
                return str(row[0])
            conn.execute(
                "INSERT INTO pair_locks (model_id, holder, expires) VALUES (?, ?, ?)"
                " ON CONFLICT (model_id) DO UPDATE SET holder = excluded.holder,"
                " expires = excluded.expires",
                (model_id, order_id, now + lease_seconds),
            )
        return None

    def release_pair(self, model_id: str, order_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                "DELETE FROM pair_locks WHERE model_id = ? AND holder = ?", (model_id, order_id)
            )

    def pair_holder(self, model_id: str) -> tuple[str, float] | None:
        row = (
            self._conn()
            .execute("SELECT holder, expires FROM pair_locks WHERE model_id = ?", (model_id,))
            .fetchone()
        )
        return None if row is None else (str(row[0]), float(row[1]))

    def admit_request(
        self, principal: str, now: float, limit: int, window_seconds: float
    ) -> Admission:
        with self._write() as conn:
            row = conn.execute(
                "SELECT stamps FROM rate_admissions WHERE principal = ?", (principal,)
            ).fetchone()
            outcome = admit(json.loads(row[0]) if row else [], now, limit, window_seconds)
            if outcome.admitted:
                conn.execute(
                    "INSERT INTO rate_admissions (principal, stamps) VALUES (?, ?)"
                    " ON CONFLICT (principal) DO UPDATE SET stamps = excluded.stamps",
                    (principal, json.dumps(outcome.stamps)),
                )
        return outcome

    def kill_switch(self) -> KillSwitch:
        row = self._conn().execute("SELECT doc FROM settings WHERE name = 'kill_switch'").fetchone()
        return KillSwitch(on=False) if row is None else KillSwitch(**json.loads(row[0]))

    def set_kill_switch(self, state: KillSwitch) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO settings (name, doc) VALUES ('kill_switch', ?)"
                " ON CONFLICT (name) DO UPDATE SET doc = excluded.doc",
                (json.dumps(state.to_dict()),),
            )

    def principal_profile(self, subject: str) -> PrincipalProfile | None:
        row = (
            self._conn()
            .execute("SELECT doc FROM principals WHERE principal = ?", (subject,))
            .fetchone()
        )
        return None if row is None else PrincipalProfile.from_dict(json.loads(row[0]))

    def set_principal_profile(self, profile: PrincipalProfile) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO principals (principal, doc) VALUES (?, ?)"
                " ON CONFLICT (principal) DO UPDATE SET doc = excluded.doc",
                (profile.subject, json.dumps(profile.to_dict())),
            )

    def list_principals(self) -> list[PrincipalProfile]:
        rows = self._conn().execute("SELECT doc FROM principals ORDER BY principal").fetchall()
        return [PrincipalProfile.from_dict(json.loads(row[0])) for row in rows]

    def _usage_row(self, conn: sqlite3.Connection, subject: str) -> PrincipalUsage:
        row = conn.execute(
            "SELECT doc FROM principal_usage WHERE principal = ?", (subject,)
        ).fetchone()
        return (
            PrincipalUsage(subject) if row is None else PrincipalUsage.from_dict(json.loads(row[0]))
        )

    def principal_usage(self, subject: str) -> PrincipalUsage:
        return self._usage_row(self._conn(), subject)

    def reserve_usage(
        self, subject: str, limits: PrincipalLimits, order: PrincipalOrder, day: str
    ) -> tuple[PrincipalUsage, Refusal | None]:
        with self._write() as conn:
            usage, refusal = apply_order(self._usage_row(conn, subject), limits, order, day)
            if refusal is None:
                conn.execute(
                    "INSERT INTO principal_usage (principal, doc) VALUES (?, ?)"
                    " ON CONFLICT (principal) DO UPDATE SET doc = excluded.doc",
                    (subject, json.dumps(usage.to_dict())),
                )
        return usage, refusal
