"""Market-data providers: bring your own prices into the store.

``titan data fetch KO PEP --provider alpaca --start 2015-01-01`` (or :func:`fetch_prices`)
asks a provider for adjusted daily bars and hands them to the same validated, atomic
ingest as ``titan data ingest``. Built in: ``alpaca`` (:mod:`.alpaca`, Alpaca's bars API
over the standard library, with retries, backoff and rate-limit waits from :mod:`.http`).
Other sources plug in by name: a :class:`PriceProvider` and a factory registered with
:func:`register_provider` or installed as an entry point (see :mod:`.registry`).
"""

from titan_lib.data.providers.http import (
    ProviderRejectedError,
    ProviderUnavailableError,
    RetryPolicy,
)
from titan_lib.data.providers.registry import (
    PriceProvider,
    ProviderFactory,
    fetch_prices,
    open_provider,
    provider_names,
    register_provider,
)

__all__ = [
    "PriceProvider",
    "ProviderFactory",
    "ProviderRejectedError",
    "ProviderUnavailableError",
    "RetryPolicy",
    "fetch_prices",
    "open_provider",
    "provider_names",
    "register_provider",
]
