"""The price data layer: validated ingest into a Parquet price dataset, queried with polars.

Public names: :func:`ingest`, :func:`ingest_frame`, :func:`load_prices`,
:func:`list_symbols`, :func:`sample_prices`, :func:`wide_closes`, :class:`IngestReport`.
The synthetic generator lives in :mod:`titan_lib.data.synthetic`.
"""

from titan_lib.data.ingest import IngestReport, ingest, ingest_frame
from titan_lib.data.query import list_symbols, load_prices, sample_prices, wide_closes

__all__ = [
    "IngestReport",
    "ingest",
    "ingest_frame",
    "list_symbols",
    "load_prices",
    "sample_prices",
    "wide_closes",
]
