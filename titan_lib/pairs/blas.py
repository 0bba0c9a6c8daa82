"""Level-3 BLAS products that release the GIL, so several run at once in Python threads.

``scipy.linalg.blas`` holds the GIL during the call, so threads calling it run one after
another. These call the same routines (scipy's BLAS, through the function pointers that
``scipy.linalg.cython_blas`` exports) with ``ctypes``, which releases the GIL for the call.
Every array is Fortran-ordered float64; the caller limits BLAS to one thread per call.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

_INT = ctypes.POINTER(ctypes.c_int)
_DBL = ctypes.POINTER(ctypes.c_double)
_CHR = ctypes.c_char_p


@cache
def _routine(name: str, *argtypes: Any) -> Any:
    import scipy.linalg.cython_blas as cython_blas

    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    capsule = cython_blas.__pyx_capi__[name]
    pointer = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    return ctypes.CFUNCTYPE(None, *argtypes)(pointer)


def _check(*arrays: NDArray[np.float64]) -> None:
    for a in arrays:
        if a.dtype != np.float64 or not a.flags.f_contiguous:
            raise ValueError("BLAS operands must be Fortran-ordered float64 arrays")


def _i(v: int) -> Any:
    return ctypes.byref(ctypes.c_int(v))


def _d(v: float) -> Any:
    return ctypes.byref(ctypes.c_double(v))


def syrk_upper(a: NDArray[np.float64], c: NDArray[np.float64]) -> None:
    """Write the upper triangle of ``a' a`` into ``c`` (``a`` is k x n, ``c`` n x n).

    The strict lower triangle of ``c`` is left as it was.
    """
    _check(a, c)
    k, n = a.shape
    if c.shape != (n, n):
        raise ValueError(f"c must be {n} x {n}, got {c.shape}")
    dsyrk = _routine("dsyrk", _CHR, _CHR, _INT, _INT, _DBL, _DBL, _INT, _DBL, _DBL, _INT)
    dsyrk(
        b"U", b"T", _i(n), _i(k), _d(1.0), a.ctypes.data_as(_DBL), _i(max(1, k)),
        _d(0.0), c.ctypes.data_as(_DBL), _i(max(1, n)),
    )  # fmt: skip


def gemm_tn(a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64]) -> None:
    """Write ``a' b`` into ``c`` (``a`` is k x m, ``b`` k x n, ``c`` m x n)."""
    _check(a, b, c)
    k, m = a.shape
    if b.shape[0] != k or c.shape != (m, b.shape[1]):
        raise ValueError(f"shapes do not conform: a {a.shape}, b {b.shape}, c {c.shape}")
    n = b.shape[1]
    dgemm = _routine(
        "dgemm", _CHR, _CHR, _INT, _INT, _INT, _DBL, _DBL, _INT, _DBL, _INT, _DBL, _DBL, _INT
    )
    dgemm(
        b"T", b"N", _i(m), _i(n), _i(k), _d(1.0), a.ctypes.data_as(_DBL), _i(max(1, k)),
        b.ctypes.data_as(_DBL), _i(max(1, k)), _d(0.0), c.ctypes.data_as(_DBL), _i(max(1, m)),
    )  # fmt: skip
