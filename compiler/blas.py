"""The BLAS matrix product NumPy itself calls, found so that generated drivers call it too.

A whole-pass driver (drivers.py) runs every step of a pass inside one Numba function, so
its per-step products cannot go through ``np.dot``. They used to be a register-blocked loop
(matmul.py's ``matmul_rows``), which at a step of (16, 64) @ (64, 256) runs at half the
speed of the BLAS ``gemm`` that NumPy links. Numba calls a C function through a ctypes
function object passed as an argument (the address is read at each call, so the kernel
cache holds no address), so a driver takes the ``gemm`` found here and calls it per step.

The library is the OpenBLAS that NumPy's wheels bundle (numpy.libs on Linux, .dylibs on
macOS), in one of its symbol spellings: ``scipy_cblas_sgemm64_`` (NumPy 2's wheels: 64-bit
integers), ``cblas_sgemm64_`` (64-bit) or ``cblas_sgemm`` (32-bit). Where none is found, or
with ``TINYGRAD_LSTM_BLAS=0`` in the environment, ``gemm`` gives None and the drivers keep
``matmul_rows``.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["gemm"]

# (symbol pattern, integer type): the spellings NumPy's bundled OpenBLAS builds use.
_SYMBOLS = (
    ("scipy_cblas_{}gemm64_", ctypes.c_int64),
    ("cblas_{}gemm64_", ctypes.c_int64),
    ("cblas_{}gemm", ctypes.c_int),
)
_SCALARS = {
    np.dtype(np.float32): ("s", ctypes.c_float),
    np.dtype(np.float64): ("d", ctypes.c_double),
}


def _libraries() -> list[Path]:
    """NumPy's bundled OpenBLAS builds (already loaded by NumPy: opening one again gives
    the same library)."""
    root = Path(np.__file__).resolve().parent
    found: list[Path] = []
    for folder in (root.parent / "numpy.libs", root / ".dylibs"):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if "openblas" in p.name.lower())
    return found


@functools.cache
def gemm(dtype: DTypeLike) -> Any:
    """``cblas_?gemm`` for ``dtype`` (float32 or float64) as a ctypes function, or None."""
    if os.environ.get("TINYGRAD_LSTM_BLAS", "1") == "0":
        return None
    scalar = _SCALARS.get(np.dtype(dtype))
    if scalar is None:
        return None
    letter, real = scalar
    for path in _libraries():
        try:
            library = ctypes.CDLL(str(path))
        except OSError:
            continue
        for pattern, integer in _SYMBOLS:
            function = getattr(library, pattern.format(letter), None)
            if function is None:
                continue
            # (order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            pointer = ctypes.c_void_p
            function.argtypes = [
                *(ctypes.c_int,) * 3,
                *(integer,) * 3,
                *(real, pointer, integer, pointer, integer, real, pointer, integer),
            ]
            function.restype = None
            return function
    return None
