"""Latest prices for serving, readable with the standard library only.

Ingest writes, next to the Parquet price dataset, one small JSON document per symbol with
its most recent closes: ``prices/latest/<SYMBOL>.json``::

    {"schema_version": 1, "symbol": "KO", "dates": ["2022-12-27", ...],
     "close": [63.1, ...], "updated_at": "2026-11-25T21:00:00+00:00"}

Dates are ISO strings in ascending order, closes are floats in the stored currency. The
Lambda reads these instead of Parquet, so it needs neither pyarrow nor polars.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from titan_lib.exceptions import DataValidationError, NotFoundError, SchemaVersionError
from titan_lib.stores.objects import ObjectStore

PRICE_TAIL_SCHEMA_VERSION = 1
PRICE_TAIL_LENGTH = 756
"""Closes kept per symbol in the serving tail: three years of trading days."""


def price_tail_key(symbol: str) -> str:
    """Store key of a symbol's serving tail."""
    return f"prices/latest/{symbol}.json"


@dataclass(frozen=True)
class PriceTail:
    """The most recent closes of one symbol, oldest first."""

    symbol: str
    dates: tuple[str, ...]
    close: tuple[float, ...]
    updated_at: str

    @property
    def last_date(self) -> str:
        """ISO date of the latest close."""
        return self.dates[-1]

    @property
    def last_close(self) -> float:
        """The latest close."""
        return self.close[-1]


def latest_prices(store: ObjectStore, symbol: str, n: int | None = None) -> PriceTail:
    """Read a symbol's serving tail from the store.

    Parameters
    ----------
    store
        An open object store.
    symbol
        The symbol, as stored.
    n
        Keep only the last ``n`` closes (all when ``None``).

    Raises
    ------
    NotFoundError
        The store has no prices for ``symbol``.
    """
    try:
        doc = json.loads(store.read_bytes(price_tail_key(symbol)))
    except NotFoundError:
        raise NotFoundError(
            f"no prices for symbol {symbol!r} in store {store.uri}", {"symbol": symbol}
        ) from None
    except ValueError as exc:
        raise DataValidationError(
            f"price tail of {symbol!r} in store {store.uri} is not valid JSON: {exc}",
            {"symbol": symbol},
        ) from None
    version = doc.get("schema_version")
    if version != PRICE_TAIL_SCHEMA_VERSION:
        raise SchemaVersionError(
            f"price tail of {symbol!r} has schema_version {version!r}; "
            f"this code reads {PRICE_TAIL_SCHEMA_VERSION}",
            {"symbol": symbol},
        )
    dates = tuple(doc["dates"])
    close = tuple(float(c) for c in doc["close"])
    if n is not None:
        dates, close = dates[-n:], close[-n:]
    return PriceTail(symbol=symbol, dates=dates, close=close, updated_at=str(doc["updated_at"]))
