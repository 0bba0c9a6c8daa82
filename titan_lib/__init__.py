"""TITAN: a pairs-trading research environment with a serverless production side.

This top-level package stays import-light (standard library only) because the Lambda
package imports :mod:`titan_lib.core` through it. Research modules live in subpackages:
:mod:`titan_lib.data`, :mod:`titan_lib.pairs`, :mod:`titan_lib.regimes`,
:mod:`titan_lib.signals`, :mod:`titan_lib.backtest`, :mod:`titan_lib.runner`.
"""

from titan_lib.exceptions import TitanError

__version__ = "0.1.0"

__all__ = ["TitanError", "__version__"]
