"""Price providers by name, and fetching into the store through the validated ingest.

A provider is any object with a ``name`` and a ``fetch(symbols, start, end)`` method that
returns long-form bars (see :class:`PriceProvider`). It is made from the environment by a
factory registered under its name:

- in code: ``register_provider("myvendor", factory)`` where ``factory(environ, retry)``
  returns the provider (``environ`` a mapping or ``None`` for ``os.environ``, ``retry``
  a :class:`~titan_lib.data.providers.http.RetryPolicy`);
- from an installed package, without touching TITAN: an entry point in the group
  ``titan_lib.price_providers`` whose name is the provider's and whose object is the
  factory, e.g. in ``pyproject.toml``::

      [project.entry-points."titan_lib.price_providers"]
      myvendor = "mypackage.prices:open_myvendor"

Then ``titan data fetch KO PEP --provider myvendor --start 2015-01-01`` works. Whatever a
provider returns goes through :func:`titan_lib.data.ingest_frame`, the validation and
atomic commit of ``titan data ingest``: a provider needs no checks of its own, and a
failed fetch stores nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Protocol, runtime_checkable

import polars as pl

from titan_lib.data.ingest import IngestReport, ingest_frame
from titan_lib.data.providers.http import RetryPolicy
from titan_lib.exceptions import DataValidationError, ParameterError

ENTRY_POINT_GROUP = "titan_lib.price_providers"
FRAME_NAME = "<frame>"
"""How the ingest names an in-memory frame in its messages."""


@runtime_checkable
class PriceProvider(Protocol):
    """What ``titan data fetch`` needs from a market-data source."""

    name: str

    def fetch(
        self, symbols: Sequence[str], start: dt.date, end: dt.date | None = None
    ) -> pl.DataFrame:
        """Daily bars of ``symbols`` from ``start`` to ``end`` (inclusive; ``None``: the
        latest), in long form: ``date`` (session date), ``symbol``, ``close`` (adjusted
        for splits and dividends) and optionally ``open, high, low, volume``.

        Raise a :class:`~titan_lib.exceptions.TitanError` subclass naming the symbol or
        request on failure; return only when every symbol's bars are complete.
        """
        ...


ProviderFactory = Callable[[Mapping[str, str] | None, RetryPolicy], PriceProvider]
"""Builds a provider from an environment mapping (``None``: ``os.environ``) and the
retry policy the user chose (an HTTP provider should honour it)."""


def _alpaca(environ: Mapping[str, str] | None, retry: RetryPolicy) -> PriceProvider:
    from titan_lib.data.providers.alpaca import AlpacaBars, AlpacaDataSettings

    return AlpacaBars(AlpacaDataSettings.from_env(environ, retry=retry))


_FACTORIES: dict[str, ProviderFactory] = {"alpaca": _alpaca}


def register_provider(name: str, factory: ProviderFactory) -> None:
    """Make ``factory`` the provider called ``name`` (replaces an earlier one)."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ParameterError(f"a provider name is letters, digits, - and _, got {name!r}")
    _FACTORIES[name] = factory


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def provider_names() -> list[str]:
    """Every provider name: registered in code and installed as entry points."""
    return sorted({*_FACTORIES, *_entry_points()})


def open_provider(
    name: str, environ: Mapping[str, str] | None = None, retry: RetryPolicy | None = None
) -> PriceProvider:
    """The provider called ``name``, configured from ``environ`` (default ``os.environ``)
    and ``retry`` (default :class:`RetryPolicy()`).

    Raises
    ------
    ParameterError
        No provider has that name (the message lists those that exist), or its settings
        are missing or wrong.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        entry = _entry_points().get(name)
        if entry is None:
            raise ParameterError(
                f"unknown price provider {name!r}; available: {', '.join(provider_names())}",
                {"provider": name, "available": provider_names()},
            )
        factory = entry.load()
    return factory(environ, retry or RetryPolicy())


def _naming_symbol(
    error: DataValidationError, bars: pl.DataFrame, provider: str
) -> DataValidationError:
    """The validation error of fetched bars, naming the symbol of its first problem."""
    problems = error.details.get("problems") or []
    row = problems[0].get("row") if problems else None
    if not isinstance(row, int) or not 1 <= row <= bars.height:
        return error
    symbol = bars.get_column("symbol")[row - 1]
    message = error.message.removeprefix(f"{FRAME_NAME}, ")
    return DataValidationError(
        f"{provider} bars of {symbol}: {message}",
        {**error.details, "provider": provider, "symbol": symbol},
    )


def fetch_prices(
    symbols: Sequence[str],
    *,
    start: dt.date,
    end: dt.date | None = None,
    provider: str | PriceProvider = "alpaca",
    store: str | None = None,
    environ: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
) -> IngestReport:
    """Fetch daily bars from a provider and ingest them into the store.

    Parameters
    ----------
    symbols
        Tickers as the provider spells them.
    start, end
        First and last session wanted (``end=None``: up to the latest bar).
    provider
        A provider name (see :func:`provider_names`) or a provider object.
    store
        Store URI; ``$TITAN_STORE`` or ``./titan-data`` when omitted.
    environ
        Where a named provider reads its settings (default ``os.environ``).
    retry
        Retries, timeouts and waits of a named provider (default :class:`RetryPolicy()`).

    Returns
    -------
    IngestReport
        The ingest's report; its source reads ``<provider>:<symbols>``.

    Raises
    ------
    TitanError
        The provider failed or the bars failed validation; nothing was written.
    """
    if end is not None and end < start:
        raise ParameterError(f"--end {end} is before --start {start}")
    source = open_provider(provider, environ, retry) if isinstance(provider, str) else provider
    bars = source.fetch(symbols, start, end)
    label = f"{source.name}:{','.join(sorted(bars.get_column('symbol').unique()))}"
    try:
        report = ingest_frame(bars, store=store, sources=[label])
    except DataValidationError as exc:
        raise _naming_symbol(exc, bars, source.name) from None
    log = getattr(source, "log", None)
    if log is not None:
        requests = f"{log.requests} request{'s' if log.requests != 1 else ''}"
        retries = f"{log.retries} retr{'ies' if log.retries != 1 else 'y'}"
        report.notes.append(
            f"fetched from {source.name} in {requests} ({retries}, {log.waited_s:.1f} s waiting)"
        )
    return report
