"""Multiple-testing control: Benjamini-Hochberg q-values."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from titan_lib.exceptions import DataValidationError


def benjamini_hochberg(pvalues: ArrayLike) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (q-values) of a family of tests.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the m non-missing p-values sorted
    ascending. Rejecting every test with ``q <= alpha`` controls the false discovery rate at
    ``alpha`` (independent or positively dependent tests). NaN p-values are not counted in
    ``m`` and get NaN q-values.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise DataValidationError(f"p-values must be one-dimensional, got {p.shape}", {})
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size == 0:
        return q
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise DataValidationError("p-values must lie in [0, 1]", {})
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    scaled = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return q
