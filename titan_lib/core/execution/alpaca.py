"""Alpaca broker adapter over its REST order API, with the standard library only.

Endpoints used (``{base}`` is ``https://paper-api.alpaca.markets`` for paper trading or
``https://api.alpaca.markets`` for live, or ``TITAN_ALPACA_BASE_URL``):

- ``POST {base}/v2/orders``: a market, day order per leg, with ``client_order_id``;
- ``GET {base}/v2/orders/{id}``: polled until the order is filled;
- ``GET {base}/v2/orders:by_client_order_id?client_order_id=...``: lookup after a crash,
  and after a 422 "client_order_id must be unique" on a repeated submission.

Status mapping: 2xx ok; other 4xx (except 408/429) -> :class:`BrokerRejectedError`
(definitive); 408, 429, 5xx, timeouts and network errors ->
:class:`BrokerUnavailableError` (outcome unknown, reconciled later).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from titan_lib.core.auth import read_secret
from titan_lib.core.execution.broker import (
    BrokerRejectedError,
    BrokerUnavailableError,
    Execution,
    leg_client_id,
)
from titan_lib.core.execution.models import FillLeg, OrderLeg
from titan_lib.exceptions import ParameterError

AlpacaMode = Literal["paper", "live"]
BASE_URLS: dict[str, str] = {
    "paper": "https://paper-api.alpaca.markets",
    "live": "https://api.alpaca.markets",
}
_DEAD_STATUSES = frozenset({"canceled", "expired", "rejected", "suspended", "stopped"})


def alpaca_credentials(
    environ: Mapping[str, str] | None = None, purpose: str = "Alpaca"
) -> tuple[str, str]:
    """The Alpaca API key id and secret key: ``TITAN_ALPACA_KEY_ID`` and
    ``TITAN_ALPACA_SECRET_KEY``, or SSM parameters named by their ``_SSM`` variants.

    Raises
    ------
    ParameterError
        Either is missing; the message starts with ``purpose``.
    """
    key_id = read_secret("TITAN_ALPACA_KEY_ID", environ)
    secret = read_secret("TITAN_ALPACA_SECRET_KEY", environ)
    if not key_id or not secret:
        raise ParameterError(
            f"{purpose} needs TITAN_ALPACA_KEY_ID and TITAN_ALPACA_SECRET_KEY "
            "(or their _SSM parameter names)"
        )
    return key_id, secret


@dataclass(frozen=True)
class AlpacaSettings:
    """Connection settings; credentials never appear in ``repr``."""

    key_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    base_url: str = BASE_URLS["paper"]
    timeout_seconds: float = 10.0
    fill_timeout_seconds: float = 30.0
    poll_seconds: float = 0.5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AlpacaSettings:
        """``TITAN_ALPACA_KEY_ID`` / ``TITAN_ALPACA_SECRET_KEY`` (or their ``_SSM`` names),
        ``TITAN_ALPACA_MODE`` (``paper``/``live``) or ``TITAN_ALPACA_BASE_URL``."""
        env = os.environ if environ is None else environ
        key_id, secret = alpaca_credentials(env, "the Alpaca broker")
        mode = env.get("TITAN_ALPACA_MODE", "paper")
        if mode not in BASE_URLS:
            raise ParameterError(f"TITAN_ALPACA_MODE must be paper or live, got {mode!r}")
        return cls(
            key_id=key_id,
            secret_key=secret,
            base_url=env.get("TITAN_ALPACA_BASE_URL") or BASE_URLS[mode],
        )


class AlpacaBroker:
    """Places each leg as a market order on Alpaca and waits for its fill."""

    name = "alpaca"

    def __init__(self, settings: AlpacaSettings) -> None:
        self.settings = settings

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        url = self.settings.base_url.rstrip("/") + path
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("APCA-API-KEY-ID", self.settings.key_id)
        request.add_header("APCA-API-SECRET-KEY", self.settings.secret_key)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (TimeoutError, OSError) as exc:
            raise BrokerUnavailableError(
                f"Alpaca {method} {path} failed: {type(exc).__name__}: {exc}",
                {"path": path},
            ) from None
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = {"message": raw[:200].decode("utf-8", errors="replace")}
        return status, payload

    @staticmethod
    def _message(payload: Any) -> str:
        if isinstance(payload, dict):
            return str(payload.get("message", payload))[:300]
        return str(payload)[:300]

    def _check(self, status: int, payload: Any, what: str) -> Any:
        if 200 <= status < 300:
            return payload
        if status in (408, 429) or status >= 500:
            raise BrokerUnavailableError(
                f"Alpaca {what}: HTTP {status}: {self._message(payload)}", {"status": status}
            )
        raise BrokerRejectedError(
            f"Alpaca {what}: HTTP {status}: {self._message(payload)}", {"status": status}
        )

    def _by_client_id(self, leg_id: str) -> dict[str, Any] | None:
        query = urllib.parse.urlencode({"client_order_id": leg_id})
        status, payload = self._request("GET", f"/v2/orders:by_client_order_id?{query}")
        if status == 404:
            return None
        return self._check(status, payload, f"lookup of {leg_id}")  # type: ignore[no-any-return]

    def _wait_filled(self, order: dict[str, Any], leg: OrderLeg) -> FillLeg:
        deadline = time.monotonic() + self.settings.fill_timeout_seconds
        while True:
            state = str(order.get("status", ""))
            if state == "filled":
                return self._fill_leg(order, leg)
            if state in _DEAD_STATUSES:
                raise BrokerRejectedError(
                    f"Alpaca order {order.get('id')} for {leg.symbol} ended {state}",
                    {"symbol": leg.symbol, "status": state},
                )
            if time.monotonic() >= deadline:
                raise BrokerUnavailableError(
                    f"Alpaca order {order.get('id')} for {leg.symbol} not filled within "
                    f"{self.settings.fill_timeout_seconds:g}s (status {state})",
                    {"symbol": leg.symbol, "status": state},
                )
            time.sleep(self.settings.poll_seconds)
            status, payload = self._request("GET", f"/v2/orders/{order['id']}")
            order = self._check(status, payload, f"status of {order['id']}")

    @staticmethod
    def _fill_leg(order: dict[str, Any], leg: OrderLeg) -> FillLeg:
        qty = float(order.get("filled_qty") or 0.0)
        sign = 1.0 if order.get("side") == "buy" else -1.0
        return FillLeg(
            symbol=str(order.get("symbol", leg.symbol)),
            quantity=sign * qty,
            price=float(order.get("filled_avg_price") or 0.0),
            broker_order_id=str(order.get("id", "")),
        )

    def submit(self, client_order_id: str, legs: Sequence[OrderLeg]) -> Execution:
        fills = []
        for index, leg in enumerate(legs):
            leg_id = leg_client_id(client_order_id, index)
            body = {
                "symbol": leg.symbol,
                "qty": f"{abs(leg.quantity):g}",
                "side": "buy" if leg.quantity > 0 else "sell",
                "type": "market",
                "time_in_force": "day",
                "client_order_id": leg_id,
            }
            status, payload = self._request("POST", "/v2/orders", body)
            if status == 422 and "client_order_id" in self._message(payload):
                order = self._by_client_id(leg_id)  # submitted before: pick up that order
                if order is None:
                    self._check(status, payload, f"order {leg_id}")
            else:
                order = self._check(status, payload, f"order {leg_id}")
            assert order is not None
            fills.append(self._wait_filled(order, leg))
        return Execution(legs=tuple(fills), complete=True)

    def lookup(self, client_order_id: str, legs: Sequence[OrderLeg]) -> Execution | None:
        fills = []
        for index, leg in enumerate(legs):
            order = self._by_client_id(leg_client_id(client_order_id, index))
            if order is None:
                continue
            if order.get("status") == "filled":
                fills.append(self._fill_leg(order, leg))
            elif order.get("status") not in _DEAD_STATUSES:
                raise BrokerUnavailableError(
                    f"Alpaca order {order.get('id')} for {leg.symbol} is still "
                    f"{order.get('status')}; reconcile again later",
                    {"symbol": leg.symbol},
                )
        if not fills:
            return None
        return Execution(legs=tuple(fills), complete=len(fills) == len(legs))
