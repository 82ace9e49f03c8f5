"""compiler/buffers.py: a pass's arrays are handed out again only once nothing else holds
them, so reusing memory never changes an array someone still reads."""

import numpy as np
from tinygrad_lstm.compiler.buffers import BufferPool


def test_an_array_comes_back_only_when_the_pool_alone_holds_it():
    pool, key = BufferPool(), ((3, 4), np.dtype(np.float64))
    first = pool.take(*key, zeroed=False)
    view = first[1:]  # the caller still reads first through a view
    del first
    second = pool.take(*key, zeroed=False)
    assert not np.shares_memory(second, view), "an array still held was handed out again"
    address = second.ctypes.data
    del second
    third = pool.take(*key, zeroed=False)
    assert third.ctypes.data == address, "an array nothing held was not reused"
    assert not np.shares_memory(third, view) and len(pool.arrays[key]) == 2


def test_a_reused_array_asked_zeroed_is_zeros():
    pool = BufferPool()
    pool.take((5,), np.dtype(np.float32), zeroed=False)[:] = 7.0
    again = pool.take((5,), np.dtype(np.float32), zeroed=True)
    assert again.dtype == np.float32 and not again.any()


def test_past_its_limit_the_pool_keeps_nothing_more():
    pool = BufferPool(limit=100)
    kept = pool.take((10,), np.dtype(np.float64), zeroed=False)  # 80 bytes: kept
    extra = pool.take((10,), np.dtype(np.float64), zeroed=False)  # 160 > 100: not kept
    assert pool.size == 80 and extra is not kept
    assert len(pool.arrays[((10,), np.dtype(np.float64))]) == 1
