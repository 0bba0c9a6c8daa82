"""Core model objects and pure-Python production logic.

Standard library only (plus small pure-Python dependencies such as PyJWT): the Lambda
package imports this package, so numpy, pandas, polars, statsmodels and vectorbt are never
imported here, directly or indirectly. ``tests/test_core_imports.py`` enforces it.
"""

from titan_lib.core.prices import PriceTail, latest_prices, price_tail_key

__all__ = ["PriceTail", "latest_prices", "price_tail_key"]
