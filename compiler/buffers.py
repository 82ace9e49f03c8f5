"""Arrays of compiled passes, reused from one pass to the next once nothing holds them.

A pass makes a dozen arrays of up to T*B*W floats (saved values, states, gradients). Made
anew each pass, they are new memory: the C allocator returns blocks that large to the
system when they are freed, and every page is faulted in again at its first write (about a
microsecond a page, a fifth of a small layer's step). So a ``BufferPool`` keeps the arrays
it made and hands one out again when nothing but the pool refers to it any more (its
reference count says so: a graph node, a view such as the output the caller holds, or a
gradient passed on each keep it from being reused). It keeps at most ``limit`` bytes
(128 MiB for the process's ``POOL``); past that, arrays are made and freed as usual.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["POOL", "BufferPool"]

# References to an array held only by the pool, as ``take`` counts them: the pool's list,
# the loop's name, getrefcount's argument.
_UNHELD = 3


class BufferPool:
    """Reusable arrays by (shape, dtype), up to ``limit`` bytes in all."""

    def __init__(self, limit: int = 2**27) -> None:
        self.limit, self.size = limit, 0
        self.arrays: dict[tuple, list[np.ndarray]] = {}

    def take(self, shape: tuple[int, ...], dtype: np.dtype, zeroed: bool) -> np.ndarray:
        """An array of ``shape`` and ``dtype`` that no one else holds (zeros if
        ``zeroed``, else any values)."""
        kept = self.arrays.setdefault((shape, dtype), [])
        for array in kept:
            if sys.getrefcount(array) == _UNHELD:
                if zeroed:
                    array.fill(0)
                return array
        array = (np.zeros if zeroed else np.empty)(shape, dtype)
        if self.size + array.nbytes > self.limit:
            self._evict()
        if self.size + array.nbytes <= self.limit:
            kept.append(array)
            self.size += array.nbytes
        return array

    def _evict(self) -> None:
        """Drop every array only the pool holds (of shapes no pass may ask for again)."""
        for kept in self.arrays.values():
            held = [a for a in kept if sys.getrefcount(a) > _UNHELD]
            self.size -= sum(a.nbytes for a in kept) - sum(a.nbytes for a in held)
            kept[:] = held


# The one pool of the process (passes of every compiled cell share it).
POOL = BufferPool()
