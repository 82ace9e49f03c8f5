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


def test_past_its_limit_the_pool_keeps_nothing_more_while_all_are_held():
    pool = BufferPool(limit=100)
    kept = pool.take((10,), np.dtype(np.float64), zeroed=False)  # 80 bytes: kept
    extra = pool.take((10,), np.dtype(np.float64), zeroed=False)  # 80 more: not kept
    assert pool.size == 80 and extra is not kept
    assert len(pool.arrays[((10,), np.dtype(np.float64))]) == 1


def test_at_its_limit_the_pool_drops_what_no_one_holds_for_what_is_asked_now():
    """A pool full of arrays of shapes no pass asks for any more (a layer of another size
    ran before) would otherwise keep new arrays out, and every pass fault its pages in."""
    pool = BufferPool(limit=100)
    old = pool.take((10,), np.dtype(np.float64), zeroed=False)  # 80 bytes, then let go
    del old
    new = pool.take((12,), np.dtype(np.float32), zeroed=False)  # 48 bytes: 128 > 100
    assert pool.size == 48 and pool.arrays[((12,), np.dtype(np.float32))][0] is new
    assert pool.arrays[((10,), np.dtype(np.float64))] == []
