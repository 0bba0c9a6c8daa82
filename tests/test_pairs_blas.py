"""The GIL-free BLAS products equal scipy's and run side by side in threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy.linalg.blas import dgemm, dsyrk
from threadpoolctl import threadpool_limits

from titan_lib.pairs.blas import gemm_tn, syrk_upper


def test_products_equal_scipys_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    a = np.asfortranarray(rng.normal(size=(300, 40)))
    b = np.asfortranarray(rng.normal(size=(300, 25)))
    c = np.full((40, 40), 7.0, order="F")
    syrk_upper(a, c)
    upper = np.triu(np.ones((40, 40), dtype=bool))
    assert np.array_equal(c[upper], dsyrk(1.0, a, trans=1)[upper])
    assert np.all(c[~upper] == 7.0)  # the strict lower triangle is left alone
    g = np.empty((40, 25), order="F")
    gemm_tn(a, b, g)
    assert np.array_equal(g, dgemm(1.0, a, b, trans_a=1))
    assert np.allclose(g, a.T @ b, rtol=1e-12, atol=1e-12)


def test_threads_give_the_same_products_as_one_thread() -> None:
    rng = np.random.default_rng(12)
    blocks = [np.asfortranarray(rng.normal(size=(500, 60))) for _ in range(6)]

    def product(a: np.ndarray) -> np.ndarray:
        out = np.zeros((60, 60), order="F")
        syrk_upper(a, out)
        return out

    with threadpool_limits(1, user_api="blas"):
        alone = [product(a) for a in blocks]
        with ThreadPoolExecutor(2) as pool:
            together = list(pool.map(product, blocks))
    assert all(np.array_equal(x, y) for x, y in zip(alone, together, strict=True))


def test_wrong_operands_are_refused() -> None:
    a = np.ones((5, 3))  # C order
    with pytest.raises(ValueError, match="Fortran-ordered float64"):
        syrk_upper(a, np.zeros((3, 3), order="F"))
    f = np.asfortranarray(a)
    with pytest.raises(ValueError, match="c must be 3 x 3"):
        syrk_upper(f, np.zeros((2, 2), order="F"))
    with pytest.raises(ValueError, match="shapes do not conform"):
        gemm_tn(f, np.ones((4, 2), order="F"), np.zeros((3, 2), order="F"))
