"""Masks for variable-length batches: which steps need one, and that holding a finished
sequence's state is exact (not merely close)."""

import numpy as np
import pytest
from tinygrad_lstm.layers.packing import check_lengths, hold_finished, step_masks

import tinygrad_lstm as tg


def test_steps_where_every_sequence_runs_need_no_mask():
    masks = step_masks(np.array([4, 2, 3]), 5, np.float64)
    assert [m is None for m in masks] == [True, True, False, False, False]
    np.testing.assert_array_equal(masks[2].keep.data[:, 0], [1, 0, 1])
    np.testing.assert_array_equal(masks[4].keep.data[:, 0], [0, 0, 0])
    np.testing.assert_array_equal(masks[3].drop.data[:, 0], [0, 1, 1])


def test_holding_is_exact_for_tensors_and_tuples():
    mask = step_masks(np.array([1, 2]), 2, np.float32)[1]
    new = tg.Tensor(np.array([[1e30, 3.3], [0.1, -7.0]], np.float32))
    old = tg.Tensor(np.array([[2.5, -1e-30], [9.0, 1.0 / 3]], np.float32))
    held = hold_finished(new, old, mask)
    # sequence 0 has ended (keeps old), sequence 1 runs (takes new): bit for bit
    np.testing.assert_array_equal(held.data, [old.data[0], new.data[1]])
    _, c = hold_finished((new, new * 2), (old, old * 2), mask)
    np.testing.assert_array_equal(c.data, [old.data[0] * 2, new.data[1] * 2])
    assert held.dtype == np.float32


def test_check_lengths_accepts_lists_arrays_and_tensors():
    for lengths in ([3, 1], np.array([3, 1], np.int32), tg.Tensor(np.array([3, 1]))):
        np.testing.assert_array_equal(check_lengths("RNN", lengths, 3, 2), [3, 1])
    with pytest.raises(ValueError, match=r"RNN: every length must lie in \[1, T=3\]"):
        check_lengths("RNN", [3, 4], 3, 2)
