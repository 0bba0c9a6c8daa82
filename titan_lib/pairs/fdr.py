"""Multiple-testing control: Benjamini-Hochberg q-values."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from titan_lib.exceptions import DataValidationError, ParameterError


def benjamini_hochberg(pvalues: ArrayLike, n_tests: int | None = None) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (q-values) of a family of tests.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the non-missing p-values sorted
    ascending. Rejecting every test with ``q <= alpha`` controls the false discovery rate at
    ``alpha`` (independent or positively dependent tests). NaN p-values get NaN q-values.

    Parameters
    ----------
    pvalues
        One-dimensional p-values in [0, 1]; NaN for a test without a result.
    n_tests
        ``m``, the size of the family: every hypothesis that was a candidate, including
        those not tested here (pre-screened out, too little data), which count as
        ``p = 1`` (conservative: a p-value of 1 is never rejected and only raises ``m``).
        At least the number of non-missing p-values. Default: that number.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise DataValidationError(f"p-values must be one-dimensional, got {p.shape}", {})
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if n_tests is not None and (
        isinstance(n_tests, bool) or not isinstance(n_tests, int | np.integer) or n_tests < ok.size
    ):
        raise ParameterError(
            f"n_tests must be a whole number >= the {ok.size} p-values given, got {n_tests!r}",
            {"parameter": "n_tests"},
        )
    if ok.size == 0:
        return q
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise DataValidationError("p-values must lie in [0, 1]", {})
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size if n_tests is None else int(n_tests)
    scaled = p[order] * m / np.arange(1, order.size + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return q
